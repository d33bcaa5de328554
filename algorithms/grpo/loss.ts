/**
 * loss: see `mod.ts`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { GrpoConfig } from "./config.ts";

// --- loss ---

/** TRL's `loss_type`: how the masked per-token loss is reduced to a scalar. */
export type LossType = GrpoConfig["loss_type"];

/**
 * Inputs of {@linkcode grpoLoss}. `[N, T]`: N completions padded to T tokens; all log-probs
 * are those of the sampled completion tokens.
 */
export interface GrpoLossInputs {
  /** log π_θ(o_t | q, o_<t), `[N, T]`: the only input gradients flow into. */
  logp: tf.Tensor2D;
  /** log π_θ_old, `[N, T]`: the policy that sampled the completions (treated as a constant). */
  oldLogp: tf.Tensor2D;
  /** log π_ref, `[N, T]`: required when β ≠ 0 (treated as a constant). */
  refLogp?: tf.Tensor2D;
  /** A_i, `[N]`: one advantage per completion (treated as a constant). */
  advantages: tf.Tensor1D;
  /** `[N, T]` float32, 1 for a completion token in the loss, 0 for padding. */
  mask: tf.Tensor2D;
}

/** Options of {@linkcode grpoLoss}. */
export interface GrpoLossOptions {
  /** Reduction of the masked per-token loss (see {@linkcode grpoLoss}). */
  lossType: LossType;
  /** ε: the ratio is clipped below at `1 - ε`. */
  epsilon: number;
  /** ε_high: the ratio is clipped above at `1 + ε_high` (pass ε for symmetric clipping). */
  epsilonHigh: number;
  /** β: weight of the k3 KL penalty; 0 skips it (and `refLogp` is not read). */
  beta: number;
  /** T_max of the sampler, the `dr_grpo` denominator is `N · T_max`. */
  maxCompletionLength: number;
  /**
   * `dapo` denominator: the active completion tokens of ALL the micro-batches accumulated
   * into one optimizer step (TRL: `num_items_in_batch · gradient_accumulation_steps /
   * steps_per_generation`), clamped to ≥ 1.
   * @default the sum of this call's `mask`
   */
  numItemsInBatch?: number;
}

/** Logged statistics of {@linkcode grpoLoss}: scalars, masked token means, no gradient. */
export interface GrpoLossStats {
  /** `kl`: masked mean of the k3 estimator (0 when β = 0). */
  kl: tf.Scalar;
  /** `clip_ratio/low_mean`: fraction of tokens with ratio < 1 - ε and A < 0. */
  clipLowMean: tf.Scalar;
  /** `clip_ratio/high_mean`: fraction of tokens with ratio > 1 + ε_high and A > 0. */
  clipHighMean: tf.Scalar;
  /** `clip_ratio/region_mean`: fraction of tokens clipped either way. */
  clipRegionMean: tf.Scalar;
  /** Masked mean of the importance ratio π_θ / π_θ_old. */
  ratioMean: tf.Scalar;
}

/** Result of {@linkcode grpoLoss}. */
export interface GrpoLossOutput {
  /** The scalar to minimise. */
  loss: tf.Scalar;
  /** Statistics to log; they do not depend on the gradient path. */
  stats: GrpoLossStats;
}

