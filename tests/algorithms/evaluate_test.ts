import assert from "node:assert/strict";
import { evaluatePolicy, evaluateSelfCorrection } from "../../algorithms/evaluate.ts";
import { buildLayer2Prompt } from "../../algorithms/mgrpo.ts";
import { initBackend } from "../../model/backend.ts";
import { CharTokenizer } from "../../model/char_tokenizer.ts";
import { makeTinyModel, renderTestPrompt } from "../helpers.ts";

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
    renderCorrection: (q: string, text: string, phrase: string) =>
      buildLayer2Prompt(q, text, phrase, { systemPrompt: "" }),
    maxNewTokens: 6,
  };
  const res = await evaluateSelfCorrection(model, tokenizer, PROBLEMS, {
    ...base,
    phrases: ["Check."],
  });
  assert.equal(res.verdicts.length, 3);
  for (const c of res.completions) assert.equal(c.length, 3); // t1, t1', t2
  for (const v of res.verdicts) assert.deepEqual(Object.keys(v), ["t1", "t1Prime", "t2"]);
  assert.equal(res.overflow, 0);
  // A phrase longer than the context: no correction prompt fits, each counts as wrong.
  const long = await evaluateSelfCorrection(model, tokenizer, PROBLEMS, {
    ...base,
    phrases: ["x".repeat(300)],
    rounds: 1,
  });
  assert.equal(long.overflow, 3);
  assert.deepEqual(long.verdicts.map((v) => v.t1Prime), [false, false, false]);
  assert.deepEqual(long.completions.map((c) => c[1]), ["", "", ""]);
  model.dispose();
});
