/**
 * A layer's linear projections: `x·W + b`, plus a LoRA adapter's `(α/r)·x·Aᵀ·Bᵀ` where one is
 * attached, with a cheaper backward for frozen weights.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { mm, recordingGradients } from "./ops.ts";

/**
 * `x @ w` for a weight that gets no gradient (a base weight frozen under LoRA). Under a tape on
 * wasm/webgpu, `mm`'s custom gradient computes `dw = xᵀ·dy` with `dx` and drops it: as costly as
 * the forward matmul. Here `w` is closed over, so the backward computes `dx = dy·wᵀ` alone.
 */
export function frozenMm(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const backend = tf.getBackend();
  if ((backend !== "wasm" && backend !== "webgpu") || !recordingGradients()) return mm(x, w);
  const f = tf.customGrad(
    // deno-lint-ignore no-explicit-any
    ((a: tf.Tensor2D, save: tf.GradSaveFunc): any => {
      save([w]); // `w` may be an intermediate (the tied head's transpose): keep it for backward
      return {
        value: tf.matMul(a, w),
        gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) =>
          tf.matMul(dy, tf.transpose(saved[0] as tf.Tensor2D)),
      };
    }) as never,
  ) as unknown as (a: tf.Tensor2D) => tf.Tensor2D;
  return f(x);
}

/** `x @ w` with {@link frozenMm} when `w` is a frozen variable. */
function mmWeight(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  return w instanceof tf.Variable && !w.trainable ? frozenMm(x, w) : mm(x, w);
}

/** A LoRA adapter on one projection (see `model/lora.ts`). */
export interface LoraAdapter {
  /** `Aᵀ [in, r]`. */
  a: tf.Tensor2D;
  /** `Bᵀ [r, out]`. */
  b: tf.Tensor2D;
  /** α / r. */
  scale: number;
}

/** One linear projection's tensors: weight `[in, out]`, optional bias and adapter. */
export interface Projection {
  weight: tf.Tensor2D;
  bias?: tf.Tensor1D | undefined;
  lora?: LoraAdapter | undefined;
}

/** `x·W + b + (α/r)·x·Aᵀ·Bᵀ` on a flattened batch `x [M, in]`; returns `[M, out]`. */
export function project(x: tf.Tensor2D, p: Projection): tf.Tensor2D {
  const y0 = mmWeight(x, p.weight);
  const y = p.bias ? tf.add(y0, p.bias) as tf.Tensor2D : y0;
  if (!p.lora) return y;
  const down = mm(x, p.lora.a); // [M, r]
  // Scaled on the thin [M, r] side: a mul on [M, out] costs as much as the add.
  const scaled = p.lora.scale === 1 ? down : tf.mul(down, p.lora.scale) as tf.Tensor2D;
  const up = mm(scaled, p.lora.b); // [M, out]
  return tf.add(y, up) as tf.Tensor2D;
}