/**
 * The GRPO clipped surrogate loss with the k3 KL penalty, as TRL's
 * `GRPOTrainer._compute_loss` (trl 1.16, token-level importance sampling) computes it:
 *
 * ```
 * ratio        = exp(logp - oldLogp)                    // TRL's coef_1
 * clipped      = clip(ratio, 1 - ε, 1 + ε_high)         // TRL's coef_2
 * perTokenLoss = -min(ratio · A, clipped · A)
 * perTokenKl   = exp(ref - logp) - (ref - logp) - 1     // k3, only when β ≠ 0
 * perTokenLoss = perTokenLoss + β · perTokenKl
 * ```
 *
 * reduced over the mask `m` by `lossType`:
 * - `grpo`: mean over sequences of `Σ_t m·ℓ / max(1, Σ_t m)`;
 * - `bnpo`: `Σ m·ℓ / max(1, Σ m)` over this call's tokens;
 * - `dr_grpo`: `Σ m·ℓ / (N · maxCompletionLength)`;
 * - `dapo`: `Σ m·ℓ / max(1, numItemsInBatch)`.
 *
 * Gradient accumulation: like TRL, `dapo` already normalises by the tokens of the whole
 * optimizer step, so the gradients of its micro-batches are summed; for `grpo`, `bnpo` and
 * `dr_grpo` the caller divides each micro-batch loss by the number of micro-batches (TRL's
 * `/ current_gradient_accumulation_steps`).
 *
 * `oldLogp`, `refLogp`, `advantages` and `mask` are constants: gradients flow into `logp`
 * only, even when the caller passes the same tensor as `logp` and `oldLogp` (TRL's
 * `per_token_logps.detach()` when μ = 1). The statistics are computed from values cut off
 * the gradient path. All returned tensors belong to the caller (dispose them, or call inside
 * `tf.tidy`). Only broadcasting is used: no `tf.tile`, no matmul.
 *
 * @param inputs Per-token log-probs, advantages and mask.
 * @param options Loss type, clip range, β and normalisers.
 * @returns The loss scalar and the logged statistics.
 * @throws {TypeError} When shapes disagree or `refLogp` is missing with β ≠ 0.
 * @throws {RangeError} When an option is out of range.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { grpoLoss } from "./mod.ts";
 * const logp = tf.tensor2d([[-1, -2]]);
 * const { loss } = grpoLoss(
 *   { logp, oldLogp: logp, advantages: tf.tensor1d([0.5]), mask: tf.tensor2d([[1, 1]]) },
 *   { lossType: "grpo", epsilon: 0.2, epsilonHigh: 0.2, beta: 0, maxCompletionLength: 2 },
 * );
 * // ratio 1 everywhere: loss = -A = -0.5
 * if (Math.abs(loss.dataSync()[0]! + 0.5) > 1e-6) throw new Error("wrong loss");
 * ```
 */
export function grpoLoss(inputs: GrpoLossInputs, options: GrpoLossOptions): GrpoLossOutput {
  checkLossArguments(inputs, options);
  const { lossType, epsilon, epsilonHigh, beta, maxCompletionLength } = options;
  const [n] = inputs.logp.shape;
  const scalars = tf.tidy(() => {
    const logp = inputs.logp; // [N, T]
    const oldLogp = stopGradient(inputs.oldLogp); // [N, T]
    const advantages = stopGradient(inputs.advantages).reshape([n, 1]); // [N, 1]
    const mask = stopGradient(inputs.mask); // [N, T]
    const maskSum = tf.sum(mask);

    const ratio = tf.exp(tf.sub(logp, oldLogp)); // [N, T]
    const clipped = tf.clipByValue(ratio, 1 - epsilon, 1 + epsilonHigh);
    let perTokenLoss = tf.neg(tf.minimum(tf.mul(ratio, advantages), tf.mul(clipped, advantages)));
    let perTokenKl: tf.Tensor | undefined;
    if (beta !== 0) {
      const ref = stopGradient(inputs.refLogp!);
      perTokenKl = tf.sub(tf.sub(tf.exp(tf.sub(ref, logp)), tf.sub(ref, logp)), 1);
      perTokenLoss = tf.add(perTokenLoss, tf.mul(beta, perTokenKl));
    }

    const maskedLoss = tf.mul(perTokenLoss, mask); // [N, T]
    const maskedLossSum = tf.sum(maskedLoss);
    let loss: tf.Scalar;
    switch (lossType) {
      case "grpo": {
        const seqLoss = tf.div(tf.sum(maskedLoss, 1), tf.maximum(tf.sum(mask, 1), 1)); // [N]
        loss = tf.mean(seqLoss);
        break;
      }
      case "bnpo":
        loss = tf.div(maskedLossSum, tf.maximum(maskSum, 1));
        break;
      case "dr_grpo":
        loss = tf.div(maskedLossSum, n * maxCompletionLength);
        break;
      case "dapo": {
        const numItems = options.numItemsInBatch === undefined
          ? tf.maximum(maskSum, 1)
          : tf.scalar(Math.max(options.numItemsInBatch, 1));
        loss = tf.div(maskedLossSum, numItems);
        break;
      }
      default:
        throw new RangeError(`Unknown loss type: "${lossType as string}"`);
    }

    // Statistics, from values off the gradient path.
    const ratioValue = stopGradient(ratio);
    const maskedMean = (x: tf.Tensor): tf.Scalar =>
      tf.div(tf.sum(tf.mul(x, mask)), tf.maximum(maskSum, 1));
    const isLowClipped = tf.logicalAnd(tf.less(ratioValue, 1 - epsilon), tf.less(advantages, 0));
    const isHighClipped = tf.logicalAnd(
      tf.greater(ratioValue, 1 + epsilonHigh),
      tf.greater(advantages, 0),
    );
    const isRegionClipped = tf.logicalOr(isLowClipped, isHighClipped);
    const kl = perTokenKl === undefined ? tf.scalar(0) : maskedMean(stopGradient(perTokenKl));
    return [
      loss,
      kl,
      maskedMean(tf.cast(isLowClipped, "float32")),
      maskedMean(tf.cast(isHighClipped, "float32")),
      maskedMean(tf.cast(isRegionClipped, "float32")),
      maskedMean(ratioValue),
    ] as tf.Scalar[];
  });
  const [loss, kl, clipLowMean, clipHighMean, clipRegionMean, ratioMean] = scalars as [
    tf.Scalar,
    tf.Scalar,
    tf.Scalar,
    tf.Scalar,
    tf.Scalar,
    tf.Scalar,
  ];
  return { loss, stats: { kl, clipLowMean, clipHighMean, clipRegionMean, ratioMean } };
}

