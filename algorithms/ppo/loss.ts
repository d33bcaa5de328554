/**
 * loss: see `mod.ts`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { KlEstimator, PpoLossType } from "./config.ts";

// --- loss ---

/**
 * Inputs of {@linkcode ppoPolicyLoss}. `[N, T]`: N completions padded to T tokens; padded
 * entries must be finite (0 is fine).
 */
export interface PpoPolicyLossInputs {
  /** log π_θ(o_t | q, o_<t), `[N, T]`: the only input gradients flow into. */
  logp: tf.Tensor2D;
  /** log π_θ_old, `[N, T]`: the policy that sampled the completions (a constant). */
  oldLogp: tf.Tensor2D;
  /** Â_t, `[N, T]`: per-token advantages (a constant). */
  advantages: tf.Tensor2D;
  /** `[N, T]` float32, 1 for a completion token in the loss, 0 for padding. */
  mask: tf.Tensor2D;
  /** log π_ref, `[N, T]`: required when `klCoef` ≠ 0 (a constant). */
  refLogp?: tf.Tensor2D;
}

/** Options of {@linkcode ppoPolicyLoss}. */
export interface PpoPolicyLossOptions {
  /** ε: the ratio is clipped to `[1 - ε, 1 + ε]`. */
  cliprange: number;
  /** Reduction of the masked per-token loss (see {@linkcode ppoPolicyLoss}). */
  lossType: PpoLossType;
  /**
   * β of a KL term in the loss (`kl_in_loss`, verl's `use_kl_loss`); 0 skips it.
   * @default 0
   */
  klCoef?: number;
  /**
   * Estimator of the in-loss KL term.
   * @default "k3"
   */
  klEstimator?: KlEstimator;
  /**
   * `token_mean` denominator: the active tokens of ALL the micro-batches accumulated into one
   * optimizer step, clamped to ≥ 1, so their losses can be summed.
   * @default the sum of this call's `mask`
   */
  numItemsInBatch?: number;
}

/** Logged statistics of {@linkcode ppoPolicyLoss}: masked token means, no gradient. */
export interface PpoPolicyLossStats {
  /** `policy/clipfrac`: fraction of tokens where the clipped term is the larger loss. */
  clipFrac: tf.Scalar;
  /** `policy/approxkl`: `0.5 · mean((logp - oldLogp)²)`, TRL's estimator (k2). */
  approxKl: tf.Scalar;
  /** `ratio/mean`: masked mean of π_θ / π_θ_old. */
  ratioMean: tf.Scalar;
  /** `kl`: masked mean of the in-loss KL term (0 when `klCoef` = 0). */
  kl: tf.Scalar;
}

/** Result of {@linkcode ppoPolicyLoss}. */
export interface PpoPolicyLossOutput {
  /** The scalar to minimise. */
  loss: tf.Scalar;
  /** Statistics to log; they do not depend on the gradient path. */
  stats: PpoPolicyLossStats;
}

/**
 * The PPO clipped surrogate policy loss, as TRL's `PPOTrainer` computes it:
 *
 * ```
 * ratio        = exp(logp - oldLogp)
 * pgLosses     = -Â · ratio
 * pgLosses2    = -Â · clip(ratio, 1 - ε, 1 + ε)
 * perTokenLoss = max(pgLosses, pgLosses2)
 * perTokenLoss = perTokenLoss + β · perTokenKl      // only when klCoef ≠ 0 (kl_in_loss)
 * ```
 *
 * reduced over the mask `m` by `lossType` (verl's `loss_agg_mode`):
 * - `token_mean`: `Σ m·ℓ / max(1, numItemsInBatch ?? Σ m)` (TRL, verl's default);
 * - `seq_mean_token_mean`: mean over rows of `Σ_t m·ℓ / max(1, Σ_t m)` (OpenRLHF);
 * - `seq_mean_token_sum`: mean over rows of `Σ_t m·ℓ`.
 *
 * `approxKl` is TRL's `approxkl`, the k2 estimator `0.5 · (logp - oldLogp)²`, masked mean.
 * Gradients flow into `logp` only; statistics come from values off the gradient path. All
 * returned tensors belong to the caller (dispose them, or call inside `tf.tidy`).
 *
 * @param inputs Per-token log-probs, advantages and mask.
 * @param options Clip range, reduction and the optional in-loss KL.
 * @returns The loss scalar and the logged statistics.
 * @throws {TypeError} When shapes disagree or `refLogp` is missing with `klCoef` ≠ 0.
 * @throws {RangeError} When an option is out of range.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { ppoPolicyLoss } from "./mod.ts";
 * const logp = tf.tensor2d([[-1, -2]]);
 * const { loss } = ppoPolicyLoss(
 *   { logp, oldLogp: logp, advantages: tf.tensor2d([[0.5, 1.5]]), mask: tf.tensor2d([[1, 1]]) },
 *   { cliprange: 0.2, lossType: "token_mean" },
 * );
 * // ratio 1 everywhere: loss = -mean(Â) = -1
 * if (Math.abs(loss.dataSync()[0]! + 1) > 1e-6) throw new Error("wrong loss");
 * ```
 */
