import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  decodeOptimizerState,
  encodeOptimizerState,
  learner,
  OPTIMIZER_FILE,
  type PolicyAlgorithm,
} from "../../actors/learner.ts";
import type {
  Checkpoint,
  CheckpointSaved,
  Generate,
  Query,
  StepStats,
  TrainBatch,
  Weights,
} from "../../actors/messages.ts";
import { layer2Advantages, MgrpoConfigSchema } from "../../algorithms/mgrpo/mod.ts";
import { corrector } from "../../algorithms/mgrpo/corrector.ts";
import { CharTokenizer } from "../../model/char_tokenizer.ts";
import { initBackend } from "../../model/backend.ts";
import { loadCheckpoint } from "../../model/checkpoint.ts";
import { completionLogprobs } from "../../model/sampling.ts";
import { learningRateAt } from "../../model/optimizer.ts";
import {
  assertClose,
  type HandRollout,
  makeLearnerInput,
  makeQuery,
  makeScored,
  makeTinyModel,
  recordingContext,
  TWO_GROUPS,
  TWO_QUERIES,
  weightsDiff,
  weightsOf,
} from "../helpers.ts";

await initBackend("wasm");

const QUERIES: Query[] = [
  makeQuery("q0", "Ann has 2 pens and gets 3 more.", 5),
  makeQuery("q1", "Bo has 9 cards and gives away 4.", 5),
];

/** Two groups of G = 2 with rewards 1, 0 | 0.5, 0: mean 0.375, accuracy 0.25. */
const MIXED: HandRollout[] = [
  { query: 0, text: "<think>2+3=5</think>5", reward: 1 },
  { query: 0, text: "<think>2+3=6</think>6 ok", reward: 0 },
  { query: 1, text: "<think>9-4=5</think>", reward: 0.5 },
  { query: 1, text: "<think>x</think>1", reward: 0 },
];

/** TRL's group advantage of a group of two: ±|r1 - r2|/2 / (std + 1e-4), std = |r1 - r2|/√2. */
function pairAdvantage(r1: number, r2: number): [number, number] {
  const a = Math.abs(r1 - r2) / 2 / (Math.abs(r1 - r2) / Math.SQRT2 + 1e-4);
  return r1 > r2 ? [a, -a] : [-a, a];
}

/** The dapo loss at ratio 1: -Σ_i A_i·T_i / Σ_i T_i over the rows in `rows`. */
function lossAtRatioOne(advantages: number[], lengths: number[], rows: number[]): number {
  let num = 0, den = 0;
  for (const i of rows) {
    num += advantages[i]! * lengths[i]!;
    den += lengths[i]!;
  }
  return -num / den;
}

