import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../model/backend.ts";
import {
  fitPackedWeightCache,
  MIN_ITEM_FLOPS,
  PACKED_CACHE_MAX_MODEL_BYTES,
  packedWeightCache,
  setFastBatchMatMul,
  setPackedWeightCache,
} from "../../model/wasm_kernels.ts";
import { HEAD_BLOCK_ROWS, Transformer } from "../../model/transformer.ts";
import { batchLogprobs, packBatch } from "../../model/sampling.ts";
import { makeTinyModel, maxAbsDiff, TINY_TEST_CONFIG } from "../helpers.ts";

await initBackend("wasm");

/** Deterministic values in [-1, 1). */
function values(shape: number[], seed: number): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  let s = seed;
  for (let i = 0; i < size; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    data[i] = s / 1073741824 - 1;
  }
  return tf.tensor(data, shape);
}

/** `tf.matMul(a, b, tA, tB)` with the fast kernel and with the stock one. */
async function both(
  aShape: number[],
  bShape: number[],
  transposeA: boolean,
  transposeB: boolean,
): Promise<{ fast: Float32Array; stock: Float32Array; shape: number[] }> {
  const a = values(aShape, 1), b = values(bShape, 2);
  try {
    setFastBatchMatMul(true);
    const f = tf.matMul(a, b, transposeA, transposeB);
    setFastBatchMatMul(false);
    const s = tf.matMul(a, b, transposeA, transposeB);
    const out = {
      fast: await f.data() as Float32Array,
      stock: await s.data() as Float32Array,
      shape: f.shape,
    };
    assert.deepEqual(f.shape, s.shape);
    tf.dispose([f, s]);
    return out;
  } finally {
    setFastBatchMatMul(true);
    tf.dispose([a, b]);
  }
}

Deno.test("fast BatchMatMul equals the stock kernel on batched, transposed and broadcast products", async () => {
  const cases: [number[], number[], boolean, boolean][] = [
    [[8, 33, 17], [8, 17, 21], false, false], // attention-shaped, no flags
    [[8, 17, 33], [8, 17, 21], true, false], // the gradient's aᵀ · dy
    [[8, 33, 17], [8, 21, 17], false, true], // q · kᵀ
    [[8, 17, 33], [8, 21, 17], true, true],
    [[1, 33, 17], [8, 17, 21], false, false], // broadcast a
    [[8, 33, 17], [1, 21, 17], false, true], // broadcast b
    [[2, 4, 30, 16], [2, 4, 30, 16], false, true], // 4-D
    [[64, 40], [50, 40], false, true], // 2-D with a flag
    [[40, 64], [40, 50], true, false],
  ];
  for (const [aShape, bShape, tA, tB] of cases) {
    const { fast, stock } = await both(aShape, bShape, tA, tB);
    assert.ok(
      maxAbsDiff(fast, stock) < 1e-5,
      `${aShape} x ${bShape} (${tA}, ${tB}): ${maxAbsDiff(fast, stock)}`,
    );
  }
});

Deno.test("fast BatchMatMul leaves items below MIN_ITEM_FLOPS and plain 2-D products to the stock kernel", async () => {
  // 4 x 4 x 4 = 64 multiply-adds per item: the stock loop; results are equal either way.
  assert.ok(4 * 4 * 4 < MIN_ITEM_FLOPS);
  const small = await both([3, 4, 4], [3, 4, 4], false, true);
  assert.deepEqual(small.fast, small.stock);
  const plain = await both([30, 20], [20, 10], false, false);
  assert.deepEqual(plain.fast, plain.stock);
});

Deno.test("fast BatchMatMul keeps no tensor or heap memory", async () => {
  // deno-lint-ignore no-explicit-any
  const heapBytes = () => (tf.backend() as any).wasm.HEAPU8.buffer.byteLength as number;
  for (let i = 0; i < 5; i++) await both([8, 17, 33], [8, 21, 17], true, true); // warm up
  const before = tf.memory(), heap = heapBytes();
  for (let i = 0; i < 200; i++) await both([8, 17, 33], [8, 21, 17], true, true);
  const after = tf.memory();
  assert.equal(after.numTensors, before.numTensors);
  assert.equal(after.numBytes, before.numBytes);
  // 1,600 items went through XNNPACK under fresh ids: its packed-weights cache did not grow.
  assert.equal(heapBytes(), heap);
});