export function ppoPolicyLoss(
  inputs: PpoPolicyLossInputs,
  options: PpoPolicyLossOptions,
): PpoPolicyLossOutput {
  const what = "Cannot compute PPO policy loss";
  const klCoef = options.klCoef ?? 0;
  const klEstimator = options.klEstimator ?? "k3";
  checkTokenTensors(what, "logp", inputs.logp, {
    oldLogp: inputs.oldLogp,
    advantages: inputs.advantages,
    mask: inputs.mask,
    ...(klCoef !== 0 || inputs.refLogp ? { refLogp: inputs.refLogp } : {}),
  });
  const { cliprange, numItemsInBatch } = options;
  if (!(cliprange > 0 && cliprange < 1)) {
    throw new RangeError(`${what}: "cliprange" must be in (0, 1): current value is ${cliprange}`);
  }
  if (!(Number.isFinite(klCoef) && klCoef >= 0)) {
    throw new RangeError(`${what}: "klCoef" must be >= 0: current value is ${klCoef}`);
  }
  checkNumItems(what, numItemsInBatch);
  const scalars = tf.tidy(() => {
    const logp = inputs.logp; // [N, T]
    const oldLogp = stopGradient(inputs.oldLogp); // [N, T]
    const advantages = stopGradient(inputs.advantages); // [N, T]
    const mask = stopGradient(inputs.mask); // [N, T]

    const logRatio = tf.sub(logp, oldLogp); // [N, T]
    const ratio = tf.exp(logRatio);
    const pgLosses = tf.neg(tf.mul(advantages, ratio));
    const pgLosses2 = tf.neg(
      tf.mul(advantages, tf.clipByValue(ratio, 1 - cliprange, 1 + cliprange)),
    );
    let perTokenLoss = tf.maximum(pgLosses, pgLosses2); // [N, T]
    let perTokenKl: tf.Tensor | undefined;
    if (klCoef !== 0) {
      const ref = stopGradient(inputs.refLogp!);
      perTokenKl = klEstimator === "k1"
        ? tf.sub(logp, ref)
        : tf.sub(tf.sub(tf.exp(tf.sub(ref, logp)), tf.sub(ref, logp)), 1);
      perTokenLoss = tf.add(perTokenLoss, tf.mul(klCoef, perTokenKl));
    }
    const loss = aggregateLoss(perTokenLoss, mask, options.lossType, numItemsInBatch);

    // Statistics, from values off the gradient path.
    const isClipped = tf.greater(stopGradient(pgLosses2), stopGradient(pgLosses));
    const logRatioValue = stopGradient(logRatio);
    return [
      loss,
      maskedMean(tf.cast(isClipped, "float32"), mask),
      tf.mul(0.5, maskedMean(tf.square(logRatioValue), mask)),
      maskedMean(tf.exp(logRatioValue), mask),
      perTokenKl === undefined ? tf.scalar(0) : maskedMean(stopGradient(perTokenKl), mask),
    ] as tf.Scalar[];
  });
  const [loss, clipFrac, approxKl, ratioMean, kl] = scalars as [
    tf.Scalar,
    tf.Scalar,
    tf.Scalar,
    tf.Scalar,
    tf.Scalar,
  ];
  return { loss, stats: { clipFrac, approxKl, ratioMean, kl } };
}