Deno.test("learner.handle() updates the policy and reports the step's metrics", async () => {
  const model = makeTinyModel(5);
  const scored = await makeScored(model, QUERIES, MIXED, { n: 2, step: 1 });
  const before = await weightsOf(model);
  const ctx = recordingContext("learner");
  const state = await learner.init(makeLearnerInput(model), ctx);
  await learner.handle(state, scored, ctx);

  // New weights go to the sampler, with version 1, equal to the model's.
  assert.deepEqual(ctx.sent.map((s) => s.to), ["sampler", "stats"]);
  const weights = ctx.only<Weights>("sampler");
  assert.equal(weights.version, 1);
  const after = await weightsOf(model);
  assert.equal(weightsDiff(weights.tensors, after), 0);
  assert.ok(weightsDiff(before, after) > 1e-4, "the weights did not change");
  assert.equal(state.version, 1);
  assert.equal(state.optimizerSteps, 1);

  const stats = ctx.only<StepStats>("stats");
  assert.equal(stats.step, 1);
  assert.equal(stats.policyVersion, 1);
  const m = stats.metrics;
  assert.equal(m["reward/mean"], 0.375);
  assertClose(m["reward/std"]!, Math.sqrt((0.625 ** 2 + 0.375 ** 2 + 0.125 ** 2 + 0.375 ** 2) / 3));
  assert.equal(m["accuracy"], 0.25);
  const lengths = scored.rollouts.map((r) => r.completionIds.length);
  assert.equal(m["completions/mean_length"], lengths.reduce((a, b) => a + b) / 4);
  assert.equal(m["completions/min_length"], Math.min(...lengths));
  assert.equal(m["completions/max_length"], Math.max(...lengths));
  assert.equal(m["completions/clipped_ratio"], 0);
  assert.equal(m["policy_version/sampler"], 0);
  assert.equal(m["frac_reward_zero_std"], 0);
  assert.equal(m["train/rows"], 4);
  assert.equal(m["train/skipped_updates"], 0);
  assert.equal(m["learning_rate"], 1e-2);
  // Ratio 1 (old log-probs are the policy's): no clipping, loss = -Σ A·T / Σ T.
  const advantages = [...pairAdvantage(1, 0), ...pairAdvantage(0.5, 0)];
  assertClose(m["loss/policy"]!, lossAtRatioOne(advantages, lengths, [0, 1, 2, 3]), 1e-5);
  assertClose(m["ratio/mean"]!, 1, 1e-5);
  assert.equal(m["clip_ratio/low_mean"], 0);
  assert.equal(m["clip_ratio/high_mean"], 0);
  assert.equal(m["clip_ratio/region_mean"], 0);
  assert.equal(m["kl"], 0); // β = 0
  assert.ok(m["grad_norm"]! > 0 && Number.isFinite(m["grad_norm"]));
  // A random-init model is close to uniform over the 101 ids: entropy just below ln 101.
  assert.ok(m["entropy"]! <= Math.log(101) + 1e-5 && m["entropy"]! > Math.log(101) - 0.05);
  assert.ok(m["time/learner"]! > 0);
  // The step's samples: one group per prompt, each completion with the advantage it trained
  // with (the same ones the loss above was checked against).
  const trained = stats.samples.flatMap((g) => g.completions.map((c) => c.advantage!));
  trained.forEach((a, i) => assertClose(a, advantages[i]!, 1e-6, `advantage ${i}`));
  const completion = (i: number, reason: string) => ({
    text: MIXED[i]!.text,
    reward: MIXED[i]!.reward,
    advantage: trained[i],
    correct: MIXED[i]!.reward === 1,
    reason,
  });
  assert.deepEqual(stats.samples, [
    {
      step: 1,
      prompt: QUERIES[0]!.question,
      completions: [completion(0, "correct"), completion(1, 'answer is not an integer: "6 ok"')],
    },
    {
      step: 1,
      prompt: QUERIES[1]!.question,
      completions: [completion(2, "empty answer"), completion(3, "wrong answer")],
    },
  ]);
  learner.close!(state);
  model.dispose();
});

Deno.test("learner.handle() reports clip ratios from the importance ratio", async () => {
  const model = makeTinyModel(5);
  // Rewards 1, 0 | 1, 0: rows 0 and 2 have A > 0, rows 1 and 3 A < 0. Old log-probs one nat
  // below the policy's for A > 0 (ratio e > 1 + ε) and one above for A < 0 (ratio 1/e < 1 - ε):
  // every token is clipped, so the loss has no gradient and the weights stay.
  const rollouts = MIXED.map((r, i) => ({ ...r, reward: i % 2 === 0 ? 1 : 0 }));
  const scored = await makeScored(model, QUERIES, rollouts, {
    n: 2,
    logprobShift: (i) => (i % 2 === 0 ? -1 : 1),
  });
  const before = await weightsOf(model);
  const ctx = recordingContext("learner");
  const state = await learner.init(makeLearnerInput(model), ctx);
  await learner.handle(state, scored, ctx);
  const m = ctx.only<StepStats>("stats").metrics;

  const lengths = scored.rollouts.map((r) => r.completionIds.length);
  const total = lengths.reduce((a, b) => a + b);
  const positive = lengths[0]! + lengths[2]!;
  const negative = lengths[1]! + lengths[3]!;
  const [a] = pairAdvantage(1, 0);
  assertClose(m["clip_ratio/high_mean"]!, positive / total, 1e-6);
  assertClose(m["clip_ratio/low_mean"]!, negative / total, 1e-6);
  assertClose(m["clip_ratio/region_mean"]!, 1, 1e-6);
  assertClose(m["ratio/mean"]!, (Math.E * positive + negative / Math.E) / total, 1e-4);
  // -min(r·A, clip(r)·A): -1.2·A on A > 0 tokens, +0.8·A on A < 0 tokens.
  assertClose(m["loss/policy"]!, (-1.2 * a * positive + 0.8 * a * negative) / total, 1e-4);
  assert.equal(m["grad_norm"], 0);
  assert.equal(weightsDiff(before, await weightsOf(model)), 0);
  learner.close!(state);
  model.dispose();
});

