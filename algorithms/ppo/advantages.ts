/**
 * advantages: see `mod.ts`.
 *
 * @module
 */
import { checkSameLength, tokenRewards } from "./rewards.ts";

// --- advantages ---

/** Advantages and value targets of {@linkcode gae}. */
export interface GaeResult {
  /** Â_t, one per token. */
  advantages: number[];
  /** R_t = Â_t + V_t, the value targets. */
  returns: number[];
}

/** γ and λ of {@linkcode gae}. */
export interface GaeOptions {
  /** γ, the discount factor, in [0, 1]. */
  gamma: number;
  /** λ, the GAE trace parameter, in [0, 1]. */
  lam: number;
}

/**
 * Generalized Advantage Estimation (Schulman et al. 2016, arXiv 1506.02438) over one sequence,
 * as TRL's `PPOTrainer` runs it; the value after the last token is 0 (terminal):
 *
 * ```
 * δ_t = r_t + γ · V_{t+1} - V_t          (V_T = 0)
 * Â_t = δ_t + γλ · Â_{t+1}               (Â_T = 0)
 * R_t = Â_t + V_t
 * ```
 *
 * @param rewards r_t per token (see {@linkcode tokenRewards}).
 * @param values V_t per token, the critic's values at sampling time.
 * @param options γ and λ.
 * @returns The advantages and returns.
 * @throws {TypeError} When the lengths differ.
 * @throws {RangeError} When γ or λ is outside [0, 1].
 *
 * @example
 * ```ts
 * import { gae } from "./mod.ts";
 * // δ_1 = 1 - 0.5 = 0.5, δ_0 = 0 + 0.5 - 0.25 = 0.25, Â_0 = 0.25 + 0.5 · 0.5 = 0.5
 * const { advantages, returns } = gae([0, 1], [0.25, 0.5], { gamma: 1, lam: 0.5 });
 * if (advantages[0] !== 0.5 || returns[0] !== 0.75) throw new Error(String(advantages));
 * ```
 */
export function gae(
  rewards: ArrayLike<number>,
  values: ArrayLike<number>,
  options: GaeOptions,
): GaeResult {
  checkGaeOptions(options);
  checkSameLength("compute GAE", "rewards", rewards, "values", values);
  const { gamma, lam } = options;
  const n = rewards.length;
  const advantages = new Array<number>(n);
  const returns = new Array<number>(n);
  let lastGaeLam = 0;
  for (let t = n - 1; t >= 0; t--) {
    const nextValue = t < n - 1 ? values[t + 1]! : 0;
    const delta = rewards[t]! + gamma * nextValue - values[t]!;
    lastGaeLam = delta + gamma * lam * lastGaeLam;
    advantages[t] = lastGaeLam;
    returns[t] = lastGaeLam + values[t]!;
  }
  return { advantages, returns };
}

/** Advantages and value targets of {@linkcode gaeBatch}, ragged like its inputs. */
export interface GaeBatchResult {
  /** Â per token of every sequence. */
  advantages: number[][];
  /** R = Â + V per token of every sequence. */
  returns: number[][];
}

/**
 * {@linkcode gae} over each sequence of a batch.
 *
 * @param rewards r_t per token of every sequence, ragged.
 * @param values V_t per token of every sequence, the same lengths.
 * @param options γ and λ.
 * @returns Ragged advantages and returns.
 * @throws {TypeError} When the number of rows or a row's length differs.
 * @throws {RangeError} When γ or λ is outside [0, 1].
 *
 * @example
 * ```ts
 * import { gaeBatch } from "./mod.ts";
 * const { returns } = gaeBatch([[1], [0, 2]], [[0], [0, 0]], { gamma: 0.5, lam: 1 });
 * if (returns[1]![0] !== 1) throw new Error(String(returns)); // 0 + 0.5 · 2
 * ```
 */
