/**
 * The one gradient step of the project, used by the Learner, PPO's Critic and supervised
 * fine-tuning: gradients of a loss are accumulated micro-batch by micro-batch, then clipped to
 * a global norm, and AdamW steps with them unless they are non-finite (then the update is
 * skipped and the offending tensors are named).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { AdamW } from "./optimizer.ts";
 * import { GradientStep } from "./gradient_step.ts";
 *
 * const w = tf.variable(tf.tensor1d([1, 2]), true, "w");
 * const params = new Map([["w", w]]);
 * const step = new GradientStep(params, new AdamW(params, { weightDecay: 0 }), { maxGradNorm: 0 });
 * step.accumulate(() => tf.sum(tf.square(w))).dispose(); // d/dw = 2w = [2, 4]
 * step.accumulate(() => tf.sum(w)).dispose(); // + [1, 1]
 * const { norm, applied } = await step.apply(() => 0.1);
 * if (!applied || Math.abs(norm - 34 ** 0.5) > 1e-5) throw new Error(String(norm));
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type AdamW, globalNormScaleAsync } from "./optimizer.ts";

/** Options of {@linkcode GradientStep}. */
export interface GradientStepOptions {
  /** Largest global gradient norm (clipped above it); 0 disables clipping. */
  readonly maxGradNorm: number;
}

/** What {@linkcode GradientStep.apply} did. */
export interface AppliedStep {
  /** The global norm of the accumulated gradients before clipping (NaN or ∞ when skipped). */
  readonly norm: number;
  /** AdamW stepped; false when a gradient was non-finite. */
  readonly applied: boolean;
  /** The parameters whose gradient held NaN or ∞ (empty when applied). */
  readonly nonFinite: readonly string[];
}

/** Accumulates the gradients of micro-batch losses, then takes one clipped AdamW step. */
export class GradientStep {
  readonly #params: ReadonlyMap<string, tf.Variable>;
  readonly #optimizer: AdamW;
  readonly #maxGradNorm: number;
  #acc: Record<string, tf.Tensor> = {};

  /**
   * @param params The trainable parameters by name (all of them, or the adapters alone).
   * @param optimizer The AdamW that owns their moments.
   */
  constructor(
    params: ReadonlyMap<string, tf.Variable>,
    optimizer: AdamW,
    options: GradientStepOptions,
  ) {
    this.#params = params;
    this.#optimizer = optimizer;
    this.#maxGradNorm = options.maxGradNorm;
  }

  /**
   * Adds the gradient of `loss()` with respect to the parameters to the accumulated one. The
   * loss runs inside `tf.variableGrads` in a `tf.tidy`: a tensor it wants to hand out must be
   * `tf.keep`'d. Returns the loss value (the caller disposes it).
   */
  accumulate(loss: () => tf.Scalar): tf.Scalar {
    const vars = [...this.#params.values()];
    const nameOf = new Map([...this.#params].map(([n, v]) => [v.name, n]));
    const { value, grads } = tf.tidy(() => tf.variableGrads(loss, vars));
    // Summed one parameter at a time, each addend freed at once: the accumulator, this
    // micro-batch's gradients and one sum are alive together, never two model-sized sums.
    for (const [id, g] of Object.entries(grads)) {
      const name = nameOf.get(id)!;
      const previous = this.#acc[name];
      if (previous === undefined) {
        this.#acc[name] = g;
        continue;
      }
      this.#acc[name] = tf.add(previous, g);
      previous.dispose();
      g.dispose();
    }
    return value;
  }

  /** Whether gradients are accumulated and not applied yet. */
  get pending(): boolean {
    return Object.keys(this.#acc).length > 0;
  }

  /**
   * Clips the accumulated gradients to `maxGradNorm` and steps AdamW at `lr()` (asked only
   * when the step is taken), or skips the step when the norm is not finite; either way the
   * accumulator is emptied. The norm is read back asynchronously (webgpu has no `dataSync`).
   */
  async apply(lr: () => number): Promise<AppliedStep> {
    const acc = this.#acc;
    this.#acc = {};
    try {
      // The clipping factor goes into the update: no clipped copy of the gradients is made.
      const { norm, scale } = await globalNormScaleAsync(acc, this.#maxGradNorm);
      if (Number.isFinite(norm)) {
        this.#optimizer.step(acc, lr(), { gradScale: scale });
        return { norm, applied: true, nonFinite: [] };
      }
      return { norm, applied: false, nonFinite: await nonFiniteNames(acc) };
    } finally {
      tf.dispose(Object.values(acc));
    }
  }

  /** Drops accumulated gradients without a step. */
  discard(): void {
    tf.dispose(Object.values(this.#acc));
    this.#acc = {};
  }
}

/** Names of the gradients with a NaN or infinite value (no `dataSync`: webgpu). */
async function nonFiniteNames(acc: Record<string, tf.Tensor>): Promise<string[]> {
  const names: string[] = [];
  for (const [name, g] of Object.entries(acc)) {
    const bad = tf.tidy(() => tf.any(tf.logicalNot(tf.isFinite(g))));
    if ((await bad.data())[0] === 1) names.push(name);
    bad.dispose();
  }
  return names;
}