Deno.test("learner.handle() with filter_groups leaves zero-variance groups out of the loss", async () => {
  const model = makeTinyModel(5);
  const ctx = recordingContext("learner");
  const state = await learner.init(makeLearnerInput(model, { grpo: { filter_groups: true } }), ctx);

  // Group 0 rewards 1, 0; group 1 rewards 1, 1 (dropped).
  const partial = await makeScored(
    model,
    QUERIES,
    MIXED.map((r, i) => ({ ...r, reward: i === 1 ? 0 : 1 })),
    { n: 2, step: 1 },
  );
  await learner.handle(state, partial, ctx);
  let m = ctx.to<StepStats>("stats")[0]!.metrics;
  assert.equal(m["train/rows"], 2);
  assert.equal(m["groups/filtered"], 1);
  assert.equal(m["frac_reward_zero_std"], 0.5);
  const lengths = partial.rollouts.map((r) => r.completionIds.length);
  assertClose(m["loss/policy"]!, lossAtRatioOne(pairAdvantage(1, 0), lengths, [0, 1]), 1e-5);
  assert.equal(m["reward/mean"], 0.75); // rewards are reported over the whole batch

  // Every group all-equal: no rows, no update; the version still advances.
  const before = await weightsOf(model);
  const flat = await makeScored(model, QUERIES, MIXED.map((r) => ({ ...r, reward: 1 })), {
    n: 2,
    step: 2,
  });
  await learner.handle(state, flat, ctx);
  m = ctx.to<StepStats>("stats")[1]!.metrics;
  assert.equal(m["train/rows"], 0);
  assert.equal(m["groups/filtered"], 2);
  assert.equal(m["frac_reward_zero_std"], 1);
  assert.equal(m["reward/mean"], 1);
  assert.equal(m["loss/policy"], undefined);
  assert.equal(weightsDiff(before, await weightsOf(model)), 0);
  assert.equal(state.optimizerSteps, 1);
  assert.deepEqual(ctx.to<Weights>("sampler").map((w) => w.version), [1, 2]);
  learner.close!(state);
  model.dispose();
});