/** Inputs of {@linkcode valueLoss}, all `[N, T]` (padded entries must be finite). */
export interface ValueLossInputs {
  /** V_θ, `[N, T]`: the critic's new predictions, the only input gradients flow into. */
  values: tf.Tensor2D;
  /** V_old, `[N, T]`: the critic's values at sampling time (a constant). */
  oldValues: tf.Tensor2D;
  /** R_t = Â_t + V_old, `[N, T]`: the value targets, unwhitened (a constant). */
  returns: tf.Tensor2D;
  /** `[N, T]` float32, 1 for a completion token in the loss, 0 for padding. */
  mask: tf.Tensor2D;
}

/** Options of {@linkcode valueLoss}. */
export interface ValueLossOptions {
  /** ε_v: new values are clipped to `oldValues ± ε_v`. */
  cliprangeValue: number;
  /**
   * Reduction, as in {@linkcode ppoPolicyLoss}.
   * @default "token_mean"
   */
  lossType?: PpoLossType;
  /**
   * `token_mean` denominator over all accumulated micro-batches, as in {@linkcode ppoPolicyLoss}.
   * @default the sum of this call's `mask`
   */
  numItemsInBatch?: number;
}

/** Logged statistics of {@linkcode valueLoss}: masked token means, no gradient. */
export interface ValueLossStats {
  /** `val/clipfrac`: fraction of tokens where the clipped squared error is the larger one. */
  vfClipFrac: tf.Scalar;
  /**
   * `val/explained_variance` of the new predictions `values` over the masked tokens, as
   * {@linkcode explainedVariance}; `NaN` when the returns do not vary.
   */
  explainedVariance: tf.Scalar;
}

/** Result of {@linkcode valueLoss}. */
export interface ValueLossOutput {
  /** The scalar to minimise (not yet weighted by `vf_coef`). */
  loss: tf.Scalar;
  /** Statistics to log; they do not depend on the gradient path. */
  stats: ValueLossStats;
}

/**
 * The clipped value loss, as TRL's `PPOTrainer` computes it:
 *
 * ```
 * vpredClipped = clip(V_θ, V_old - ε_v, V_old + ε_v)
 * vfLosses1    = (V_θ - R)²
 * vfLosses2    = (vpredClipped - R)²
 * loss         = 0.5 · reduce(max(vfLosses1, vfLosses2))
 * ```
 *
 * with the reductions of {@linkcode ppoPolicyLoss} (TRL: `token_mean`). The total PPO loss is
 * `pgLoss + vf_coef · loss` for a shared trunk; a separate critic minimises `vf_coef · loss`
 * with its own optimizer (or just `loss`). Gradients flow into `values` only.
 *
 * @param inputs New and old values, returns and mask.
 * @param options Value clip range and reduction.
 * @returns The loss scalar and the logged statistics.
 * @throws {TypeError} When shapes disagree.
 * @throws {RangeError} When an option is out of range.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { valueLoss } from "./mod.ts";
 * const { loss } = valueLoss(
 *   {
 *     values: tf.tensor2d([[1]]),
 *     oldValues: tf.tensor2d([[1]]),
 *     returns: tf.tensor2d([[3]]),
 *     mask: tf.tensor2d([[1]]),
 *   },
 *   { cliprangeValue: 0.2 },
 * );
 * // 0.5 · (1 - 3)² = 2
 * if (Math.abs(loss.dataSync()[0]! - 2) > 1e-6) throw new Error("wrong loss");
 * ```
 */
