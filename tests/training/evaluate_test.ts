/**
 * `training/evaluate.ts`: whether a run's own evaluation adds one guided correction
 * (`eval.correction`), and the correction queries it sends through the graph, checked against
 * the queries `evaluateSelfCorrection` (`deno task eval --two-turn`) builds.
 */
import assert from "node:assert/strict";
import { evaluateSelfCorrection } from "../../algorithms/mgrpo/evaluate.ts";
import { type TrainConfig, TrainConfigSchema } from "../../algorithms/builtins.ts";
import { ConfigError } from "../../config/load.ts";
import { initBackend } from "../../model/backend.ts";
import { CharTokenizer } from "../../model/char_tokenizer.ts";
import { loadConfig } from "../../training/config.ts";
import {
  correctionEnabled,
  correctionQueries,
  selfCorrectionOptions,
} from "../../training/evaluate.ts";
import { heldOut } from "../../training/setup.ts";
import { makeTinyModel } from "../helpers.ts";

await initBackend("wasm");

/** The embedded default: `in_think`, separator " ", three short phrases, no Layer-2 system turn. */
const EMBEDDED = loadConfig(undefined);
const PROBLEMS = [
  { id: "a", question: "Ann has 2 pens. She buys 3. How many pens now?", answer: 5 },
  { id: "b", question: "Bo has 9 cups. He uses 4. How many cups now?", answer: 5 },
];
const ANSWERS = ["<think>2+3=5</think>5", "<think>9-4=6</think>6"];
const CHATML = (q: string) => `<|im_start|>user\n${q}<|im_end|>\n<|im_start|>assistant\n`;

function withPrompts(config: TrainConfig, prompts: Partial<TrainConfig["prompts"]>): TrainConfig {
  return { ...config, prompts: { ...config.prompts, ...prompts } };
}

Deno.test("correctionEnabled() is on for MGRPO with eval.correction auto, and follows true and false", () => {
  const mgrpo = TrainConfigSchema.parse({});
  assert.equal(mgrpo.eval.correction, "auto");
  assert.equal(correctionEnabled(mgrpo, { name: "mgrpo" }), true);
  assert.equal(correctionEnabled(mgrpo, { name: "grpo" }), false);
  assert.equal(correctionEnabled(mgrpo, { name: "ppo", readsSections: ["grpo"] }), false);
  // A plug-in that reads the mgrpo section is MGRPO for this purpose.
  assert.equal(correctionEnabled(mgrpo, { name: "mine", readsSections: ["mgrpo"] }), true);
  const on = TrainConfigSchema.parse({ algorithm: "grpo", eval: { correction: true } });
  assert.equal(correctionEnabled(on, { name: "grpo" }), true);
  const off = TrainConfigSchema.parse({ eval: { correction: false } });
  assert.equal(correctionEnabled(off, { name: "mgrpo" }), false);
});

Deno.test("correctionEnabled() forced on without an mgrpo section is a ConfigError naming the field", () => {
  const { mgrpo: _, ...config } = TrainConfigSchema.parse({ eval: { correction: true } });
  assert.throws(
    () => correctionEnabled(config, { name: "mine" }, "configs/mine.yaml"),
    (e) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(
        e.message,
        'Cannot load config "configs/mine.yaml": field "eval.correction" needs the mgrpo section (its guide phrases and Layer-2 query), which the registry of algorithm "mine" does not have: current value is true',
      );
      return true;
    },
  );
  // auto without the section is simply off.
  const { mgrpo: _m, ...auto } = TrainConfigSchema.parse({});
  assert.equal(correctionEnabled(auto, { name: "mine" }), false);
});

Deno.test("loadConfig() rejects an eval.correction that is neither auto nor a boolean", () => {
  assert.throws(
    () => loadConfig("x.yaml", { text: "eval:\n  correction: sometimes\n" }),
    (e: Error) =>
      e.message ===
        'Cannot load config "x.yaml": line 2, field "eval.correction" must be "auto", true or false: current value is "sometimes"',
  );
  assert.equal(
    loadConfig("x.yaml", { text: "eval:\n  correction: false\n" }).eval.correction,
    false,
  );
});

