/**
 * Fast-path ops used everywhere in the model.
 *
 * On the wasm backend only plain 2-D matmuls reach XNNPACK; tfjs' own matmul gradient uses
 * transpose flags and runs 10-25x slower than the forward pass, and `gather` has no gradient
 * (see `../shared/TFJS-NOTES.md`). These ops keep training on the fast kernels:
 * `mm` (explicit-transpose gradient), `linear` on the flattened `[B·T, D]` batch,
 * `embed` as one-hot × table, and `rotateHalf` as a matmul by a constant ±1 permutation.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

const T2 = (x: tf.Tensor) => tf.transpose(x);

const mmExplicit = tf.customGrad(
  // deno-lint-ignore no-explicit-any
  ((a: tf.Tensor2D, b: tf.Tensor2D, save: tf.GradSaveFunc): any => {
    save([a, b]);
    return {
      value: tf.matMul(a, b),
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
        return [tf.matMul(dy, T2(sb)), tf.matMul(T2(sa), dy)];
      },
    };
  }) as never,
) as unknown as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/**
 * `a @ b` for 2-D tensors. On wasm and webgpu its gradient transposes explicitly
 * (`dA = dY @ bᵀ`, `dB = aᵀ @ dY` as plain matmuls); on other backends it is `tf.matMul`
 * with tfjs' default gradient (the cpu backend's transpose is slower than its flags).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { mm } from "./ops.ts";
 * const y = mm(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]]));
 * if (y.dataSync()[0] !== 11) throw new Error("wrong");
 * ```
 */
export function mm(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  const backend = tf.getBackend();
  if ((backend === "wasm" || backend === "webgpu") && recordingGradients()) {
    return mmExplicit(a, b);
  }
  return tf.matMul(a, b);
}

/** Whether a gradient tape is recording (inside `tf.grads`/`variableGrads`), per tfjs' engine. */
export function recordingGradients(): boolean {
  // deno-lint-ignore no-explicit-any
  const state = (tf.engine() as any).state as { gradientDepth: number } | undefined;
  return state === undefined || state.gradientDepth > 0;
}

/**
 * A linear layer on a flattened batch: `x [M, in] @ w [in, out] (+ bias [out])`.
 * Weights are stored `[in, out]` so the product needs no transpose flag.
 */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor2D {
  const y = mm(x, w);
  return bias ? tf.add(y, bias) : y;
}

/**
 * Embedding lookup. Where the table may need a gradient (a tape records and the table is not a
 * frozen variable) it is `oneHot(ids) @ table`, differentiable on every backend (wasm lacks
 * the `UnsortedSegmentSum` kernel behind `gather`'s gradient); elsewhere it is `gather`, the
 * same rows bit for bit (`1·w + 0·…` is exact) without the `[M, V]` one-hot or the matmul's
 * packed copy of the table (545 MB at Qwen2.5's vocabulary).
 * @param ids token ids, int32 `[M]`
 * @param table embedding table `[V, D]`
 * @returns `[M, D]`
 */
export function embed(ids: tf.Tensor1D, table: tf.Tensor2D): tf.Tensor2D {
  const frozen = table instanceof tf.Variable && !table.trainable;
  if (frozen || !recordingGradients()) return tf.gather(table, ids);
  const vocab = table.shape[0];
  return mm(oneHotFloat(ids, vocab), table);
}

/**
 * `oneHot(ids, depth)` as float32. tfjs-backend-wasm 4.22's `OneHot` kernel writes integer
 * bits into a float32 output (1 becomes 1.4e-45), so the one-hot is built as int32 and cast.
 */
export function oneHotFloat(ids: tf.Tensor1D, depth: number): tf.Tensor2D {
  return tf.cast(tf.oneHot(ids, depth), "float32") as tf.Tensor2D;
}

/** RMSNorm over the last axis: `x · rsqrt(mean(x²) + ε) · w`. */
export function rmsNorm<T extends tf.Tensor>(x: T, weight: tf.Tensor1D, eps: number): T {
  const variance = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, eps))), weight) as T;
}

/** SiLU (swish): `x · σ(x)`. */
export function silu<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, tf.sigmoid(x)) as T;
}

/**
 * The constant `[d, d]` matrix `R` with `x @ R = rotate_half(x) = concat(-x₂, x₁)`
 * (Hugging Face's non-interleaved RoPE), so rotation needs no slice or concat.
 */
export function rotateHalfMatrix(d: number): tf.Tensor2D {
  const half = d / 2;
  const r = new Float32Array(d * d);
  for (let j = 0; j < half; j++) r[(j + half) * d + j] = -1; // out[j] = -x[j + half]
  for (let j = half; j < d; j++) r[(j - half) * d + j] = 1; // out[j] = x[j - half]
  return tf.tensor2d(r, [d, d]);
}

/**
 * RoPE tables for positions `0..n-1`: `cos` and `sin`, each `[n, headDim]`, laid out as
 * Hugging Face's `Qwen2RotaryEmbedding` (`emb = concat(freqs, freqs)`).
 */
export function ropeTables(
  n: number,
  headDim: number,
  theta: number,
): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const cos = new Float32Array(n * headDim);
  const sin = new Float32Array(n * headDim);
  for (let p = 0; p < n; p++) {
    for (let i = 0; i < half; i++) {
      const invFreq = 1 / Math.pow(theta, (2 * i) / headDim);
      const angle = p * invFreq;
      const c = Math.cos(angle), s = Math.sin(angle);
      cos[p * headDim + i] = c;
      cos[p * headDim + i + half] = c;
      sin[p * headDim + i] = s;
      sin[p * headDim + i + half] = s;
    }
  }
  return { cos, sin };
}

/**
 * Applies rotary embeddings: `x·cos + rotate_half(x)·sin`.
 * @param x `[M, headDim]` rows (one per token and head)
 * @param cos `[M, headDim]` or broadcastable to it
 * @param sin like `cos`
 * @param rot `rotateHalfMatrix(headDim)`
 */
export function applyRope(
  x: tf.Tensor2D,
  cos: tf.Tensor,
  sin: tf.Tensor,
  rot: tf.Tensor2D,
): tf.Tensor2D {
  return tf.add(tf.mul(x, cos), tf.mul(mm(x, rot), sin)) as tf.Tensor2D;
}

/**
 * Per-token log-probability of `targets` and entropy under `softmax(logits / temperature)`.
 * @param logits `[M, V]`
 * @param targets int32 `[M]`
 * @returns `logp [M]`, `entropy [M]`
 */
export function tokenLogprobs(
  logits: tf.Tensor2D,
  targets: tf.Tensor1D,
  temperature = 1,
): { logp: tf.Tensor1D; entropy: tf.Tensor1D } {
  const scaled = temperature === 1 ? logits : tf.div(logits, temperature);
  const logProbs = tf.logSoftmax(scaled, -1); // [M, V]
  const vocab = logits.shape[1];
  const picked = oneHotFloat(targets, vocab);
  const logp = tf.sum(tf.mul(logProbs, picked), -1) as tf.Tensor1D;
  const entropy = tf.neg(tf.sum(tf.mul(tf.exp(logProbs), logProbs), -1)) as tf.Tensor1D;
  return { logp, entropy };
}