Deno.test("learner.handle() trains a Layer-2 part on layer2Advantages() of its kept groups (batch std)", async () => {
  const model = makeTinyModel(5);
  const base = makeLearnerInput(model, { grpo: { scale_rewards: "batch" } });
  // The advantages each loss call trains on, one array per part (one micro-batch each).
  const trained: number[][] = [];
  const recording: PolicyAlgorithm = {
    advantages: (scored, options) => base.algorithm.advantages(scored, options),
    loss(inputs, scale) {
      trained.push([...inputs.advantages.dataSync()]);
      return base.algorithm.loss(inputs, scale);
    },
  };
  const ctx = recordingContext("learner");
  const state = await learner.init({ ...base, algorithm: recording }, ctx);
  const layer1 = await makeScored(model, QUERIES, MIXED, { n: 2 });
  // H = 2 corrections of three q'_i: q'_0 kept, q'_1 discarded (o_1 wrong and both
  // corrections wrong), q'_2 kept. Completions of different lengths, so the loss sees A.
  const corrections = [0, 1, 2].map((i) => makeQuery(`q${i}'`, QUERIES[0]!.question, 5));
  const rewards = [[1, 0], [0, 0], [1, 1]];
  const layer2 = await makeScored(model, corrections, [
    { query: 0, text: "<think>2+3=5</think>5", reward: 1 },
    { query: 0, text: "<think>2+3=6, so 6</think>6", reward: 0 },
    { query: 1, text: "<think>2+3=7</think>7", reward: 0 },
    { query: 1, text: "<think>2+3=4</think>4", reward: 0 },
    { query: 2, text: "<think>yes</think>5", reward: 1 },
    { query: 2, text: "<think>2+3 is 5</think>5", reward: 1 },
  ], { n: 2 });
  const batch: TrainBatch = {
    type: "TrainBatch",
    step: 1,
    update: "joint",
    metrics: {},
    parts: [
      { scored: layer1, weight: 1, prefix: "" },
      {
        scored: { ...layer2, label: "layer2" },
        weight: 1,
        prefix: "layer2/",
        keep: [true, true, false, false, true, true],
      },
    ],
  };
  await learner.handle(state, batch, ctx);

  // Kept rewards [1, 0, 1, 1]: mean 0.75, Σ(r − mean)² = 3·0.0625 + 0.5625 = 0.75, unbiased
  // std sqrt(0.75 / 3) = 0.5 → q'_0: ±(1 − 0.5) / (0.5 + 1e-4) = ±0.99980; q'_2: 0 / 0.5001 = 0.
  const expected = [0.99980, -0.99980, 0, 0];
  assert.equal(trained.length, 2);
  const l2 = trained[1]!; // the rows of q'_0 and q'_2
  for (let k = 0; k < expected.length; k++) assertClose(l2[k]!, expected[k]!, 1e-5, `row ${k}`);
  const [a0, , a2] = layer2Advantages(rewards, [true, false, true], "batch");
  assert.deepEqual(l2, [...a0!, ...a2!]);
  // The old path (the std over all six rewards [1, 0, 0, 0, 1, 1]: mean 0.5, Σ = 6·0.25 = 1.5,
  // std sqrt(1.5 / 5) = 0.547723) trained q'_0 on ±0.5 / 0.547823 = ±0.91270 instead.
  assert.ok(Math.abs(l2[0]! - 0.91270) > 0.05, `row 0 trained on ${l2[0]}`);

  const m = ctx.only<StepStats>("stats").metrics;
  assert.equal(m["layer2/train/rows"], 4);
  const lengths = layer2.rollouts.map((r) => r.completionIds.length);
  assertClose(
    m["layer2/loss/policy"]!,
    lossAtRatioOne([0.99980, -0.99980, 0, 0, 0, 0], lengths, [0, 1, 4, 5]),
    1e-5,
  );
  learner.close!(state);
  model.dispose();
});

