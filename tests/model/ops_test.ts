import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../model/backend.ts";
import {
  embed,
  linear,
  mm,
  oneHotFloat,
  rmsNorm,
  rotateHalfMatrix,
  tokenLogprobs,
} from "../../model/ops.ts";

await initBackend("wasm");

function close(a: tf.Tensor, b: tf.Tensor, tol = 1e-5): void {
  const x = a.dataSync(), y = b.dataSync();
  assert.equal(x.length, y.length);
  for (let i = 0; i < x.length; i++) {
    assert.ok(
      Math.abs(x[i]! - y[i]!) <= tol * (1 + Math.abs(y[i]!)),
      `index ${i}: ${x[i]} vs ${y[i]}`,
    );
  }
}

Deno.test("oneHotFloat() gives exact 0/1 float32 values on wasm", () => {
  const t = oneHotFloat(tf.tensor1d([2, 0], "int32"), 3);
  assert.equal(t.dtype, "float32");
  assert.deepEqual(t.arraySync(), [[0, 0, 1], [1, 0, 0]]);
});

Deno.test("mm() value and gradients equal tf.matMul's default path", () => {
  const a = tf.randomNormal([5, 7], 0, 1, "float32", 1) as tf.Tensor2D;
  const b = tf.randomNormal([7, 3], 0, 1, "float32", 2) as tf.Tensor2D;
  const w = tf.randomNormal([5, 3], 0, 1, "float32", 3);
  const fast = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
    tf.sum(tf.mul(mm(x as tf.Tensor2D, y as tf.Tensor2D), w))
  )([a, b]);
  const slow = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y), w)))([
    a,
    b,
  ]);
  close(mm(a, b), tf.matMul(a, b));
  close(fast[0]!, slow[0]!);
  close(fast[1]!, slow[1]!);
  // dL/da = w @ bᵀ by hand for one entry.
  const wd = w.arraySync() as number[][], bd = b.arraySync() as number[][];
  const expected = wd[0]!.reduce((s, wv, j) => s + wv * bd[0]![j]!, 0);
  assert.ok(Math.abs((fast[0]!.arraySync() as number[][])[0]![0]! - expected) < 1e-5);
});

Deno.test("embed() equals gather and its gradient equals gather's (cpu reference)", async () => {
  const table = tf.randomNormal([6, 4], 0, 1, "float32", 4) as tf.Tensor2D;
  const ids = tf.tensor1d([1, 5, 1, 0], "int32");
  const w = tf.randomNormal([4, 4], 0, 1, "float32", 5);
  const fast = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(embed(ids, t as tf.Tensor2D), w)))(table);
  const fastValue = embed(ids, table).arraySync();
  const tableData = table.arraySync(), idsData = ids.arraySync();
  const wData = w.arraySync() as number[][];
  await initBackend("cpu");
  try {
    const t2 = tf.tensor2d(tableData), i2 = tf.tensor1d(idsData, "int32"), w2 = tf.tensor(wData);
    const ref = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, i2), w2)))(t2);
    assert.deepEqual(fastValue, tf.gather(t2, i2).arraySync());
    const g = fast.arraySync() as number[][], r = ref.arraySync() as number[][];
    for (let i = 0; i < 6; i++) {
      for (let j = 0; j < 4; j++) assert.ok(Math.abs(g[i]![j]! - r[i]![j]!) < 1e-5);
    }
    // Row 1 appears twice: its gradient is the sum of w's rows 0 and 2.
    assert.ok(Math.abs(g[1]![0]! - (wData[0]![0]! + wData[2]![0]!)) < 1e-5);
  } finally {
    await initBackend("wasm");
  }
});

Deno.test("linear() gradients equal the default matMul path on the flattened batch", () => {
  const x = tf.randomNormal([12, 8], 0, 1, "float32", 6) as tf.Tensor2D;
  const w = tf.randomNormal([8, 5], 0, 1, "float32", 7) as tf.Tensor2D;
  const b = tf.randomNormal([5], 0, 1, "float32", 8) as tf.Tensor1D;
  const f = (useFast: boolean) =>
    tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
      tf.sum(tf.square(
        useFast
          ? linear(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D)
          : tf.add(tf.matMul(xx, ww), bb),
      ))
    )([x, w, b]);
  const [fx, fw, fb] = f(true), [sx, sw, sb] = f(false);
  close(fx!, sx!, 1e-4);
  close(fw!, sw!, 1e-4);
  close(fb!, sb!, 1e-4);
});

Deno.test("rotateHalfMatrix() computes concat(-x2, x1)", () => {
  const x = tf.tensor2d([[1, 2, 3, 4, 5, 6]]);
  assert.deepEqual(mm(x, rotateHalfMatrix(6)).arraySync(), [[-4, -5, -6, 1, 2, 3]]);
});

Deno.test("rmsNorm() matches the formula on a hand-computed row", () => {
  // mean(x²) = (9 + 16) / 2 = 12.5; 1/sqrt(12.5) = 0.28284271
  const y = rmsNorm(tf.tensor2d([[3, 4]]), tf.tensor1d([1, 2]), 0).arraySync() as number[][];
  assert.ok(Math.abs(y[0]![0]! - 3 * 0.28284271) < 1e-6);
  assert.ok(Math.abs(y[0]![1]! - 8 * 0.28284271) < 1e-6);
});

Deno.test("tokenLogprobs() gives log-softmax of the target and the entropy", () => {
  // logits [0, ln 3]: p = [0.25, 0.75]; log p(1) = ln 0.75; H = -(0.25 ln 0.25 + 0.75 ln 0.75)
  const { logp, entropy } = tokenLogprobs(
    tf.tensor2d([[0, Math.log(3)]]),
    tf.tensor1d([1], "int32"),
  );
  assert.ok(Math.abs(logp.dataSync()[0]! - Math.log(0.75)) < 1e-6);
  const h = -(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75));
  assert.ok(Math.abs(entropy.dataSync()[0]! - h) < 1e-6);
});
