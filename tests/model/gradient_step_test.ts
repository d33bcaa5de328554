import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { AdamW, clipByGlobalNorm } from "../../model/optimizer.ts";
import { GradientStep } from "../../model/gradient_step.ts";

const SIZE = 128 * 128; // floats per parameter
const PARAM_BYTES = SIZE * 4;
const COUNT = 8;

function makeParams(): Map<string, tf.Variable> {
  return new Map(
    Array.from({ length: COUNT }, (_, i) => {
      const values = Float32Array.from({ length: SIZE }, (_, j) => Math.sin(i * 31 + j) / 2);
      return [
        `w${i}`,
        tf.variable(tf.tensor2d(values, [128, 128]), true, `gs_w${i}_${Math.random()}`),
      ];
    }),
  );
}

/** Σ_i Σ (w_i ⊙ c_i)² / 2 with fixed c_i: dL/dw_i = c_i² ⊙ w_i. */
function loss(params: Map<string, tf.Variable>, k: number): tf.Scalar {
  const terms = [...params.values()].map((w, i) =>
    tf.sum(tf.square(tf.mul(w, tf.scalar(0.5 + 0.1 * i + 0.05 * k))))
  );
  return tf.mul(terms.reduce((a, b) => tf.add(a, b)), 0.5) as tf.Scalar;
}

Deno.test("GradientStep.apply() clips through the update as clipByGlobalNorm + AdamW.step do", async () => {
  const ours = makeParams();
  const ref = makeParams();
  const step = new GradientStep(ours, new AdamW(ours, { weightDecay: 0.01 }), { maxGradNorm: 0.5 });
  const refOpt = new AdamW(ref, { weightDecay: 0.01 });
  for (let iteration = 0; iteration < 2; iteration++) {
    step.accumulate(() => loss(ours, 0)).dispose();
    step.accumulate(() => loss(ours, 1)).dispose();
    const { norm, applied } = await step.apply(() => 0.01);
    assert.ok(applied);
    // The reference: the two micro-batches' gradients summed, clipped by copy, then stepped.
    const g0 = tf.variableGrads(() => loss(ref, 0), [...ref.values()]);
    const g1 = tf.variableGrads(() => loss(ref, 1), [...ref.values()]);
    const names = [...ref.keys()];
    const summed: Record<string, tf.Tensor> = {};
    [...ref.values()].forEach((v, i) => {
      summed[names[i]!] = tf.add(g0.grads[v.name]!, g1.grads[v.name]!);
    });
    const clipped = clipByGlobalNorm(summed, 0.5);
    assert.ok(Math.abs(clipped.norm - norm) <= 1e-4 * norm, `${clipped.norm} vs ${norm}`);
    assert.ok(clipped.norm > 0.5, "the test must clip");
    refOpt.step(clipped.grads, 0.01);
    tf.dispose([g0.value, g1.value, ...Object.values(g0.grads), ...Object.values(g1.grads)]);
    tf.dispose([...Object.values(summed), ...Object.values(clipped.grads)]);
  }
  for (const [name, w] of ours) {
    const a = w.dataSync(), b = ref.get(name)!.dataSync();
    for (let j = 0; j < a.length; j++) assert.ok(Math.abs(a[j]! - b[j]!) <= 1e-6, `${name}[${j}]`);
  }
});

Deno.test("GradientStep.apply() holds a few parameters' worth of temporaries, not the model's", async () => {
  const params = makeParams();
  const step = new GradientStep(params, new AdamW(params, { weightDecay: 0.01 }), {
    maxGradNorm: 0.5,
  });
  step.accumulate(() => loss(params, 0)).dispose();
  step.accumulate(() => loss(params, 1)).dispose();
  const before = tf.memory().numBytes;
  let applied = false;
  const profile = await tf.profile(async () => {
    applied = (await step.apply(() => 0.01)).applied;
  });
  assert.ok(applied);
  // Clipping, moments and the update one parameter at a time: at most 5 parameter-sized
  // temporaries at once (one tidy over the whole update held about 12 per parameter, 96 here).
  const extra = profile.peakBytes - before;
  assert.ok(extra <= 5 * PARAM_BYTES, `peak ${extra / PARAM_BYTES} parameters' worth`);
  // The accumulated gradients are freed after the step.
  assert.equal(tf.memory().numBytes, before - COUNT * PARAM_BYTES);
});

Deno.test("GradientStep.accumulate() sums micro-batch gradients and keeps one per parameter", async () => {
  const params = makeParams();
  const step = new GradientStep(params, new AdamW(params, { weightDecay: 0 }), { maxGradNorm: 0 });
  step.accumulate(() => loss(params, 0)).dispose();
  const before = tf.memory().numBytes;
  step.accumulate(() => loss(params, 1)).dispose();
  assert.equal(tf.memory().numBytes, before, "the accumulator keeps one gradient per parameter");
  // dL/dw_i = (c_i0² + c_i1²) w_i with c_ik = 0.5 + 0.1 i + 0.05 k: the norm by hand.
  let squared = 0;
  [...params.values()].forEach((w, i) => {
    const c = (0.5 + 0.1 * i) ** 2 + (0.55 + 0.1 * i) ** 2;
    for (const x of w.dataSync()) squared += (c * x) ** 2;
  });
  const { norm } = await step.apply(() => 0);
  assert.ok(Math.abs(norm - Math.sqrt(squared)) <= 1e-5 * norm, `${norm} vs ${Math.sqrt(squared)}`);
});
