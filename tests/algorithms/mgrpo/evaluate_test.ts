import assert from "node:assert/strict";
import { evaluatePolicy, evaluateSelfCorrection } from "../../../algorithms/mgrpo/evaluate.ts";
import { passAtK } from "../../../algorithms/mgrpo/pass_at_k.ts";
import { buildLayer2Prompt, layer2Assistant } from "../../../algorithms/mgrpo/mod.ts";
import { loadCheckpoint } from "../../../model/checkpoint.ts";
import { loadConfig } from "../../../training/config.ts";
import { selfCorrectionOptions } from "../../../training/evaluate.ts";
import { heldOut, resolveRepoPath } from "../../../training/setup.ts";
import { initBackend } from "../../../model/backend.ts";
import { CharTokenizer } from "../../../model/char_tokenizer.ts";
import { generate } from "../../../model/sampling.ts";
import { Rng } from "../../../util/rng.ts";
import { makeTinyModel, renderTestPrompt } from "../../helpers.ts";

await initBackend("wasm");

const PROBLEMS = [
  { id: "a", question: "Ann has 2 pens. She buys 3. How many pens now?", answer: 5 },
  { id: "b", question: "Bo has 9 cups. He uses 4. How many cups now?", answer: 5 },
  { id: "c", question: "Cy has 1 toy. He finds 1. How many toys now?", answer: 2 },
];

Deno.test("evaluatePolicy() verifies one greedy completion per problem", async () => {
  const model = makeTinyModel(4);
  const res = await evaluatePolicy(model, new CharTokenizer(), PROBLEMS, {
    renderPrompt: renderTestPrompt,
    maxNewTokens: 6,
  });
  assert.equal(res.count, 3);
  assert.deepEqual(res.samples.map((s) => s.id), ["a", "b", "c"]);
  // A random model writes no "</think>": every verdict is wrong for that reason.
  for (const s of res.samples) assert.equal(s.correct, false);
  assert.equal(res.accuracy, 0);
  assert.ok(res.meanLength > 0 && res.meanLength <= 6);
  model.dispose();
});

Deno.test("evaluateSelfCorrection() runs two correction rounds and counts context overflow", async () => {
  const model = makeTinyModel(4);
  const tokenizer = new CharTokenizer();
  const base = {
    renderPrompt: renderTestPrompt,
    buildCorrection: (q: string, text: string, phrase: string) => ({
      prompt: buildLayer2Prompt(q, text, phrase, { systemPrompt: "" }),
      assistant: layer2Assistant(text, phrase),
    }),
    maxNewTokens: 6,
  };
  const res = await evaluateSelfCorrection(model, tokenizer, PROBLEMS, {
    ...base,
    phrases: ["Check."],
    rounds: 2,
  });
  assert.equal(res.verdicts.length, 3);
  for (const c of res.completions) assert.equal(c.length, 3); // t1, one correction, a second
  for (const v of res.verdicts) assert.equal(v.length, 3);
  assert.equal(res.overflow, 0);
  // A phrase longer than the context: no correction prompt fits, each counts as wrong.
  const long = await evaluateSelfCorrection(model, tokenizer, PROBLEMS, {
    ...base,
    phrases: ["x".repeat(300)],
  });
  assert.equal(long.overflow, 3);
  assert.deepEqual(long.verdicts.map((v) => v[1]), [false, false, false]);
  assert.deepEqual(long.completions.map((c) => c[1]), ["", "", ""]);
  // truncate keeps the last tokens of such a prompt instead, and counts them.
  const cut = await evaluateSelfCorrection(model, tokenizer, PROBLEMS, {
    ...base,
    phrases: ["x".repeat(300)],
    onLongPrompt: "truncate",
    maxPromptTokens: 200,
  });
  assert.equal(cut.overflow, 0);
  assert.equal(cut.truncated, 3);
  assert.ok(cut.completions.every((c) => c[1]!.length > 0));
  model.dispose();
});