Deno.test("learner.handle() shows an MGRPO step's prompts with every completion, guide phrase and correction", async () => {
  const model = makeTinyModel(5);
  const base = makeLearnerInput(model);
  // The advantages each loss call trains on, one array per part (one micro-batch each).
  const trained: number[][] = [];
  const recording: PolicyAlgorithm = {
    advantages: (scored, options) => base.algorithm.advantages(scored, options),
    loss(inputs, scale) {
      trained.push([...inputs.advantages.dataSync()]);
      return base.algorithm.loss(inputs, scale);
    },
  };
  const ctx = recordingContext("learner");
  const state = await learner.init({ ...base, algorithm: recording }, ctx);

  // Layer 1: G = 2 answers to each of two prompts, rewards [1, 0] | [1, 0]. The Corrector
  // builds q'_0..q'_3; q'_2 (66 tokens) is over the 65-token limit and is not sampled.
  const sampling = { maxNewTokens: 8, temperature: 1, topP: 1, topK: 0, greedy: false };
  const mgrpo = MgrpoConfigSchema.parse({
    num_corrections: 2,
    guide_phrases: ["Check.", "Again."],
  });
  const cctx = recordingContext("corrector");
  const cstate = await corrector.init({
    tokenizer: new CharTokenizer(),
    config: mgrpo,
    seed: 1,
    sampling,
    target: "learner",
    maxPromptTokens: 65,
  }, cctx);
  const layer1 = await makeScored(model, QUERIES, TWO_GROUPS, { n: 2 });
  await corrector.handle(cstate, layer1, cctx);
  const asked = cctx.only<Generate>("sampler").queries;
  assert.deepEqual(asked.map((q) => q.id), ["q0/o0", "q0/o1", "q1/o3"]);
  const phrases = asked.map((q) => q.guidePhrase!);
  asked.forEach((q, k) => assert.ok(q.prompt.endsWith(`\n${phrases[k]}`), q.prompt));
  assert.deepEqual(phrases, ["Check.", "Again.", "Again."]); // drawn with seed 1

  // H = 2 corrections each: o_0 (right) → right, wrong; o_1 (wrong) → right, right;
  // o_3 (wrong) → wrong, wrong: the paper discards q'_3.
  const corrections = [
    { query: 0, text: "<think>again</think>5", reward: 1 },
    { query: 0, text: "<think>again</think>7", reward: 0 },
    { query: 1, text: "<think>2+3=5</think>5", reward: 1 },
    { query: 1, text: "<think>so 5</think>5", reward: 1 },
    { query: 2, text: "<think>9-4=6</think>6", reward: 0 },
    { query: 2, text: "<think>x</think>2", reward: 0 },
  ];
  const layer2 = await makeScored(model, asked, corrections, { n: 2 });
  await corrector.handle(cstate, { ...layer2, label: "layer2" }, cctx);
  await learner.handle(state, cctx.only<TrainBatch>("learner"), ctx);
  const stats = ctx.only<StepStats>("stats");

  // TRL's group advantage of rewards [1, 0]: ±0.5 / (sqrt(0.5) + 1e-4) = ±0.70700.
  const a = 0.5 / (Math.SQRT1_2 + 1e-4);
  assertClose(a, 0.70700, 1e-5);
  const l1 = stats.samples.flatMap((g) => g.completions.map((c) => c.advantage!));
  [a, -a, a, -a].forEach((x, i) => assertClose(l1[i]!, x, 1e-6, `layer 1 row ${i}`));
  const l2 = stats.samples.flatMap((g) =>
    g.completions.flatMap((c) => c.corrections!.map((k) => k.advantage))
  );
  // q'_0 trains on ±0.70700, q'_1 (all right) on 0, q'_3 is left out: null.
  [a, -a, 0, 0].forEach((x, i) => assertClose(l2[i]!, x, 1e-6, `correction ${i}`));
  assert.deepEqual(l2.slice(4), [null, null]);
  // These are the advantages the loss trained on, row for row.
  assert.deepEqual(trained, [l1, l2.slice(0, 4)]);
  assert.equal(stats.metrics["layer2/train/rows"], 4);

  const verdict = (text: string, reward: number, advantage: number | null) => ({
    text,
    reward,
    advantage,
    correct: reward === 1,
    reason: reward === 1 ? "correct" : "wrong answer",
  });
  const fix = (k: number) => verdict(corrections[k]!.text, corrections[k]!.reward, l2[k]!);
  const o = (i: number) => verdict(TWO_GROUPS[i]!.text, TWO_GROUPS[i]!.reward, l1[i]!);
  assert.deepEqual(stats.samples, [
    {
      step: 1,
      prompt: QUERIES[0]!.question,
      completions: [
        { ...o(0), guidePhrase: "Check.", discarded: false, corrections: [fix(0), fix(1)] },
        { ...o(1), guidePhrase: "Again.", discarded: false, corrections: [fix(2), fix(3)] },
      ],
    },
    {
      step: 1,
      prompt: QUERIES[1]!.question,
      completions: [
        // Its q'_2 did not fit: no corrections, none trained.
        { ...o(2), discarded: true, corrections: [] },
        { ...o(3), guidePhrase: "Again.", discarded: true, corrections: [fix(4), fix(5)] },
      ],
    },
  ]);
  learner.close!(state);
  model.dispose();
});

Deno.test("learner.handle() shows only the first sampleGroupsPerStep prompts", async () => {
  const model = makeTinyModel(5);
  const ctx = recordingContext("learner");
  const state = await learner.init(
    makeLearnerInput(model, { learner: { sampleGroupsPerStep: 1 } }),
    ctx,
  );
  await learner.handle(state, await makeScored(model, QUERIES, MIXED, { n: 2 }), ctx);
  const { samples } = ctx.only<StepStats>("stats");
  assert.deepEqual(samples.map((g) => [g.prompt, g.completions.length]), [
    [QUERIES[0]!.question, 2],
  ]);
  learner.close!(state);
  model.dispose();
});

