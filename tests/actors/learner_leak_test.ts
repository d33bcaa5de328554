/**
 * Long-run leak checks: the Learner's training step and the Sampler's `generate()` must leave
 * the backend's tensor count and byte count flat however many times they run. A leak of one
 * tensor per step shows up as a difference of 90 between step 10 and step 100.
 *
 * Each test repeats one batch, so the packed length T is the same every step: the model
 * caches one causal mask per T (`Transformer.causalMask`), a bounded cache that a batch of a
 * new length would grow by one tensor. The batches are built (`makeScored` teacher-forces
 * them) before the baseline is taken, so those masks already exist.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { learner } from "../../actors/learner.ts";
import type { Query, StepStats, TrainBatch, Weights } from "../../actors/messages.ts";
import { initBackend } from "../../model/backend.ts";
import { CharTokenizer } from "../../model/char_tokenizer.ts";
import { generate } from "../../model/sampling.ts";
import { Rng } from "../../util/rng.ts";
import {
  type HandRollout,
  makeLearnerInput,
  makeQuery,
  makeScored,
  makeTinyModel,
  recordingContext,
  TWO_GROUPS,
  TWO_QUERIES,
} from "../helpers.ts";

await initBackend("wasm");

const STEPS = 100;
const SETTLE = 10;

const QUERIES = TWO_QUERIES;

const LAYER1 = TWO_GROUPS;

/** MGRPO's Layer 2: one correction group per Layer-1 query, the second group not kept. */
const CORRECTIONS: Query[] = [
  makeQuery("c0", "Ann has 2 pens and gets 3 more. Wait, let me check: 2+3=6", 5),
  makeQuery("c1", "Bo has 9 cards and gives away 4. Wait, let me check: 9-4=1", 5),
];
const LAYER2: HandRollout[] = [
  { query: 0, text: "<think>2+3=5, not 6</think>5", reward: 1 },
  { query: 0, text: "<think>still 6</think>6", reward: 0 },
  { query: 1, text: "<think>9-4=5</think>5", reward: 1 },
  { query: 1, text: "<think>1</think>1", reward: 0 },
];

/** `tf.memory()`'s tensor and byte counts. */
function memory(): { numTensors: number; numBytes: number } {
  const { numTensors, numBytes } = tf.memory();
  return { numTensors, numBytes };
}

Deno.test("learner.handle() keeps tensor memory flat over 100 Scored steps", async () => {
  const model = makeTinyModel(7);
  const scored = await makeScored(model, QUERIES, LAYER1, { n: 2 });
  const start = memory();
  const ctx = recordingContext("learner");
  const state = await learner.init(
    makeLearnerInput(model, { learner: { totalSteps: STEPS } }),
    ctx,
  );
  let settled: { numTensors: number; numBytes: number } | undefined;
  for (let step = 1; step <= STEPS; step++) {
    await learner.handle(state, { ...scored, step }, ctx);
    if (step === SETTLE) settled = memory();
  }
  assert.deepEqual(memory(), settled, `tensor memory grew between step ${SETTLE} and ${STEPS}`);
  // The steps really trained: one optimizer step and one weights message per step.
  assert.equal(state.optimizerSteps, STEPS);
  assert.equal(ctx.to<Weights>("sampler").at(-1)!.version, STEPS);
  assert.equal(ctx.to<StepStats>("stats").length, STEPS);
  learner.close!(state);
  assert.deepEqual(memory(), start, "the learner did not free all its tensors on close");
  model.dispose();
});

for (const update of ["joint", "sequential"] as const) {
  Deno.test(`learner.handle() keeps tensor memory flat over 100 two-part TrainBatch steps (${update})`, async () => {
    const model = makeTinyModel(8);
    const layer1 = await makeScored(model, QUERIES, LAYER1, { n: 2 });
    const layer2 = await makeScored(model, CORRECTIONS, LAYER2, { n: 2 });
    const start = memory();
    const batch: TrainBatch = {
      type: "TrainBatch",
      step: 1,
      update,
      metrics: { "mgrpo/acc_t1": 0.5 },
      parts: [
        { scored: layer1, weight: 1, prefix: "" },
        { scored: layer2, weight: 0.5, prefix: "layer2/", keep: [true, true, false, false] },
      ],
    };
    const ctx = recordingContext("learner");
    const state = await learner.init(
      makeLearnerInput(model, { learner: { totalSteps: STEPS } }),
      ctx,
    );
    let settled: { numTensors: number; numBytes: number } | undefined;
    for (let step = 1; step <= STEPS; step++) {
      await learner.handle(state, { ...batch, step }, ctx);
      if (step === SETTLE) settled = memory();
    }
    assert.deepEqual(memory(), settled, `tensor memory grew between step ${SETTLE} and ${STEPS}`);
    // joint: one optimizer step per training step; sequential: one per part.
    assert.equal(state.optimizerSteps, update === "joint" ? STEPS : 2 * STEPS);
    const last = ctx.to<StepStats>("stats").at(-1)!;
    assert.equal(last.step, STEPS);
    assert.equal(last.metrics["layer2/train/rows"], 2);
    assert.equal(last.metrics["mgrpo/acc_t1"], 0.5);
    learner.close!(state);
    assert.deepEqual(memory(), start, "the learner did not free all its tensors on close");
    model.dispose();
  });
}

Deno.test("generate() keeps the tensor count flat over 20 calls", async () => {
  const tokenizer = new CharTokenizer();
  const model = makeTinyModel(9);
  const prompts = [...QUERIES, ...CORRECTIONS].map((q) => q.promptIds);
  const rng = new Rng(3);
  const before = memory();
  let tokens = 0;
  for (let call = 0; call < 20; call++) {
    // Alternate plain sampling, top-k/top-p truncation and greedy decoding.
    const gens = await generate(model, prompts, {
      maxNewTokens: 12,
      temperature: 0.9,
      ...(call % 3 === 1 ? { topK: 20, topP: 0.9 } : {}),
      greedy: call % 3 === 2,
      stopIds: [tokenizer.imEndId],
      padId: tokenizer.padId,
      rng,
    });
    assert.equal(gens.length, prompts.length);
    tokens += gens.reduce((sum, g) => sum + g.tokens.length, 0);
  }
  assert.deepEqual(memory(), before, "generate() left tensors behind");
  assert.ok(tokens > 20 * prompts.length, `generated only ${tokens} tokens`);
  model.dispose();
});