Deno.test("evaluateSelfCorrection() gives each correction round correctionMaxNewTokens and each first answer maxNewTokens", async () => {
  const model = makeTinyModel(4);
  const tokenizer = new CharTokenizer();
  const res = await evaluateSelfCorrection(model, tokenizer, PROBLEMS, {
    renderPrompt: renderTestPrompt,
    buildCorrection: (q: string, text: string, phrase: string) => ({
      prompt: buildLayer2Prompt(q, text, phrase, { systemPrompt: "" }),
      assistant: layer2Assistant(text, phrase),
    }),
    phrases: ["Check.", "Again."],
    rounds: 2,
    maxNewTokens: 4,
    correctionMaxNewTokens: 12,
  });
  // One phrase per problem and round, drawn from the pool.
  assert.equal(res.phrases.length, PROBLEMS.length);
  for (const row of res.phrases) {
    assert.equal(row.length, 2);
    for (const phrase of row) assert.ok(["Check.", "Again."].includes(phrase), phrase);
  }
  const lengths = res.completions.map((c) => c.map((t) => tokenizer.encode(t).length));
  for (const [first, ...corrections] of lengths) {
    assert.ok(first! <= 4, `first answer of ${first} tokens`);
    for (const n of corrections) assert.ok(n <= 12, `correction of ${n} tokens`);
  }
  // A random model seldom stops: the corrections use the longer budget.
  assert.ok(lengths.some((l) => l[1]! > 4 && l[2]! > 4), JSON.stringify(lengths));
  assert.equal(res.shortBudget, 0);
  model.dispose();
});

Deno.test("evaluateSelfCorrection() gives the same greedy tokens and verdicts at batch size 1, 7 and 100", async () => {
  // The committed warm start on 100 held-out problems, the embedded config's Layer-2 query,
  // two rounds: second-round prompts are up to twice as long as the first, so every batch of
  // 100 mixes lengths (the per-row token budget is what keeps them comparable).
  const config = loadConfig(undefined);
  const { model, tokenizer } = await loadCheckpoint(resolveRepoPath(config.model.init), {
    trainable: false,
  });
  const problems = heldOut(config.task, "heldout").problems.slice(0, 100);
  const results = [];
  for (const batchSize of [1, 7, 100]) {
    results.push(
      await evaluateSelfCorrection(model, tokenizer, problems, {
        ...selfCorrectionOptions(config),
        rounds: 2,
        batchSize,
      }),
    );
  }
  const [one, seven, hundred] = results;
  assert.deepEqual(seven!.completions, one!.completions);
  assert.deepEqual(hundred!.completions, one!.completions);
  assert.deepEqual(seven!.verdicts, one!.verdicts);
  assert.deepEqual(hundred!.verdicts, one!.verdicts);
  // The second round is really generated: its answers are as long as the first round's.
  const mean = (k: number) => one!.completions.reduce((a, c) => a + c[k]!.length, 0) / 100;
  assert.ok(mean(2) > 0.5 * mean(1), `round 2 mean length ${mean(2)} vs round 1 ${mean(1)}`);
  assert.equal(one!.overflow, 0);
  model.dispose();
});

Deno.test("passAtK() matches 1 - C(n-c, k) / C(n, k)", () => {
  assert.equal(passAtK(5, 0, 3), 0);
  assert.equal(passAtK(5, 5, 1), 1);
  assert.ok(Math.abs(passAtK(5, 2, 1) - 0.4) < 1e-12);
  assert.ok(Math.abs(passAtK(5, 2, 2) - 0.7) < 1e-12); // 1 - C(3,2)/C(5,2) = 1 - 3/10
  assert.ok(Math.abs(passAtK(10, 3, 4) - (1 - 35 / 210)) < 1e-12); // C(7,4)=35, C(10,4)=210
  assert.equal(passAtK(4, 3, 2), 1); // n - c < k: some pick is always right
  assert.throws(() => passAtK(4, 5, 1), RangeError);
  assert.throws(() => passAtK(4, 1, 5), RangeError);
});

Deno.test("evaluatePolicy() draws n samples per problem and asks the given checker", async () => {
  const model = makeTinyModel(4);
  const seen: [string, string][] = [];
  const res = await evaluatePolicy(model, new CharTokenizer(), PROBLEMS, {
    renderPrompt: renderTestPrompt,
    maxNewTokens: 4,
    greedy: false,
    n: 3,
    batchSize: 4, // rows of one problem span two batches
    checker: (completion, answer) => {
      seen.push([completion, answer]);
      return { correct: answer === "2", parsed: answer, reason: "by answer" };
    },
  });
  assert.equal(res.n, 3);
  assert.equal(res.count, 3);
  assert.deepEqual(res.samples.map((s) => `${s.id}${s.sample}`), [
    "a0",
    "a1",
    "a2",
    "b0",
    "b1",
    "b2",
    "c0",
    "c1",
    "c2",
  ]);
  assert.deepEqual(seen.map(([, a]) => a), ["5", "5", "5", "5", "5", "5", "2", "2", "2"]);
  assert.deepEqual(res.samples.map((s) => s.completion), seen.map(([c]) => c));
  assert.ok(Math.abs(res.accuracy - 3 / 9) < 1e-12);
  model.dispose();
});