export function valueLoss(inputs: ValueLossInputs, options: ValueLossOptions): ValueLossOutput {
  const what = "Cannot compute PPO value loss";
  checkTokenTensors(what, "values", inputs.values, {
    oldValues: inputs.oldValues,
    returns: inputs.returns,
    mask: inputs.mask,
  });
  const { cliprangeValue, numItemsInBatch } = options;
  if (!(Number.isFinite(cliprangeValue) && cliprangeValue > 0)) {
    throw new RangeError(
      `${what}: "cliprangeValue" must be > 0: current value is ${cliprangeValue}`,
    );
  }
  checkNumItems(what, numItemsInBatch);
  const scalars = tf.tidy(() => {
    const vpred = inputs.values; // [N, T]
    const oldValues = stopGradient(inputs.oldValues); // [N, T]
    const returns = stopGradient(inputs.returns); // [N, T]
    const mask = stopGradient(inputs.mask); // [N, T]

    const vpredClipped = tf.minimum(
      tf.maximum(vpred, tf.sub(oldValues, cliprangeValue)),
      tf.add(oldValues, cliprangeValue),
    );
    const vfLosses1 = tf.square(tf.sub(vpred, returns)); // [N, T]
    const vfLosses2 = tf.square(tf.sub(vpredClipped, returns));
    const vfLossMax = tf.maximum(vfLosses1, vfLosses2);
    const loss = tf.mul(
      0.5,
      aggregateLoss(vfLossMax, mask, options.lossType ?? "token_mean", numItemsInBatch),
    );

    // Statistics, from values off the gradient path.
    const isClipped = tf.greater(stopGradient(vfLosses2), stopGradient(vfLosses1));
    const maskedVar = (x: tf.Tensor): tf.Scalar =>
      maskedMean(tf.square(tf.sub(x, maskedMean(x, mask))), mask);
    const varReturns = maskedVar(returns);
    const ev = tf.sub(1, tf.div(maskedVar(tf.sub(returns, stopGradient(vpred))), varReturns));
    return [
      loss,
      maskedMean(tf.cast(isClipped, "float32"), mask),
      tf.where(tf.greater(varReturns, 0), ev, tf.scalar(NaN)),
    ] as tf.Scalar[];
  });
  const [loss, vfClipFrac, explainedVariance] = scalars as [tf.Scalar, tf.Scalar, tf.Scalar];
  return { loss, stats: { vfClipFrac, explainedVariance } };
}

/** Reduces a masked per-token loss `[N, T]` to a scalar, verl's `agg_loss`. */
function aggregateLoss(
  perTokenLoss: tf.Tensor,
  mask: tf.Tensor,
  lossType: PpoLossType,
  numItemsInBatch: number | undefined,
): tf.Scalar {
  const maskedLoss = tf.mul(perTokenLoss, mask); // [N, T]
  switch (lossType) {
    case "token_mean": {
      const numItems = numItemsInBatch === undefined
        ? tf.maximum(tf.sum(mask), 1)
        : tf.scalar(Math.max(numItemsInBatch, 1));
      return tf.div(tf.sum(maskedLoss), numItems);
    }
    case "seq_mean_token_mean":
      return tf.mean(tf.div(tf.sum(maskedLoss, 1), tf.maximum(tf.sum(mask, 1), 1))); // [N] → []
    case "seq_mean_token_sum":
      return tf.mean(tf.sum(maskedLoss, 1)); // [N] → []
    default:
      throw new RangeError(`Unknown loss type: "${lossType as string}"`);
  }
}

/** Mean of `x` over the tokens where `mask` is 1 (0 when there are none). */
function maskedMean(x: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.div(tf.sum(tf.mul(x, mask)), tf.maximum(tf.sum(mask), 1));
}

/** Identity forward, zero gradient backward: torch's `.detach()` for tfjs tapes. */
function stopGradient<T extends tf.Tensor>(x: T): T {
  return detach(x) as T;
}

const detach = tf.customGrad((x, _save) => ({
  value: tf.clone(x as tf.Tensor),
  gradFunc: (dy) => tf.zerosLike(dy),
}));

function checkTokenTensors(
  what: string,
  refName: string,
  ref: tf.Tensor,
  others: Record<string, tf.Tensor | undefined>,
): void {
  if (ref.rank !== 2) {
    throw new TypeError(`${what}: "${refName}" must be [N, T]: current shape is ${fmtShape(ref)}`);
  }
  for (const [name, t] of Object.entries(others)) {
    if (t === undefined) {
      throw new TypeError(
        `${what}: "${name}" is required when klCoef != 0: current value is undefined`,
      );
    }
    if (t.rank !== 2 || t.shape[0] !== ref.shape[0] || t.shape[1] !== ref.shape[1]) {
      throw new TypeError(
        `${what}: "${name}" must have the shape of "${refName}" ${
          fmtShape(ref)
        }: current shape is ${fmtShape(t)}`,
      );
    }
  }
}

function checkNumItems(what: string, numItemsInBatch: number | undefined): void {
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
