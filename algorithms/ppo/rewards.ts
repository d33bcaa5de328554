/**
 * rewards: see `mod.ts`.
 *
 * @module
 */
import type { KlEstimator } from "./config.ts";

// --- rewards ---

/**
 * The per-token KL between the policy and the reference on the sampled tokens:
 *
 * - `"k1"`: `logp - ref` (TRL's default; unbiased, can be negative per token);
 * - `"k3"`: `exp(ref - logp) - (ref - logp) - 1` (Schulman's k3; unbiased, never negative).
 *
 * @param logp log π_θ_old of the sampled tokens of one sequence.
 * @param refLogp log π_ref of the same tokens.
 * @param options The estimator.
 * @returns One KL value per token.
 * @throws {TypeError} When the lengths differ.
 * @throws {RangeError} When the estimator is unknown.
 *
 * @example
 * ```ts
 * import { klPerToken } from "./mod.ts";
 * const kl = klPerToken([-1, -2], [-1.5, -1], { estimator: "k1" });
 * if (kl[0] !== 0.5 || kl[1] !== -1) throw new Error(String(kl));
 * ```
 */
export function klPerToken(
  logp: ArrayLike<number>,
  refLogp: ArrayLike<number>,
  options: { estimator: KlEstimator },
): number[] {
  checkSameLength("compute the per-token KL", "logp", logp, "refLogp", refLogp);
  const kl = new Array<number>(logp.length);
  for (let t = 0; t < logp.length; t++) {
    const logRatio = refLogp[t]! - logp[t]!; // log π_ref / π_θ
    switch (options.estimator) {
      case "k1":
        kl[t] = -logRatio;
        break;
      case "k3":
        kl[t] = Math.exp(logRatio) - logRatio - 1;
        break;
      default:
        throw new RangeError(
          `Unknown KL estimator: "${options.estimator as string}" (expected "k1" or "k3")`,
        );
    }
  }
  return kl;
}

/** Result of {@linkcode tokenRewards}. */
export interface TokenRewards {
  /** r_t per token of every sequence, the shape of the `kls` given. */
  rewards: number[][];
  /** Sequences that enter the update: false for a skipped sample or an empty sequence. */
  keep: boolean[];
}

/**
 * Per-token rewards as TRL's `PPOTrainer` builds them: the KL penalty at every token, plus the
 * outcome score at the last token of each sequence:
 *
 * ```
 * r_t = -β · KL_t            for t < T_i - 1
 * r_t = -β · KL_t + score_i  for t = T_i - 1
 * ```
 *
 * Skipped samples: a `null` or `NaN` score (every reward function abstained, as in GRPO) gives
 * that sequence all-zero rewards and `keep[i] = false`; so does a sequence with no tokens (there
 * is no last token to carry its score). The caller leaves those rows out of the loss.
 *
 * @param scores One outcome score per sequence, `null`/`NaN` for a skipped sample.
 * @param kls Per-token KL of each sequence (see {@linkcode klPerToken}), ragged.
 * @param options β, the KL coefficient (0 for no penalty, or when `kl_in_loss`).
 * @returns The ragged per-token rewards and the `keep` flags.
 * @throws {TypeError} When `scores` and `kls` have different lengths.
 * @throws {RangeError} When β is negative or not finite.
 *
 * @example
 * ```ts
 * import { tokenRewards } from "./mod.ts";
 * const { rewards, keep } = tokenRewards([1, null], [[0.2, 0.4], [0.1]], { klCoef: 0.5 });
 * // [-0.1, -0.2 + 1], skipped: [0]
 * if (rewards[0]![1] !== 0.8 || rewards[1]![0] !== 0 || keep[1] !== false) throw new Error();
 * ```
 */