Deno.test("learner.handle() with mask_truncated_completions excludes truncated rows", async () => {
  const rollouts: HandRollout[] = [{ ...MIXED[0]!, truncated: true }, ...MIXED.slice(1)];
  const advantages = [...pairAdvantage(1, 0), ...pairAdvantage(0.5, 0)];

  const run = async (maskTruncated: boolean, batch: HandRollout[]) => {
    const model = makeTinyModel(5);
    const scored = await makeScored(model, QUERIES, batch, { n: 2 });
    const before = await weightsOf(model);
    const ctx = recordingContext("learner");
    const state = await learner.init(
      makeLearnerInput(model, { grpo: { mask_truncated_completions: maskTruncated } }),
      ctx,
    );
    await learner.handle(state, scored, ctx);
    const changed = weightsDiff(before, await weightsOf(model));
    learner.close!(state);
    model.dispose();
    return {
      m: ctx.only<StepStats>("stats").metrics,
      shown: ctx.only<StepStats>("stats").samples.flatMap((g) =>
        g.completions.map((c) => c.advantage)
      ),
      lengths: scored.rollouts.map((r) => r.completionIds.length),
      changed,
    };
  };

  const masked = await run(true, rollouts);
  assert.equal(masked.m["completions/clipped_ratio"], 0.25);
  // The truncated row trains on nothing, and its sample says so.
  assert.equal(masked.shown[0], null);
  masked.shown.slice(1).forEach((x, i) => assertClose(x!, advantages[i + 1]!, 1e-6));
  assertClose(
    masked.m["loss/policy"]!,
    lossAtRatioOne(advantages, masked.lengths, [1, 2, 3]),
    1e-5,
  );
  const unmasked = await run(false, rollouts);
  assertClose(unmasked.shown[0]!, advantages[0]!, 1e-6);
  assertClose(
    unmasked.m["loss/policy"]!,
    lossAtRatioOne(advantages, unmasked.lengths, [0, 1, 2, 3]),
    1e-5,
  );

  // All rows truncated: nothing enters the loss, so the weights do not move.
  const allTruncated = MIXED.map((r) => ({ ...r, truncated: true }));
  const none = await run(true, allTruncated);
  assert.equal(none.m["loss/policy"], 0);
  assert.equal(none.m["entropy"], 0);
  assert.equal(none.changed, 0);
  assert.ok((await run(false, allTruncated)).changed > 1e-4);
});

