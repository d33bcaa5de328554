import assert from "node:assert/strict";
import { sampler, type SamplerInput } from "../../actors/sampler.ts";
import type { Generate, Query, Rollouts, SamplingParams, Weights } from "../../actors/messages.ts";
import { CharTokenizer } from "../../model/char_tokenizer.ts";
import { completionLogprobs } from "../../model/sampling.ts";
import { initBackend } from "../../model/backend.ts";
import { buildLayer1Prompt } from "../../prompts/chat_template.ts";
import { makeTinyModel, maxAbsDiff, recordingContext } from "../helpers.ts";

await initBackend("wasm");

const tokenizer = new CharTokenizer();

function query(id: string, question: string, answer: number): Query {
  return {
    id,
    question,
    answer,
    prompt: buildLayer1Prompt(question, { systemPrompt: null }),
    promptIds: tokenizer.encode(buildLayer1Prompt(question, { systemPrompt: null })),
  };
}

const QUERIES = [query("a", "Tom has 3 apples and buys 2 more.", 5), query("b", "What is 9-4?", 5)];

function generateMessage(params: Partial<SamplingParams> = {}, n = 3): Generate {
  return {
    type: "Generate",
    purpose: "train",
    step: 2,
    label: "train",
    queries: QUERIES,
    n,
    params: { maxNewTokens: 12, temperature: 1, topP: 1, topK: 0, greedy: false, ...params },
  };
}

async function run(input: SamplerInput, message: Generate): Promise<Rollouts> {
  const ctx = recordingContext("sampler");
  const state = await sampler.init(input, ctx);
  await sampler.handle(state, message, ctx);
  return ctx.only<Rollouts>("verifier");
}

Deno.test("sampler.handle() samples n rollouts per query with one logprob per token", async () => {
  const model = makeTinyModel(1, { trainable: false });
  const message = generateMessage();
  const out = await run({ model, tokenizer, seed: 3 }, message);
  assert.equal(out.type, "Rollouts");
  assert.equal(out.purpose, "train");
  assert.equal(out.step, 2);
  assert.equal(out.label, "train");
  assert.equal(out.n, 3);
  assert.equal(out.policyVersion, 0);
  assert.deepEqual(out.queries, QUERIES);
  assert.ok(out.timings.sampler! >= 0);
  assert.deepEqual(out.rollouts.map((r) => r.queryIndex), [0, 0, 0, 1, 1, 1]);
  const stops = new Set([tokenizer.imEndId, tokenizer.eosId]);
  for (const r of out.rollouts) {
    assert.ok(r.completionIds.length >= 1 && r.completionIds.length <= 12);
    assert.equal(r.logprobs.length, r.completionIds.length);
    assert.ok(r.logprobs.every((lp) => Number.isFinite(lp) && lp <= 0));
    assert.equal(r.text, tokenizer.decode(r.completionIds, { skipSpecialTokens: true }));
    const last = r.completionIds.at(-1)!;
    assert.equal(r.finishReason, stops.has(last) ? "stop" : "length");
    if (r.finishReason === "length") assert.equal(r.completionIds.length, 12);
  }
  // The sampler's log-probs are the policy's: teacher forcing the same tokens gives them back.
  const teacher = await completionLogprobs(
    model,
    out.rollouts.map((r) => QUERIES[r.queryIndex]!.promptIds),
    out.rollouts.map((r) => r.completionIds),
    { padId: tokenizer.padId, temperature: 1 },
  );
  out.rollouts.forEach((r, i) => assert.ok(maxAbsDiff(r.logprobs, teacher[i]!) < 1e-4));
  model.dispose();
});

Deno.test("sampler.handle() is reproducible for a seed", async () => {
  const model = makeTinyModel(1, { trainable: false });
  const a = await run({ model, tokenizer, seed: 3 }, generateMessage());
  const b = await run({ model, tokenizer, seed: 3 }, generateMessage());
  const c = await run({ model, tokenizer, seed: 4 }, generateMessage());
  assert.deepEqual(a.rollouts, b.rollouts);
  assert.notDeepEqual(
    a.rollouts.map((r) => r.completionIds),
    c.rollouts.map((r) => r.completionIds),
  );
  model.dispose();
});