/** Identity forward, zero gradient backward: torch's `.detach()` for tfjs tapes. */
function stopGradient<T extends tf.Tensor>(x: T): T {
  return detach(x) as T;
}

const detach = tf.customGrad((x, _save) => ({
  value: tf.clone(x as tf.Tensor),
  gradFunc: (dy) => tf.zerosLike(dy),
}));

function checkLossArguments(inputs: GrpoLossInputs, options: GrpoLossOptions): void {
  const what = "Cannot compute GRPO loss";
  const { logp, oldLogp, refLogp, advantages, mask } = inputs;
  if (logp.rank !== 2) {
    throw new TypeError(`${what}: "logp" must be [N, T]: current shape is ${fmtShape(logp)}`);
  }
  const sameShape = (name: string, t: tf.Tensor): void => {
    if (t.rank !== 2 || t.shape[0] !== logp.shape[0] || t.shape[1] !== logp.shape[1]) {
      throw new TypeError(
        `${what}: "${name}" must have the shape of "logp" ${fmtShape(logp)}: current shape is ${
          fmtShape(t)
        }`,
      );
    }
  };
  sameShape("oldLogp", oldLogp);
  sameShape("mask", mask);
  if (advantages.rank !== 1 || advantages.shape[0] !== logp.shape[0]) {
    throw new TypeError(
      `${what}: "advantages" must have shape [${logp.shape[0]}]: current shape is ${
        fmtShape(advantages)
      }`,
    );
  }
  const { beta, epsilon, epsilonHigh, maxCompletionLength, numItemsInBatch } = options;
  if (!(Number.isFinite(beta) && beta >= 0)) {
    throw new RangeError(`${what}: "beta" must be >= 0: current value is ${beta}`);
  }
  if (beta !== 0) {
    if (refLogp === undefined) {
      throw new TypeError(`${what}: "refLogp" is required when beta != 0: current beta is ${beta}`);
    }
    sameShape("refLogp", refLogp);
  }
  if (!(epsilon > 0 && epsilon < 1)) {
    throw new RangeError(`${what}: "epsilon" must be in (0, 1): current value is ${epsilon}`);
  }
  if (!(Number.isFinite(epsilonHigh) && epsilonHigh > 0)) {
    throw new RangeError(`${what}: "epsilonHigh" must be > 0: current value is ${epsilonHigh}`);
  }
  if (!(Number.isInteger(maxCompletionLength) && maxCompletionLength >= 1)) {
    throw new RangeError(
      `${what}: "maxCompletionLength" must be a positive integer: current value is ${maxCompletionLength}`,
    );
  }
  if (
    numItemsInBatch !== undefined && !(Number.isFinite(numItemsInBatch) && numItemsInBatch >= 0)
  ) {
    throw new RangeError(
      `${what}: "numItemsInBatch" must be >= 0: current value is ${numItemsInBatch}`,
    );
  }
}

function fmtShape(t: tf.Tensor): string {
  return `[${t.shape.join(", ")}]`;
}