export function gaeBatch(
  rewards: ReadonlyArray<ArrayLike<number>>,
  values: ReadonlyArray<ArrayLike<number>>,
  options: GaeOptions,
): GaeBatchResult {
  if (rewards.length !== values.length) {
    throw new TypeError(
      `Cannot compute GAE: "values" must have one row per "rewards" row (${rewards.length}): current length is ${values.length}`,
    );
  }
  const advantages: number[][] = [];
  const returns: number[][] = [];
  for (let i = 0; i < rewards.length; i++) {
    const out = gae(rewards[i]!, values[i]!, options);
    advantages.push(out.advantages);
    returns.push(out.returns);
  }
  return { advantages, returns };
}

/** Added to the variance before the reciprocal square root, as TRL's `masked_whiten`. */
const WHITEN_EPSILON = 1e-8;

/**
 * Whitens per-token values over ALL tokens of the batch, as TRL's `masked_whiten`:
 *
 * ```
 * x̂ = (x - mean) · rsqrt(var + 1e-8)      (+ mean when shiftMean is false)
 * ```
 *
 * where mean and var run over every token of every row (the rows are ragged: each holds only its
 * real tokens, so padding is already out). The variance is unbiased (Bessel's correction,
 * divides by n - 1), as TRL's `masked_var(unbiased=True)`, which `masked_whiten` calls. Where
 * TRL fails, this does not: no token at all returns the (empty) rows as they are (TRL raises),
 * and a single token counts as variance 0 (TRL divides 0 by 0 and gets NaN).
 *
 * @param values Per-token values of every sequence, ragged.
 * @param options `shiftMean` (@default true): when false the mean is added back, so only the
 * scale changes (TRL uses that for `whiten_rewards`).
 * @returns New ragged rows of the same shape.
 *
 * @example
 * ```ts
 * import { whiten } from "./mod.ts";
 * // mean 2, unbiased var (1 + 0 + 1) / 2 = 1
 * const w = whiten([[1, 2], [3]]);
 * if (Math.abs(w[1]![0]! - 1) > 1e-6) throw new Error(String(w));
 * ```
 */
export function whiten(
  values: ReadonlyArray<ArrayLike<number>>,
  options: { shiftMean?: boolean } = {},
): number[][] {
  const shiftMean = options.shiftMean ?? true;
  let n = 0;
  let sum = 0;
  for (const row of values) {
    for (let t = 0; t < row.length; t++) sum += row[t]!;
    n += row.length;
  }
  if (n === 0) return values.map(() => []);
  const mean = sum / n;
  let sq = 0;
  for (const row of values) {
    for (let t = 0; t < row.length; t++) sq += (row[t]! - mean) ** 2;
  }
  const variance = n < 2 ? 0 : sq / (n - 1);
  const scale = 1 / Math.sqrt(variance + WHITEN_EPSILON);
  return values.map((row) => Array.from(row, (x) => (x - mean) * scale + (shiftMean ? 0 : mean)));
}

/**
 * The fraction of the variance of the returns the values explain (as CleanRL logs it):
 * `1 - Var(R - V) / Var(R)` over all tokens of the batch. 1 is a perfect critic, 0 no better
 * than a constant, negative worse; `NaN` when the returns do not vary (or there are none).
 *
 * @param values V per token of every sequence, ragged.
 * @param returns R per token of every sequence, the same lengths.
 * @returns The explained variance.
 * @throws {TypeError} When the number of rows or a row's length differs.
 *
 * @example
 * ```ts
 * import { explainedVariance } from "./mod.ts";
 * // residuals [0, 0, 2]: var 8/9; returns [1, 2, 3]: var 2/3
 * const ev = explainedVariance([[1, 2], [1]], [[1, 2], [3]]);
 * if (Math.abs(ev - (1 - (8 / 9) / (2 / 3))) > 1e-12) throw new Error(String(ev));
 * ```
 */
