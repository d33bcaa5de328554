import assert from "node:assert/strict";
import { corrector } from "../../../algorithms/mgrpo/corrector.ts";
import type {
  Configure,
  Generate,
  Query,
  Scored,
  TrainBatch,
  Verdict,
} from "../../../actors/messages.ts";
import { buildLayer2Prompt, MgrpoConfigSchema } from "../../../algorithms/mgrpo/mod.ts";
import { CharTokenizer } from "../../../model/char_tokenizer.ts";
import { recordingContext } from "../../helpers.ts";

const TOKENIZER = new CharTokenizer();
const QUERIES: Query[] = [
  {
    id: "q0",
    question: "Ann has 2 pens. She buys 3. How many?",
    answer: 5,
    prompt: "p",
    promptIds: [1, 2],
  },
];
const SAMPLING = { maxNewTokens: 8, temperature: 1, topP: 1, topK: 0, greedy: false };

function verdict(correct: boolean): Verdict {
  return { reward: correct ? 1 : 0, correct, parsed: null, reason: correct ? "correct" : "wrong" };
}

/** A scored batch of `texts` (all answers to query 0) with the given correctness. */
function scored(
  label: string,
  queries: Query[],
  texts: string[],
  correct: boolean[],
  n: number,
): Scored {
  return {
    type: "Scored",
    purpose: "train",
    step: 7,
    label,
    queries,
    n,
    policyVersion: 3,
    timings: { sampler: 0.01, verifier: 0.001 },
    rollouts: texts.map((text, i) => ({
      queryIndex: Math.floor(i / n),
      completionIds: TOKENIZER.encode(text),
      logprobs: text.split("").map(() => -0.5),
      text,
      finishReason: "stop",
    })),
    verdicts: correct.map(verdict),
  };
}

Deno.test("corrector.handle() asks for H corrections of every response with the Eq. 5 prompt", async () => {
  const config = MgrpoConfigSchema.parse({ num_corrections: 3, guide_phrases: ["Check."] });
  const ctx = recordingContext("corrector");
  const state = await corrector.init(
    { tokenizer: TOKENIZER, config, seed: 1, sampling: SAMPLING, target: "learner" },
    ctx,
  );
  const layer1 = scored("train", QUERIES, ["<think>2+3=5</think>5", "<think>2+3=6</think>6"], [
    true,
    false,
  ], 2);
  await corrector.handle(state, layer1, ctx);
  const generate = ctx.only<Generate>("sampler");
  assert.equal(generate.label, "layer2");
  assert.equal(generate.n, 3);
  assert.equal(generate.step, 7);
  assert.equal(generate.queries.length, 2);
  assert.equal(
    TOKENIZER.decode(generate.queries[1]!.promptIds),
    "<|im_start|>user\nAnn has 2 pens. She buys 3. How many?<|im_end|>\n" +
      "<|im_start|>assistant\n<think>2+3=6</think>6\nCheck.",
  );
  assert.equal(
    TOKENIZER.decode(generate.queries[1]!.promptIds),
    buildLayer2Prompt(QUERIES[0]!.question, "<think>2+3=6</think>6", "Check.", {
      systemPrompt: "",
    }),
  );
  assert.equal(generate.queries[0]!.answer, 5);
});

Deno.test("corrector.handle() sends both layers with the paper's selection and the metrics", async () => {
  const config = MgrpoConfigSchema.parse({ num_corrections: 2, layer2_weight: 0.5 });
  const ctx = recordingContext("corrector");
  const state = await corrector.init(
    { tokenizer: TOKENIZER, config, seed: 1, sampling: SAMPLING, target: "ref_policy" },
    ctx,
  );
  // Three responses: right, wrong, wrong.
  const layer1 = scored("train", QUERIES, [
    "<think>5</think>5",
    "<think>6</think>6",
    "<think>7</think>7",
  ], [
    true,
    false,
    false,
  ], 3);
  await corrector.handle(state, layer1, ctx);
  const generate = ctx.only<Generate>("sampler");
  // Corrections: o_0 right → [right, wrong]; o_1 wrong → [right, right]; o_2 wrong → [wrong, wrong].
  const layer2 = scored(
    "layer2",
    generate.queries,
    ["5", "6", "5", "5", "8", "9"],
    [true, false, true, true, false, false],
    2,
  );
  await corrector.handle(state, layer2, ctx);
  const batch = ctx.only<TrainBatch>("ref_policy");
  assert.equal(batch.step, 7);
  assert.equal(batch.update, "joint");
  assert.deepEqual(batch.parts.map((p) => [p.weight, p.prefix]), [[1, ""], [0.5, "layer2/"]]);
  assert.equal(batch.parts[0]!.scored, layer1);
  // The paper's rule discards only q'_2 (o_2 wrong and both corrections wrong).
  assert.deepEqual(batch.parts[1]!.keep, [true, true, true, true, false, false]);
  // Acc@t1 = 1/3; Acc@t1' = mean(1/2, 1, 0) = 1/2; Δi→c = 2/6 (o_1's two); Δc→i = 1/6.
  assert.ok(Math.abs(batch.metrics["mgrpo/acc_t1"]! - 1 / 3) < 1e-12);
  assert.ok(Math.abs(batch.metrics["mgrpo/acc_t1_prime"]! - 1 / 2) < 1e-12);
  assert.ok(Math.abs(batch.metrics["mgrpo/delta_i_to_c"]! - 2 / 6) < 1e-12);
  assert.ok(Math.abs(batch.metrics["mgrpo/delta_c_to_i"]! - 1 / 6) < 1e-12);
  assert.ok(Math.abs(batch.metrics["mgrpo/discarded_frac"]! - 1 / 3) < 1e-12);
  // Every q'_i drew one phrase from the pool of seven.
  const used = Object.entries(batch.metrics).filter(([k]) => k.startsWith("mgrpo/guide_phrase_"));
  assert.equal(used.length, 7);
  assert.equal(used.reduce((a, [, v]) => a + v, 0), 3);
  await assert.rejects(
    async () => await corrector.handle(state, layer2, ctx),
    /Layer-2 rollouts for an unknown step: current value is 7/,
  );
});