Deno.test("a model's log-probs and gradients are the same with the fast kernel", async () => {
  const model = makeTinyModel(3);
  // T = 45: an attention item is 2·45 × 8 × 45 multiply-adds, above MIN_ITEM_FLOPS.
  const ids = (n: number, from: number) => Array.from({ length: n }, (_, i) => 1 + (from + i) % 90);
  const batch = packBatch([ids(30, 0), ids(25, 7)], [ids(15, 3), ids(12, 11)], 0);
  assert.ok(2 * batch.t * 8 * batch.t > MIN_ITEM_FLOPS);
  const vars = [...model.params.values()];
  const run = async () => {
    const { value, grads } = tf.variableGrads(
      () => tf.neg(tf.mean(batchLogprobs(model, batch).logp)) as tf.Scalar,
      vars,
    );
    const out = {
      loss: (await value.data())[0]!,
      grads: await Promise.all(Object.values(grads).map((g) => g.data() as Promise<Float32Array>)),
    };
    tf.dispose([value, ...Object.values(grads)]);
    return out;
  };
  try {
    setFastBatchMatMul(false);
    const stock = await run();
    setFastBatchMatMul(true);
    const fast = await run();
    assert.ok(Math.abs(fast.loss - stock.loss) < 1e-5, `${fast.loss} vs ${stock.loss}`);
    fast.grads.forEach((g, i) => assert.ok(maxAbsDiff(g, stock.grads[i]!) < 1e-5, `grad ${i}`));
  } finally {
    setFastBatchMatMul(true);
    model.dispose();
  }
});

Deno.test("setPackedWeightCache() off gives the same products and keeps no packed copy", async () => {
  // deno-lint-ignore no-explicit-any
  const heapBytes = () => (tf.backend() as any).wasm.HEAPU8.buffer.byteLength as number;
  const a = values([64, 96], 3);
  try {
    setPackedWeightCache(true);
    const weight = values([96, 128], 4); // a weight: packed once, kept while it lives
    const cached = await tf.matMul(a, weight).data();
    setPackedWeightCache(false);
    const perCall = await tf.matMul(a, weight).data();
    assert.deepEqual(perCall, cached); // bit for bit
    // 50 live [512, 512] weights (1 MB each): with the cache on their products would keep 50
    // packed copies (50 MB); off, each copy is freed after its product.
    const weights = Array.from({ length: 50 }, (_, i) => values([512, 512], 10 + i));
    const x = values([4, 512], 6);
    tf.dispose(tf.matMul(x, weights[0]!));
    const heap = heapBytes();
    for (const w of weights) tf.dispose(tf.matMul(x, w));
    assert.ok(heapBytes() - heap < 16 * 2 ** 20, `heap grew ${heapBytes() - heap} bytes`);
    tf.dispose([...weights, x]);
    tf.dispose([a, weight]);
  } finally {
    setPackedWeightCache(true);
  }
});

Deno.test("fitPackedWeightCache() turns the cache off above PACKED_CACHE_MAX_MODEL_BYTES", () => {
  try {
    assert.equal(fitPackedWeightCache(PACKED_CACHE_MAX_MODEL_BYTES), true);
    assert.equal(packedWeightCache(), true);
    assert.equal(fitPackedWeightCache(PACKED_CACHE_MAX_MODEL_BYTES + 1), false);
    assert.equal(packedWeightCache(), false);
  } finally {
    setPackedWeightCache(true);
  }
});

Deno.test("a frozen tied head in blocks (cache off) gives the logits of the whole head", async () => {
  // A vocabulary over HEAD_BLOCK_ROWS: with the cache off the head is cut into two blocks.
  const config = {
    ...TINY_TEST_CONFIG,
    vocab_size: HEAD_BLOCK_ROWS + 1000,
    tie_word_embeddings: true,
  };
  const whole = Transformer.create(config, { seed: 5, trainable: false });
  const blocks = Transformer.create(config, { seed: 5, trainable: false });
  const ids = tf.tensor2d([[1, 17000, 3, 16384], [5, 6, 7, 8]], [2, 4], "int32");
  try {
    setPackedWeightCache(true);
    const a = tf.tidy(() => whole.forward(ids).logits);
    setPackedWeightCache(false);
    const b = tf.tidy(() => blocks.forward(ids).logits);
    assert.deepEqual(b.shape, [8, HEAD_BLOCK_ROWS + 1000]);
    assert.ok(maxAbsDiff(await a.data(), await b.data()) < 1e-6);
    tf.dispose([a, b]);
  } finally {
    setPackedWeightCache(true);
    tf.dispose(ids);
    whole.dispose();
    blocks.dispose();
  }
});