export function tokenRewards(
  scores: ArrayLike<number | null>,
  kls: ReadonlyArray<ArrayLike<number>>,
  options: { klCoef: number },
): TokenRewards {
  const what = "Cannot compute token rewards";
  if (scores.length !== kls.length) {
    throw new TypeError(
      `${what}: "kls" must have one row per score (${scores.length}): current length is ${kls.length}`,
    );
  }
  const { klCoef } = options;
  if (!(Number.isFinite(klCoef) && klCoef >= 0)) {
    throw new RangeError(`${what}: "klCoef" must be >= 0: current value is ${klCoef}`);
  }
  const rewards: number[][] = [];
  const keep: boolean[] = [];
  for (let i = 0; i < kls.length; i++) {
    const kl = kls[i]!;
    const score = scores[i] ?? NaN;
    const skipped = Number.isNaN(score) || kl.length === 0;
    const row = new Array<number>(kl.length).fill(0);
    if (!skipped) {
      for (let t = 0; t < kl.length; t++) row[t] = -klCoef * kl[t]!;
      row[kl.length - 1] = row[kl.length - 1]! + score;
    }
    rewards.push(row);
    keep.push(!skipped);
  }
  return { rewards, keep };
}

/**
 * The adaptive KL controller of Ziegler et al. 2019 (TRL's `AdaptiveKLController`): a
 * proportional controller that moves β so the observed KL tracks `target`:
 *
 * ```
 * e_t = clip(KL_t / KL_target - 1, -0.2, 0.2)
 * β  ← β · (1 + K_β⁻¹ · e_t · n_steps)
 * ```
 *
 * @example
 * ```ts
 * import { AdaptiveKlController } from "./mod.ts";
 * const ctl = new AdaptiveKlController({ initKlCoef: 0.1, target: 6, horizon: 10000 });
 * ctl.update(12, 100); // error clipped to 0.2: β = 0.1 · (1 + 0.2 · 100 / 10000)
 * if (Math.abs(ctl.value - 0.1002) > 1e-12) throw new Error(String(ctl.value));
 * ```
 */
export class AdaptiveKlController {
  #value: number;
  readonly #target: number;
  readonly #horizon: number;

  /**
   * @param options Initial β (`kl_coef`), `target_kl` and `kl_horizon`.
   * @throws {RangeError} When β < 0 or the target or horizon is not > 0.
   */
  constructor(options: { initKlCoef: number; target: number; horizon: number }) {
    const what = "Cannot create the adaptive KL controller";
    const { initKlCoef, target, horizon } = options;
    if (!(Number.isFinite(initKlCoef) && initKlCoef >= 0)) {
      throw new RangeError(`${what}: "initKlCoef" must be >= 0: current value is ${initKlCoef}`);
    }
    if (!(Number.isFinite(target) && target > 0)) {
      throw new RangeError(`${what}: "target" must be > 0: current value is ${target}`);
    }
    if (!(Number.isFinite(horizon) && horizon > 0)) {
      throw new RangeError(`${what}: "horizon" must be > 0: current value is ${horizon}`);
    }
    this.#value = initKlCoef;
    this.#target = target;
    this.#horizon = horizon;
  }

  /** β, the current KL coefficient. */
  get value(): number {
    return this.#value;
  }

  /**
   * One controller step.
   *
   * @param currentKl The observed KL: TRL uses the batch mean of the per-sequence SUMMED KL.
   * @param nSteps Samples since the last update (TRL: the batch size).
   * @returns The new β.
   * @throws {RangeError} When `currentKl` is not finite or `nSteps` is negative.
   */
  update(currentKl: number, nSteps: number): number {
    const what = "Cannot update the adaptive KL controller";
    if (!Number.isFinite(currentKl)) {
      throw new RangeError(`${what}: "currentKl" must be finite: current value is ${currentKl}`);
    }
    if (!(Number.isFinite(nSteps) && nSteps >= 0)) {
      throw new RangeError(`${what}: "nSteps" must be >= 0: current value is ${nSteps}`);
    }
    const proportionalError = Math.min(Math.max(currentKl / this.#target - 1, -0.2), 0.2);
    const mult = 1 + proportionalError * nSteps / this.#horizon;
    this.#value *= mult;
    return this.#value;
  }
}

export function checkSameLength(
  what: string,
  nameA: string,
  a: ArrayLike<unknown>,
  nameB: string,
  b: ArrayLike<unknown>,
): void {
  if (a.length !== b.length) {
    throw new TypeError(
      `Cannot ${what}: "${nameB}" must have the length of "${nameA}" (${a.length}): current length is ${b.length}`,
    );
  }
}
