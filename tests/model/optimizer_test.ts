import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  AdamW,
  clipByGlobalNorm,
  clipByGlobalNormAsync,
  learningRateAt,
  type LearningRateOptions,
} from "../../model/optimizer.ts";

tf.enableProdMode();
await tf.setBackend("cpu");

function assertClose(actual: number, expected: number, tol = 1e-6, label = ""): void {
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${label} expected ${expected}, got ${actual} (tolerance ${tol})`,
  );
}

function assertAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6): void {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) assertClose(actual[i]!, expected[i]!, tol, `[${i}]`);
}

// --- AdamW ---

Deno.test("AdamW.step() takes the hand-computed first step with decoupled decay", () => {
  const w = tf.variable(tf.tensor1d([1.0, -2.0]));
  const opt = new AdamW({ w }, { weightDecay: 0.1 });
  opt.step({ w: tf.tensor1d([0.5, -1.0]) }, 0.1);
  // decay: w·(1 - lr·λ) = w·0.99 = [0.99, -1.98]
  // m = 0.1·g = [0.05, -0.1], v = 0.001·g² = [0.00025, 0.001]
  // m̂ = m/0.1 = [0.5, -1], sqrt(v)/sqrt(0.001) = [0.5, 1]
  // step = lr·m̂/(·+ε) = [0.1, -0.1] → w = [0.89, -1.88]
  assertAllClose(w.dataSync(), [0.89, -1.88]);
  assert.equal(opt.stepCount, 1);
});

Deno.test("AdamW.step() decays weights without routing the decay through the moments", () => {
  // g = 0: m = v = 0, the Adam term is 0/(0+ε) = 0, only w·(1 - lr·λ) = 2·(1 - 0.5·0.1) = 1.9
  // (L2-coupled Adam would have taken a full step of ≈ lr: 2 - 0.5 = 1.5)
  const w = tf.variable(tf.tensor1d([2]));
  const b = tf.variable(tf.tensor1d([2]));
  const opt = new AdamW({ w, b }, { weightDecay: 0.1, noDecay: (name) => name === "b" });
  opt.step({ w: tf.zeros([1]), b: tf.zeros([1]) }, 0.5);
  assertAllClose(w.dataSync(), [1.9]);
  assertAllClose(b.dataSync(), [2]);
});

Deno.test("AdamW.step() matches tf.train.adam over 3 steps without weight decay", () => {
  const init = [0.3, -1.2, 2.5, 0.0];
  const ours = tf.variable(tf.tensor2d(init, [2, 2]));
  const theirs = tf.variable(tf.tensor2d(init, [2, 2]));
  const opt = new AdamW({ ours }, { beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0 });
  const reference = tf.train.adam(0.05, 0.8, 0.95, 1e-6);
  const grads = [[0.1, -0.2, 0.3, 1.0], [-0.5, 0.4, 0.0, 2.0], [0.2, 0.2, -1.0, -0.3]];
  for (const g of grads) {
    opt.step({ ours: tf.tensor2d(g, [2, 2]) }, 0.05);
    reference.applyGradients([{ name: theirs.name, tensor: tf.tensor2d(g, [2, 2]) }]);
  }
  assertAllClose(ours.dataSync(), theirs.dataSync(), 1e-6);
  // and it moved: coordinate 3 saw g = 1, 2, -0.3, its first two steps are ≈ -lr each
  assert.ok(ours.dataSync()[3]! < -0.05);
});

Deno.test("AdamW.step() leaves the tensor count unchanged", () => {
  const w = tf.variable(tf.ones([3, 4]));
  const opt = new AdamW({ w });
  const g = tf.ones([3, 4]);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) opt.step({ w: g }, 0.01);
  opt.getState();
  assert.equal(tf.memory().numTensors, before);
  opt.dispose();
  assert.equal(tf.memory().numTensors, before - 2);
});

Deno.test("AdamW.step() skips a parameter without a gradient and rejects unknown ones", () => {
  const a = tf.variable(tf.tensor1d([1]));
  const b = tf.variable(tf.tensor1d([1]));
  const opt = new AdamW({ a, b }, { weightDecay: 0.5 });
  opt.step({ a: tf.tensor1d([1]) }, 0.1);
  assertAllClose(b.dataSync(), [1]);
  assertAllClose(a.dataSync(), [1 * (1 - 0.05) - 0.1]);
  assert.throws(
    () => opt.step({ c: tf.tensor1d([1]) }, 0.1),
    new TypeError('Cannot take an AdamW step: gradient "c" names no parameter'),
  );
  assert.throws(
    () => opt.step({ a: tf.tensor1d([1, 2]) }, 0.1),
    new TypeError(
      'Cannot take an AdamW step: gradient "a" must have shape [1]: current shape is [2]',
    ),
  );
  assert.throws(() => opt.step({}, -1), RangeError);
});

Deno.test("AdamW.setState() resumes exactly where getState() left off", () => {
  const grads = [[0.5, -0.25], [1.5, 0.75], [-0.1, 0.2], [0.3, 0.3]];
  const run = (opt: AdamW, from: number, to: number): void => {
    for (let i = from; i < to; i++) opt.step({ w: tf.tensor1d(grads[i]!) }, 0.01 * (i + 1));
  };
  // uninterrupted: 4 steps
  const w1 = tf.variable(tf.tensor1d([1, 2]));
  const opt1 = new AdamW({ w: w1 });
  run(opt1, 0, 4);
  // 2 steps, snapshot, fresh optimizer and copied weights, 2 more steps
  const w2 = tf.variable(tf.tensor1d([1, 2]));
  const opt2 = new AdamW({ w: w2 });
  run(opt2, 0, 2);
  const state = opt2.getState();
  assert.equal(state.step, 2);
  const w3 = tf.variable(tf.tensor1d(w2.dataSync()));
  const opt3 = new AdamW({ w: w3 });
  opt3.setState(state);
  assert.equal(opt3.stepCount, 2);
  run(opt3, 2, 4);
  assert.deepEqual(Array.from(w3.dataSync()), Array.from(w1.dataSync()));
  assert.deepEqual(opt3.getState(), opt1.getState());
});

Deno.test("AdamW.setState() names the variable that does not fit", () => {
  const opt = new AdamW({ w: tf.variable(tf.zeros([2, 3])) });
  const good = opt.getState();
  assert.throws(
    () => opt.setState({ ...good, m: { w: new Float32Array(5) } }),
    new RangeError('Cannot set AdamW state: "m.w" must have 6 values: current length is 5'),
  );
  assert.throws(
    () => opt.setState({ ...good, v: {} }),
    new TypeError('Cannot set AdamW state: "v.w" is missing'),
  );
  assert.throws(
    () => opt.setState({ ...good, m: { ...good.m, x: new Float32Array(1) } }),
    new TypeError('Cannot set AdamW state: "m.x" names no parameter'),
  );
  assert.throws(() => opt.setState({ ...good, step: -1 }), RangeError);
});

// --- clipByGlobalNorm ---

Deno.test("clipByGlobalNorm() scales by maxNorm / (norm + 1e-6) and returns the pre-clip norm", () => {
  // ‖[3, 0, 0, 4]‖ = 5; maxNorm 1: scale = 1/(5 + 1e-6) = 0.19999996
  const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor2d([[0, 4]]) };
  const before = tf.memory().numTensors;
  const clipped = clipByGlobalNorm(grads, 1);
  assert.equal(clipped.norm, 5);
  const scale = 1 / (5 + 1e-6);
  assertAllClose(clipped.grads.a!.dataSync(), [3 * scale, 0]);
  assertAllClose(clipped.grads.b!.dataSync(), [0, 4 * scale]);
  assert.deepEqual(clipped.grads.b!.shape, [1, 2]);
  tf.dispose(Object.values(clipped.grads));
  assert.equal(tf.memory().numTensors, before);
  // maxNorm 10: scale 2 ≥ 1, unchanged; maxNorm 0: no clipping, norm still measured
  for (const maxNorm of [10, 0]) {
    const out = clipByGlobalNorm(grads, maxNorm);
    assert.equal(out.norm, 5);
    assert.deepEqual(Array.from(out.grads.b!.dataSync()), [0, 4]);
  }
});

Deno.test("clipByGlobalNorm() reports a non-finite norm and leaves the gradients unscaled", () => {
  const nan = clipByGlobalNorm({ a: tf.tensor1d([NaN, 1]) }, 1);
  assert.ok(Number.isNaN(nan.norm));
  assert.equal(nan.grads.a!.dataSync()[1], 1);
  const inf = clipByGlobalNorm({ a: tf.tensor1d([Infinity, 1]) }, 1);
  assert.equal(inf.norm, Infinity);
  assert.throws(() => clipByGlobalNorm({}, -1), RangeError);
});

// --- learningRateAt ---

const LR: LearningRateOptions = { lr: 2, totalSteps: 10, warmupRatio: 0.2, schedule: "cosine" };

Deno.test("learningRateAt() warms up linearly over ceil(ratio · total) steps", () => {
  // W = ceil(0.2·10) = 2: λ(0) = 0/2, λ(1) = 1/2, λ(2) is the first post-warm-up step (1)
  for (const schedule of ["cosine", "linear", "constant"] as const) {
    assert.equal(learningRateAt(0, { ...LR, schedule }), 0);
    assert.equal(learningRateAt(1, { ...LR, schedule }), 1);
    assert.equal(learningRateAt(2, { ...LR, schedule }), 2);
  }
  // 0.07·100 = 7.000000000000001 in binary floating point: ceil gives 8, as in HF's Python
  assert.equal(learningRateAt(7, { ...LR, totalSteps: 100, warmupRatio: 0.07 }), 2 * 7 / 8);
  // no warm-up: the first step already uses the peak rate
  assert.equal(learningRateAt(0, { ...LR, warmupRatio: 0 }), 2);
});

Deno.test("learningRateAt() follows HF's cosine schedule, with and without a floor", () => {
  // p = (step - 2)/8; step 4: p = 0.25, 0.5·(1 + cos(π/4)) = 0.853553; step 6: p = 0.5 → 0.5
  assertClose(learningRateAt(4, LR), 2 * 0.8535533905932737, 1e-12);
  assertClose(learningRateAt(6, LR), 1, 1e-12);
  assertClose(learningRateAt(10, LR), 0, 1e-12);
  assertClose(learningRateAt(12, LR), 0, 1e-12); // held at the end
  // minLrRatio 0.1: λ = f·0.9 + 0.1: step 6 → 0.55, step 10 → 0.1
  assertClose(learningRateAt(6, { ...LR, minLrRatio: 0.1 }), 2 * 0.55, 1e-12);
  assertClose(learningRateAt(10, { ...LR, minLrRatio: 0.1 }), 2 * 0.1, 1e-12);
});

Deno.test("learningRateAt() follows HF's linear and constant schedules", () => {
  // linear: (10 - step)/8: step 3 → 7/8, step 6 → 1/2, step 10 → 0, step 11 → max(0, -1/8) = 0
  const linear = { ...LR, schedule: "linear" } as const;
  assert.equal(learningRateAt(3, linear), 2 * 7 / 8);
  assert.equal(learningRateAt(6, linear), 1);
  assert.equal(learningRateAt(10, linear), 0);
  assert.equal(learningRateAt(11, linear), 0);
  assert.equal(learningRateAt(7, { ...LR, schedule: "constant" }), 2);
});

Deno.test("learningRateAt() rejects out-of-range arguments", () => {
  assert.throws(
    () => learningRateAt(-1, LR),
    new RangeError(
      'Cannot compute the learning rate: "step" must be a non-negative integer: current value is -1',
    ),
  );
  assert.throws(() => learningRateAt(0, { ...LR, totalSteps: 0 }), RangeError);
  assert.throws(() => learningRateAt(0, { ...LR, warmupRatio: 1.5 }), RangeError);
  assert.throws(
    () => learningRateAt(0, { ...LR, schedule: "exp" as LearningRateOptions["schedule"] }),
    RangeError,
  );
});

Deno.test("clipByGlobalNormAsync() gives clipByGlobalNorm()'s norm and gradients, over many tensors", async () => {
  // Nine tensors: more than the four inputs tfjs-backend-webgpu's AddN keeps.
  const grads = Object.fromEntries(
    Array.from({ length: 9 }, (_, i) => [`g${i}`, tf.tensor1d([i + 1, -(i + 2)])]),
  );
  let squares = 0;
  for (let i = 0; i < 9; i++) squares += (i + 1) ** 2 + (i + 2) ** 2;
  const sync = clipByGlobalNorm(grads, 1);
  const before = tf.memory().numTensors;
  const viaData = await clipByGlobalNormAsync(grads, 1);
  assertClose(viaData.norm, Math.sqrt(squares), 1e-4, "norm");
  assert.equal(viaData.norm, sync.norm);
  for (const name of Object.keys(grads)) {
    assert.deepEqual(
      Array.from(await viaData.grads[name]!.data()),
      Array.from(sync.grads[name]!.dataSync()),
    );
  }
  tf.dispose(Object.values(viaData.grads));
  assert.equal(tf.memory().numTensors, before, "only the clipped gradients are new");
  await assert.rejects(clipByGlobalNormAsync({}, -1), RangeError);
});

Deno.test("AdamW.getStateAsync() reads the same state as getState()", async () => {
  const opt = new AdamW({ w: tf.variable(tf.tensor1d([1, 2])), b: tf.variable(tf.tensor1d([3])) });
  opt.step({ w: tf.tensor1d([0.5, -1]), b: tf.tensor1d([2]) }, 0.1);
  const state = await opt.getStateAsync();
  assert.equal(state.step, 1);
  assert.ok(state.m.w!.some((x) => x !== 0), "the moments moved");
  assert.deepEqual(state, opt.getState());
});
