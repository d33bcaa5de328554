import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { learner, type PolicyAlgorithm } from "../../actors/learner.ts";
import type { Query, StepStats } from "../../actors/messages.ts";
import { initBackend } from "../../model/backend.ts";
import {
  type HandRollout,
  makeLearnerInput,
  makeQuery,
  makeScored,
  makeTinyModel,
  recordingContext,
  weightsOf,
} from "../helpers.ts";

await initBackend("wasm");

const QUERIES: Query[] = [makeQuery("q0", "Ann has 2 pens and gets 3 more.", 5)];
const ROLLOUTS: HandRollout[] = [
  { query: 0, text: "<think>2+3=5</think>5", reward: 1 },
  { query: 0, text: "<think>2+3=6</think>6", reward: 0 },
];

Deno.test("learner skips a non-finite update, names the tensors, and stops after max_consecutive_skips", async () => {
  const model = makeTinyModel(5);
  const base = makeLearnerInput(model, { learner: { maxConsecutiveSkips: 2 } });
  // The GRPO loss times NaN: every gradient is NaN.
  const poisoned: PolicyAlgorithm = {
    advantages: (scored, options) => base.algorithm.advantages(scored, options),
    loss(inputs, scale) {
      const out = base.algorithm.loss(inputs, scale);
      return { ...out, loss: tf.mul(out.loss, NaN) as tf.Scalar };
    },
  };
  const ctx = recordingContext("learner");
  const state = await learner.init({ ...base, algorithm: poisoned }, ctx);
  const before = await weightsOf(model);
  const errors: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args.join(" "));
  try {
    await learner.handle(state, await makeScored(model, QUERIES, ROLLOUTS, { n: 2, step: 1 }), ctx);
    const stats = ctx.only<StepStats>("stats");
    assert.equal(stats.metrics["train/skipped_updates"], 1);
    assert.deepEqual(await weightsOf(model), before, "a skipped update leaves the weights");
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /^learner: step 1: update skipped: non-finite gradient in "model\./);
    assert.ok(errors[0]!.includes('"model.embed_tokens.weight"'), errors[0]);

    // The second skip in a row fails the Learner with the reason and the knob.
    await assert.rejects(
      async () =>
        await learner.handle(
          state,
          await makeScored(model, QUERIES, ROLLOUTS, { n: 2, step: 2 }),
          ctx,
        ),
      /^RangeError: Cannot train: 2 updates in a row were skipped for non-finite gradients \(the last at step 2, in "model\..*\(learner\.max_consecutive_skips is 2\)$/,
    );
  } finally {
    console.error = original;
    learner.close!(state);
    model.dispose();
  }
});

Deno.test("learner resets the skip count after a finite update", async () => {
  const model = makeTinyModel(6);
  const base = makeLearnerInput(model, { learner: { maxConsecutiveSkips: 2 } });
  let poison = true;
  const flaky: PolicyAlgorithm = {
    advantages: (scored, options) => base.algorithm.advantages(scored, options),
    loss(inputs, scale) {
      const out = base.algorithm.loss(inputs, scale);
      return poison ? { ...out, loss: tf.mul(out.loss, Infinity) as tf.Scalar } : out;
    },
  };
  const ctx = recordingContext("learner");
  const state = await learner.init({ ...base, algorithm: flaky }, ctx);
  const original = console.error;
  console.error = () => {};
  try {
    for (const [step, p] of [[1, true], [2, false], [3, true], [4, false]] as const) {
      poison = p;
      await learner.handle(state, await makeScored(model, QUERIES, ROLLOUTS, { n: 2, step }), ctx);
    }
    assert.deepEqual(
      ctx.to<StepStats>("stats").map((s) => s.metrics["train/skipped_updates"]),
      [1, 0, 1, 0],
    );
  } finally {
    console.error = original;
    learner.close!(state);
    model.dispose();
  }
});