Deno.test("corrector.handle() rejects or truncates a q'_i longer than the prompt limit", async () => {
  // o_1 is long: its q'_i does not fit 80 tokens; o_0's (about 60) does.
  const long = `<think>${"1+1=2 ".repeat(10)}</think>2`;
  const texts = ["<think>2+3=5</think>5", long];
  for (const onLongPrompt of ["reject", "truncate"] as const) {
    const config = MgrpoConfigSchema.parse({ num_corrections: 2, guide_phrases: ["Check."] });
    const ctx = recordingContext("corrector");
    const state = await corrector.init({
      tokenizer: TOKENIZER,
      config,
      seed: 1,
      sampling: SAMPLING,
      target: "learner",
      maxPromptTokens: 80,
      onLongPrompt,
    }, ctx);
    const layer1 = scored("train", QUERIES, texts, [true, false], 2);
    await corrector.handle(state, layer1, ctx);
    const generate = ctx.only<Generate>("sampler");
    assert.ok(generate.queries.every((q) => q.promptIds.length <= 80));
    // Each q'_i carries its guide phrase to the Learner's samples.
    assert.ok(generate.queries.every((q) => q.guidePhrase === "Check."));
    if (onLongPrompt === "reject") {
      assert.equal(generate.queries.length, 1);
      // Both corrections of the one sampled q'_i (o_0's) are right.
      await corrector.handle(
        state,
        scored("layer2", generate.queries, [" 5</think>5", " 5</think>5"], [true, true], 2),
        ctx,
      );
      const batch = ctx.only<TrainBatch>("learner");
      assert.equal(batch.metrics["mgrpo/rejected_prompts"], 1);
      assert.equal(batch.metrics["mgrpo/truncated_prompts"], 0);
      // The rejected group counts as two wrong attempts and is not trained on.
      assert.equal(batch.metrics["mgrpo/acc_t1_prime"], 0.5);
      assert.deepEqual(batch.parts[1]!.keep, [true, true]);
      assert.equal(batch.parts[1]!.scored.rollouts.length, 2);
      // The one Layer-2 query was built from o_0.
      assert.deepEqual(batch.parts[1]!.sources, [0]);
    } else {
      assert.equal(generate.queries.length, 2);
      const cut = TOKENIZER.decode(generate.queries[1]!.promptIds);
      assert.ok(cut.endsWith("</think>2\nCheck."), cut);
      assert.equal(generate.queries[1]!.promptIds.length, 80);
      await corrector.handle(
        state,
        scored("layer2", generate.queries, ["5", "6", "2", "2"], [true, false, true, true], 2),
        ctx,
      );
      const batch = ctx.only<TrainBatch>("learner");
      assert.equal(batch.metrics["mgrpo/rejected_prompts"], 0);
      assert.equal(batch.metrics["mgrpo/truncated_prompts"], 1);
      assert.deepEqual(batch.parts[1]!.keep, [true, true, true, true]);
      assert.deepEqual(batch.parts[1]!.sources, [0, 1]);
    }
  }
});

/** A Corrector with these `mgrpo` settings (2 corrections) after one scored Layer-1 batch. */
async function correctorAfterLayer1(settings: Record<string, number>) {
  const config = MgrpoConfigSchema.parse({ num_corrections: 2, ...settings });
  const ctx = recordingContext("corrector");
  const state = await corrector.init(
    { tokenizer: TOKENIZER, config, seed: 1, sampling: SAMPLING, target: "learner" },
    ctx,
  );
  await corrector.handle(state, scored("train", QUERIES, ["5", "6"], [true, false], 2), ctx);
  return { ctx, state, generate: ctx.only<Generate>("sampler") };
}

Deno.test("corrector.handle() samples the corrections with mgrpo.layer2_max_new_tokens new tokens when set", async () => {
  for (const [budget, expected] of [[undefined, SAMPLING.maxNewTokens], [24, 24]] as const) {
    const { generate } = await correctorAfterLayer1(
      budget === undefined ? {} : { layer2_max_new_tokens: budget },
    );
    assert.deepEqual(generate.params, { ...SAMPLING, maxNewTokens: expected });
  }
  assert.throws(() => MgrpoConfigSchema.parse({ layer2_max_new_tokens: 0 }));
});

Deno.test("corrector.handle() samples the corrections at mgrpo.layer2_temperature and tags the part with it", async () => {
  for (const [layer2, expected] of [[undefined, 1], [0.5, 0.5]] as const) {
    const { ctx, state, generate } = await correctorAfterLayer1(
      layer2 === undefined ? {} : { layer2_temperature: layer2 },
    );
    assert.equal(generate.params.temperature, expected);
    assert.equal(generate.params.maxNewTokens, SAMPLING.maxNewTokens);
    // A live change of the sampler's temperature after the corrections were sampled does not
    // change the temperature their log-probs are taken at.
    await corrector.handle(state, {
      type: "Configure",
      values: { "sampler.temperature": 0.8 },
    } as Configure, ctx);
    await corrector.handle(
      state,
      scored("layer2", generate.queries, ["5", "5", "5", "6"], [true, true, true, false], 2),
      ctx,
    );
    const batch = ctx.only<TrainBatch>("learner");
    assert.equal(batch.parts[0]!.temperature, undefined);
    assert.equal(batch.parts[1]!.temperature, expected);
  }
});