Deno.test("evaluatePolicy() scores a prompt it cannot encode or fit as wrong, with the reason", async () => {
  const model = makeTinyModel(4);
  const res = await evaluatePolicy(model, new CharTokenizer(), [
    { id: "curly", question: "Janet’s ducks lay 16 eggs. How many?", answer: 16 },
    { id: "long", question: "1+".repeat(200) + "1?", answer: 201 },
    PROBLEMS[0]!,
  ], { renderPrompt: renderTestPrompt, maxNewTokens: 4 });
  assert.equal(res.unpromptable, 2);
  assert.match(
    res.samples[0]!.reason,
    /^prompt not encodable: Cannot encode text: character at index \d+/,
  );
  assert.match(res.samples[1]!.reason, /^prompt of \d+ tokens does not fit the context of 256$/);
  assert.equal(res.samples[2]!.id, "a");
  assert.ok(res.samples[2]!.completion.length > 0);
  model.dispose();
});

Deno.test("evaluatePolicy() holds first answers to prompts.on_long_prompt, as corrections are", async () => {
  const model = makeTinyModel(4);
  const tokenizer = new CharTokenizer();
  const long = { id: "long", question: "1+".repeat(60) + "1?", answer: 61 };
  const ids = tokenizer.encode(renderTestPrompt(long.question));
  assert.ok(ids.length > 100 && ids.length < 200, `${ids.length}`);
  const options = { renderPrompt: renderTestPrompt, maxNewTokens: 6 };
  // reject: not generated from, scored wrong, the reason names the setting.
  const rejected = await evaluatePolicy(model, tokenizer, [long, PROBLEMS[0]!], {
    ...options,
    maxPromptTokens: 100,
  });
  assert.equal(rejected.unpromptable, 1);
  assert.equal(rejected.truncated, 0);
  assert.equal(rejected.samples[0]!.completion, "");
  assert.equal(
    rejected.samples[0]!.reason,
    `prompt of ${ids.length} tokens is longer than prompts.max_prompt_tokens (100)`,
  );
  assert.ok(rejected.samples[1]!.completion.length > 0);
  // truncate: the last 100 ids are what the policy continues, counted.
  const cut = await evaluatePolicy(model, tokenizer, [long, PROBLEMS[0]!], {
    ...options,
    maxPromptTokens: 100,
    onLongPrompt: "truncate",
  });
  assert.equal(cut.unpromptable, 0);
  assert.equal(cut.truncated, 1);
  const [alone] = await generate(model, [ids.slice(-100)], {
    maxNewTokens: 6,
    greedy: true,
    stopIds: tokenizer.stopIds,
    padId: tokenizer.padId,
    rng: new Rng(0),
  });
  assert.equal(
    cut.samples[0]!.completion,
    tokenizer.decode(alone!.tokens, { skipSpecialTokens: true }),
  );
  // A prompt of 253 of the 256 positions fits but has room for 3 of the 6 new tokens: counted.
  const tight = {
    id: "tight",
    question: "1".repeat(253 - (ids.length - long.question.length)),
    answer: 1,
  };
  const short = await evaluatePolicy(model, tokenizer, [tight, PROBLEMS[0]!], options);
  assert.equal(tokenizer.encode(renderTestPrompt(tight.question)).length, 253);
  assert.equal(short.unpromptable, 0);
  assert.equal(short.shortBudget, 1);
  // The self-correction evaluation reports its first answers' counts beside its corrections'.
  const both = await evaluateSelfCorrection(model, tokenizer, [long, PROBLEMS[0]!], {
    ...options,
    maxPromptTokens: 100,
    buildCorrection: (q: string, text: string, phrase: string) => ({
      prompt: buildLayer2Prompt(q, text, phrase, { systemPrompt: "" }),
      assistant: layer2Assistant(text, phrase),
    }),
    phrases: ["Check."],
  });
  assert.deepEqual(both.first, { unpromptable: 1, truncated: 0, shortBudget: 0 });
  assert.deepEqual(both.verdicts[0], [false, false]);
  assert.equal(both.overflow, 1); // its correction prompt, longer still, is rejected too
  model.dispose();
});