Deno.test("correctionQueries() builds q'_i from each first answer with a phrase of the pool", () => {
  const tokenizer = new CharTokenizer();
  const built = correctionQueries(EMBEDDED, PROBLEMS, {
    firstAnswers: ANSWERS,
    tokenizer,
    contextLength: 256,
  });
  assert.equal(built.overflow, 0);
  assert.equal(built.truncated, 0);
  assert.deepEqual(built.problemIndex, [0, 1]);
  built.queries.forEach((q, i) => {
    const phrase = q.guidePhrase!;
    assert.ok(EMBEDDED.mgrpo.guide_phrases.includes(phrase), phrase);
    // in_think: the thought stays open, `</think>ans` is dropped, a space, then p_guide.
    const thought = ANSWERS[i]!.slice(0, ANSWERS[i]!.indexOf("</think>"));
    assert.equal(q.prompt, `${CHATML(PROBLEMS[i]!.question)}${thought} ${phrase}`);
    assert.deepEqual(q.promptIds, tokenizer.encode(q.prompt));
    assert.deepEqual([q.id, q.question, q.answer], [
      PROBLEMS[i]!.id,
      PROBLEMS[i]!.question,
      PROBLEMS[i]!.answer,
    ]);
  });
  assert.throws(
    () =>
      correctionQueries(EMBEDDED, PROBLEMS, { firstAnswers: [], tokenizer, contextLength: 256 }),
    /need one first answer per problem \(2\): current value is 0/,
  );
});

Deno.test("correctionQueries() rejects or truncates a prompt over prompts.max_prompt_tokens, and counts it", () => {
  const tokenizer = new CharTokenizer();
  const options = { firstAnswers: ANSWERS, tokenizer, contextLength: 256 };
  const rejected = correctionQueries(
    withPrompts(EMBEDDED, { max_prompt_tokens: 40, on_long_prompt: "reject" }),
    PROBLEMS,
    options,
  );
  assert.deepEqual(rejected.queries, []);
  assert.deepEqual(rejected.problemIndex, []);
  assert.equal(rejected.overflow, 2);
  assert.equal(rejected.truncated, 0);
  const cut = correctionQueries(
    withPrompts(EMBEDDED, { max_prompt_tokens: 40, on_long_prompt: "truncate" }),
    PROBLEMS,
    options,
  );
  assert.equal(cut.overflow, 0);
  assert.equal(cut.truncated, 2);
  for (const q of cut.queries) {
    assert.deepEqual(q.promptIds, tokenizer.encode(q.prompt).slice(-40));
  }
  // max_prompt_tokens 0 is the context minus one: a 60-token context fits none of them.
  const ctx = correctionQueries(EMBEDDED, PROBLEMS, { ...options, contextLength: 60 });
  assert.equal(ctx.overflow, 2);
});

Deno.test("correctionQueries() draws the phrases and builds the prompts of evaluateSelfCorrection", async () => {
  // The first answers of a random tiny model to 12 held-out problems; evaluateSelfCorrection
  // with rounds 1 records every correction prompt it builds.
  const model = makeTinyModel(3);
  const tokenizer = new CharTokenizer();
  const problems = heldOut(EMBEDDED.task).problems.slice(0, 12);
  const options = selfCorrectionOptions(EMBEDDED);
  const seen: { prompt: string; phrase: string }[] = [];
  const result = await evaluateSelfCorrection(model, tokenizer, problems, {
    ...options,
    maxNewTokens: 8,
    buildCorrection: (question, text, phrase) => {
      const built = options.buildCorrection(question, text, phrase);
      seen.push({ prompt: built.prompt, phrase });
      return built;
    },
  });
  const built = correctionQueries(EMBEDDED, problems, {
    firstAnswers: result.completions.map((c) => c[0]!),
    tokenizer,
    contextLength: model.config.max_position_embeddings,
  });
  assert.deepEqual(
    built.queries.map((q) => ({ prompt: q.prompt, phrase: q.guidePhrase })),
    seen,
  );
  // Seeded: more than one phrase of the pool over 12 problems.
  assert.ok(new Set(seen.map((s) => s.phrase)).size > 1);
  model.dispose();
});