Deno.test("learner.handle() writes a loadable checkpoint on Checkpoint and reports it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "learner_test_" });
  try {
    const model = makeTinyModel(5);
    const scored = await makeScored(model, QUERIES, MIXED, { n: 2 });
    const ctx = recordingContext("learner");
    const state = await learner.init(
      makeLearnerInput(model, { learner: { checkpointState: () => ({ seed: 11 }) } }),
      ctx,
    );
    await learner.handle(state, scored, ctx);
    const message: Checkpoint = { type: "Checkpoint", step: 1, path: `${dir}/checkpoint-1` };
    await learner.handle(state, message, ctx);

    const saved = ctx.only<CheckpointSaved>("events");
    assert.deepEqual(saved, { type: "CheckpointSaved", step: 1, path: `${dir}/checkpoint-1` });
    const loaded = await loadCheckpoint(`${dir}/checkpoint-1`);
    assert.equal(weightsDiff(await weightsOf(loaded.model), await weightsOf(model)), 0);
    assert.deepEqual(loaded.state, {
      step: 1,
      policy_version: 1,
      optimizer_steps: 1,
      consecutive_skips: 0,
      seed: 11,
    });
    const bytes = await Deno.readFile(`${dir}/checkpoint-1/${OPTIMIZER_FILE}`);
    const optimizer = decodeOptimizerState(bytes, OPTIMIZER_FILE);
    assert.equal(optimizer.step, 1);
    assert.deepEqual(Object.keys(optimizer.m).sort(), [...model.params.keys()].sort());
    assert.deepEqual(Object.keys(optimizer.v).sort(), [...model.params.keys()].sort());
    assert.deepEqual(decodeOptimizerState(encodeOptimizerState(optimizer), "x"), optimizer);
    loaded.model.dispose();
    learner.close!(state);
    model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("learner.handle() resumed from a checkpoint continues bit for bit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "learner_test_" });
  try {
    // Uninterrupted: two steps, the step-1 checkpoint written on the way (the Trainer's
    // Checkpoint message: the Learner writes none on its own).
    const model = makeTinyModel(5);
    const batch1 = await makeScored(model, QUERIES, MIXED, { n: 2, step: 1 });
    const batch2 = { ...batch1, step: 2 };
    const ctx = recordingContext("learner");
    const state = await learner.init(makeLearnerInput(model), ctx);
    await learner.handle(state, batch1, ctx);
    const snapshot = `${dir}/snapshot`;
    await learner.handle(state, { type: "Checkpoint", step: 1, path: snapshot }, ctx);
    await learner.handle(state, batch2, ctx);
    const straight = await weightsOf(model);
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["snapshot"]);

    // Resumed: load the step-1 snapshot and its optimizer state, run step 2 again.
    const loaded = await loadCheckpoint(snapshot);
    const optimizer = decodeOptimizerState(
      await Deno.readFile(`${snapshot}/${OPTIMIZER_FILE}`),
      OPTIMIZER_FILE,
    );
    const resumedCtx = recordingContext("learner");
    const resumed = await learner.init(
      makeLearnerInput(loaded.model, {
        learner: { resume: { optimizerSteps: 1, version: 1, optimizer } },
      }),
      resumedCtx,
    );
    await learner.handle(resumed, batch2, resumedCtx);
    assert.equal(resumedCtx.only<Weights>("sampler").version, 2);
    assert.equal(resumedCtx.only<StepStats>("stats").policyVersion, 2);
    assert.ok(weightsDiff(await weightsOf(loaded.model), straight) < 1e-6);
    learner.close!(state);
    learner.close!(resumed);
    model.dispose();
    loaded.model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("learner.handle() accumulates micro-batches to the loss and gradient of one batch", async () => {
  // dapo divides by the tokens of the whole batch and grpo averages sequences, so both are
  // independent of the micro-batch split (bnpo is a per-micro-batch token mean, as in TRL).
  for (const lossType of ["dapo", "grpo"] as const) {
    const results: Record<string, number>[] = [];
    for (const microBatchSize of [64, 3, 1]) {
      const model = makeTinyModel(5);
      const scored = await makeScored(model, QUERIES, MIXED, { n: 2 });
      const ctx = recordingContext("learner");
      const state = await learner.init(
        makeLearnerInput(model, { grpo: { loss_type: lossType }, learner: { microBatchSize } }),
        ctx,
      );
      await learner.handle(state, scored, ctx);
      results.push(ctx.only<StepStats>("stats").metrics);
      learner.close!(state);
      model.dispose();
    }
    const [whole, ...split] = results;
    for (const m of split) {
      assertClose(m["loss/policy"]!, whole!["loss/policy"]!, 1e-5, `${lossType} loss`);
      assertClose(m["grad_norm"]!, whole!["grad_norm"]!, 1e-4 * whole!["grad_norm"]!, lossType);
      assertClose(m["entropy"]!, whole!["entropy"]!, 1e-5, `${lossType} entropy`);
    }
  }
});

Deno.test("learner.handle() frees its intermediate tensors", async () => {
  const model = makeTinyModel(5);
  const ref = model.clone({ trainable: false });
  const scored = await makeScored(model, QUERIES, MIXED, { n: 2 });
  scored.refLogprobs = await completionLogprobs(
    ref,
    scored.rollouts.map((r) => QUERIES[r.queryIndex]!.promptIds),
    scored.rollouts.map((r) => r.completionIds),
    { padId: 0 },
  );
  const ctx = recordingContext("learner");
  // β > 0, μ = 2 and micro-batches of 3: every path of the update runs.
  const state = await learner.init(
    makeLearnerInput(model, {
      grpo: { beta: 0.04, num_iterations: 2 },
      learner: { numIterations: 2, microBatchSize: 3 },
    }),
    ctx,
  );
  await learner.handle(state, scored, ctx); // creates the optimizer moments
  const before = tf.memory().numTensors;
  await learner.handle(state, { ...scored, step: 2 }, ctx);
  await learner.handle(state, { ...scored, step: 3 }, ctx);
  assert.equal(tf.memory().numTensors, before);
  assert.equal(state.optimizerSteps, 6);
  learner.close!(state);
  model.dispose();
  ref.dispose();
});

Deno.test("learner.handle() raises the log-prob of rewarded completions and lowers the others", async () => {
  const model = makeTinyModel(5);
  const input = makeLearnerInput(model, { learner: { lr: 1e-3 } });
  const state = await learner.init(input, recordingContext("learner"));
  const scored = await makeScored(model, QUERIES, MIXED, { n: 2 });
  const logps = async () =>
    (await completionLogprobs(
      model,
      scored.rollouts.map((r) => QUERIES[r.queryIndex]!.promptIds),
      scored.rollouts.map((r) => r.completionIds),
      { padId: 0 },
    )).map((lp) => lp.reduce((a, b) => a + b, 0));
  const before = await logps();
  await learner.handle(state, scored, recordingContext("learner"));
  const after = await logps();
  // Rewards 1 > 0 and 0.5 > 0: rows 0 and 2 have A > 0, rows 1 and 3 have A < 0.
  assert.ok(after[0]! > before[0]!, `row 0: ${before[0]} -> ${after[0]}`);
  assert.ok(after[1]! < before[1]!, `row 1: ${before[1]} -> ${after[1]}`);
  assert.ok(after[2]! > before[2]!, `row 2: ${before[2]} -> ${after[2]}`);
  assert.ok(after[3]! < before[3]!, `row 3: ${before[3]} -> ${after[3]}`);
  state.optimizer.dispose();
  model.dispose();
});

for (const update of ["joint", "sequential"] as const) {
  Deno.test(`learner follows the learning-rate schedule by training step (${update} MGRPO update)`, async () => {
    const model = makeTinyModel(11);
    const layer1 = await makeScored(model, TWO_QUERIES, TWO_GROUPS, { n: 2 });
    const corrections: Query[] = [
      makeQuery("c0", "Ann has 2 pens and gets 3 more. Wait, let me check: 2+3=6", 5),
      makeQuery("c1", "Bo has 9 cards and gives away 4. Wait, let me check: 9-4=1", 5),
    ];
    const layer2 = await makeScored(model, corrections, [
      { query: 0, text: "<think>2+3=5, not 6</think>5", reward: 1 },
      { query: 0, text: "<think>still 6</think>6", reward: 0 },
      { query: 1, text: "<think>9-4=5</think>5", reward: 1 },
      { query: 1, text: "<think>1</think>1", reward: 0 },
    ], { n: 2 });
    const ctx = recordingContext("learner");
    // Cosine over 4 steps after 1 warm-up step, to 10% of the peak: lr(i) by hand for the
    // positions i = 0…3 of learningRateAt (warm-up 0, then 1, cos, cos, 0.1 + 0.9·(1+cos π·2/3)/2).
    const state = await learner.init(
      makeLearnerInput(model, {
        learner: {
          lr: 1e-2,
          lrSchedule: "cosine",
          warmupRatio: 0.25,
          minLrRatio: 0.1,
          totalSteps: 4,
        },
      }),
      ctx,
    );
    for (let step = 1; step <= 4; step++) {
      await learner.handle(state, {
        type: "TrainBatch",
        step,
        update,
        metrics: {},
        parts: [
          { scored: layer1, weight: 1, prefix: "" },
          { scored: layer2, weight: 1, prefix: "layer2/" },
        ],
      }, ctx);
    }
    const lrs = ctx.to<StepStats>("stats").map((s) => s.metrics["learning_rate"]!);
    const expected = [0, 1, 2, 3].map((i) =>
      learningRateAt(i, {
        lr: 1e-2,
        totalSteps: 4,
        warmupRatio: 0.25,
        schedule: "cosine",
        minLrRatio: 0.1,
      })
    );
    assert.deepEqual(lrs, expected);
    // The last step is still above the floor: the schedule did not end at step 2 (sequential
    // takes two optimizer steps a step; counting those ended it halfway).
    assert.ok(lrs[3]! > 1e-3, `last lr ${lrs[3]}`);
    assert.equal(state.optimizerSteps, update === "joint" ? 4 : 8);
    learner.close!(state);
    model.dispose();
  });
}