export function explainedVariance(
  values: ReadonlyArray<ArrayLike<number>>,
  returns: ReadonlyArray<ArrayLike<number>>,
): number {
  const what = "compute the explained variance";
  if (values.length !== returns.length) {
    throw new TypeError(
      `Cannot ${what}: "returns" must have one row per "values" row (${values.length}): current length is ${returns.length}`,
    );
  }
  const residuals: number[] = [];
  const targets: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const r = returns[i]!;
    checkSameLength(what, "values", v, "returns", r);
    for (let t = 0; t < v.length; t++) {
      residuals.push(r[t]! - v[t]!);
      targets.push(r[t]!);
    }
  }
  const varReturns = variance(targets);
  return varReturns > 0 ? 1 - variance(residuals) / varReturns : NaN;
}

/** Biased (n) variance; the n cancels in {@linkcode explainedVariance}. */
function variance(x: number[]): number {
  if (x.length === 0) return NaN;
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  return x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
}

/** Inputs of {@linkcode ppoAdvantages}: one row per sequence, ragged. */
export interface PpoAdvantageInputs {
  /** Outcome score per sequence, `null`/`NaN` for a skipped sample. */
  scores: ArrayLike<number | null>;
  /** Per-token KL of each sequence ({@linkcode klPerToken}); zeros when `kl_in_loss`. */
  kls: ReadonlyArray<ArrayLike<number>>;
  /** V_t per token of each sequence, from the critic at sampling time. */
  values: ReadonlyArray<ArrayLike<number>>;
}

/** Result of {@linkcode ppoAdvantages}, ragged like the inputs. */
export interface PpoAdvantages {
  /** r_t per token (all 0 for a dropped sequence). */
  rewards: number[][];
  /** Â per token, whitened over the kept tokens when asked (all 0 for a dropped sequence). */
  advantages: number[][];
  /** R = Â + V before whitening, the value targets (all 0 for a dropped sequence). */
  returns: number[][];
  /** Sequences that enter the update. */
  keep: boolean[];
}

/**
 * The whole PPO advantage pass of TRL's `PPOTrainer`: {@linkcode tokenRewards} →
 * {@linkcode gaeBatch} → {@linkcode whiten} (advantages only, over the kept sequences' tokens;
 * the returns stay raw).
 *
 * @param inputs Scores, per-token KL and per-token values.
 * @param options β, γ, λ and whether to whiten.
 * @returns Rewards, advantages, returns and `keep`.
 * @throws {TypeError} When the rows or their lengths disagree.
 * @throws {RangeError} When an option is out of range.
 *
 * @example
 * ```ts
 * import { ppoAdvantages } from "./mod.ts";
 * const out = ppoAdvantages(
 *   { scores: [1], kls: [[0, 0]], values: [[0, 0]] },
 *   { klCoef: 0.1, gamma: 1, lam: 1, whitenAdvantages: false },
 * );
 * if (out.advantages[0]![0] !== 1) throw new Error(String(out.advantages));
 * ```
 */
export function ppoAdvantages(
  inputs: PpoAdvantageInputs,
  options: GaeOptions & { klCoef: number; whitenAdvantages: boolean },
): PpoAdvantages {
  const { rewards, keep } = tokenRewards(inputs.scores, inputs.kls, options);
  const kept = (rows: number[][]): number[][] => rows.map((row, i) => keep[i] ? row : []);
  const out = gaeBatch(rewards, inputs.values, options);
  const advantages = options.whitenAdvantages ? whiten(kept(out.advantages)) : out.advantages;
  const zeroDropped = (rows: number[][]): number[][] =>
    rows.map((row, i) => keep[i] ? row : new Array<number>(rewards[i]!.length).fill(0));
  return {
    rewards,
    advantages: zeroDropped(advantages),
    returns: zeroDropped(out.returns),
    keep,
  };
}

function checkGaeOptions(options: GaeOptions): void {
  for (const name of ["gamma", "lam"] as const) {
    const v = options[name];
    if (!(v >= 0 && v <= 1)) {
      throw new RangeError(
        `Cannot compute GAE: "${name}" must be in [0, 1]: current value is ${v}`,
      );
    }
  }
}