Deno.test("sampler.handle() gives the same greedy rollouts in small batches", async () => {
  const model = makeTinyModel(1, { trainable: false });
  const message = generateMessage({ greedy: true }, 2);
  const whole = await run({ model, tokenizer, seed: 3 }, message);
  const split = await run({ model, tokenizer, seed: 3, maxBatch: 3 }, message);
  assert.equal(split.rollouts.length, 4);
  assert.deepEqual(
    split.rollouts.map((r) => [r.queryIndex, r.completionIds]),
    whole.rollouts.map((r) => [r.queryIndex, r.completionIds]),
  );
  split.rollouts.forEach((r, i) => {
    assert.ok(maxAbsDiff(r.logprobs, whole.rollouts[i]!.logprobs) < 1e-4);
  });
  model.dispose();
});

Deno.test("sampler.handle() loads Weights: the version and the outputs change", async () => {
  const model = makeTinyModel(1, { trainable: false });
  const other = makeTinyModel(2, { trainable: false });
  const ctx = recordingContext("sampler");
  let state = await sampler.init({ model, tokenizer, seed: 3, version: 4 }, ctx);
  const message = generateMessage({ greedy: true }, 1);
  state = (await sampler.handle(state, message, ctx)) ?? state;

  const weights: Weights = {
    type: "Weights",
    version: 5,
    tensors: Object.fromEntries(
      [...(await other.exportWeights())].map(([k, v]) => [k, v.data]),
    ) as Weights["tensors"],
  };
  state = (await sampler.handle(state, weights, ctx)) ?? state;
  assert.equal(state.version, 5);
  await sampler.handle(state, message, ctx);

  const [before, after] = ctx.to<Rollouts>("verifier");
  assert.equal(ctx.sent.length, 2); // Weights sends nothing
  assert.equal(before!.policyVersion, 4);
  assert.equal(after!.policyVersion, 5);
  assert.notDeepEqual(
    after!.rollouts.map((r) => r.logprobs),
    before!.rollouts.map((r) => r.logprobs),
  );
  // After the load the sampler is the other model: its greedy rollouts are that model's.
  const reference = await run({ model: other, tokenizer, seed: 3 }, message);
  assert.deepEqual(
    after!.rollouts.map((r) => r.completionIds),
    reference.rollouts.map((r) => r.completionIds),
  );
  after!.rollouts.forEach((r, i) => {
    assert.ok(maxAbsDiff(r.logprobs, reference.rollouts[i]!.logprobs) < 1e-5);
  });
  model.dispose();
  other.dispose();
});

Deno.test("sampler.handle() refuses a training Generate further behind than maxStaleness", async () => {
  const model = makeTinyModel(1, { trainable: false });
  const ctx = recordingContext("sampler");
  // Step 2 wants version 1; the weights are version 0.
  const stale = await sampler.init({ model, tokenizer, seed: 3, maxStaleness: 0 }, ctx);
  await assert.rejects(
    Promise.resolve(sampler.handle(stale, generateMessage(), ctx)),
    /Cannot sample step 2: the weights are 1 versions old \(version 0\), more than sampler\.max_staleness: current value is 0/,
  );
  assert.equal(ctx.sent.length, 0);
  // One version of lag is allowed with maxStaleness 1, and always for evaluations.
  const lenient = await sampler.init({ model, tokenizer, seed: 3, maxStaleness: 1 }, ctx);
  await sampler.handle(lenient, generateMessage(), ctx);
  const onPolicy = await sampler.init({ model, tokenizer, seed: 3, maxStaleness: 0 }, ctx);
  await sampler.handle(onPolicy, { ...generateMessage(), purpose: "eval" }, ctx);
  assert.equal(ctx.sent.length, 2);
});
