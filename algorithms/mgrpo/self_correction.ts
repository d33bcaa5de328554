/**
 * Self-correction statistics: the paired metrics of one guided correction (SCoRe's t1 → t2,
 * each problem answered, then corrected by the same policy), McNemar's exact test on the
 * per-problem verdicts, and an exact permutation test for comparing runs over seeds.
 *
 * Every rate is a fraction of all N problems, so `delta_t1_t2 = delta_i_to_c − delta_c_to_i`.
 * `docs/self-correction.md` gives each metric beside the paper's definition.
 *
 * @module
 */

/**
 * McNemar's exact two-sided p-value for paired binary outcomes with `b` pairs that went
 * right → wrong and `c` pairs that went wrong → right: under H0 each discordant pair is a fair
 * coin, so p = min(1, 2 · P(X ≤ min(b, c))) with X ~ Binomial(b + c, 1/2). 1 when there is
 * no discordant pair.
 *
 * @throws {RangeError} When `b` or `c` is not a non-negative integer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mcnemarExactP } from "./self_correction.ts";
 *
 * assert.equal(mcnemarExactP(0, 0), 1);
 * assert.equal(mcnemarExactP(0, 5), 0.0625); // 2 · (1/2)^5
 * assert.equal(mcnemarExactP(1, 3), 0.625); // 2 · (1 + 4) / 16
 * ```
 */
export function mcnemarExactP(b: number, c: number): number {
  for (const [name, v] of [["b", b], ["c", c]] as const) {
    if (!Number.isInteger(v) || v < 0) {
      throw new RangeError(
        `Cannot compute McNemar's p: ${name} must be an integer >= 0: current value is ${v}`,
      );
    }
  }
  const n = b + c;
  if (n === 0) return 1;
  const k = Math.min(b, c);
  // Σ_{i ≤ k} C(n, i) / 2^n, summed in log space so that n in the thousands stays finite.
  let logTerm = -n * Math.LN2; // log C(n, 0) / 2^n
  let sum = Math.exp(logTerm);
  for (let i = 1; i <= k; i++) {
    logTerm += Math.log(n - i + 1) - Math.log(i);
    sum += Math.exp(logTerm);
  }
  return Math.min(1, 2 * sum);
}

/**
 * The paired self-correction metrics of one guided correction: for N problems, `t1[i]` is
 * whether the first answer is right and `t2[i]` whether the answer after one correction by the
 * same policy is right (SCoRe's Acc@t1 and Acc@t2).
 */
export interface CorrectionMetrics {
  /** Acc@t1 = #{t1} / N. */
  acc_t1: number;
  /** Acc@t2 = #{t2} / N: accuracy after one guided correction. */
  acc_t2: number;
  /** Δ(t1, t2) = Acc@t2 − Acc@t1. */
  delta_t1_t2: number;
  /** Δ^{i→c}(t1, t2) = #{¬t1 ∧ t2} / N. */
  delta_i_to_c: number;
  /** Δ^{c→i}(t1, t2) = #{t1 ∧ ¬t2} / N. */
  delta_c_to_i: number;
  /** McNemar's exact two-sided p of t1 against t2 ({@linkcode mcnemarExactP}). */
  mcnemar_p: number;
  /** N, the number of problems. */
  n: number;
}

/**
 * {@linkcode CorrectionMetrics} from per-problem verdicts before and after one correction.
 *
 * @throws {RangeError} When there is no problem, or the two lists differ in length.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { correctionMetrics } from "./self_correction.ts";
 *
 * const m = correctionMetrics([true, false, false, true], [true, true, false, false]);
 * assert.equal(m.acc_t1, 0.5);
 * assert.equal(m.delta_i_to_c, 0.25);
 * assert.equal(m.delta_c_to_i, 0.25);
 * assert.equal(m.mcnemar_p, 1);
 * ```
 */
export function correctionMetrics(
  t1: readonly boolean[],
  t2: readonly boolean[],
): CorrectionMetrics {
  const n = t1.length;
  if (n === 0 || t2.length !== n) {
    throw new RangeError(
      `Cannot compute correction metrics: need as many t2 verdicts as t1 verdicts (> 0): current value is ${n} and ${t2.length}`,
    );
  }
  let a1 = 0, a2 = 0, iToC = 0, cToI = 0;
  for (let i = 0; i < n; i++) {
    if (t1[i]) a1++;
    if (t2[i]) a2++;
    if (!t1[i] && t2[i]) iToC++;
    if (t1[i] && !t2[i]) cToI++;
  }
  return {
    acc_t1: a1 / n,
    acc_t2: a2 / n,
    delta_t1_t2: (a2 - a1) / n,
    delta_i_to_c: iToC / n,
    delta_c_to_i: cToI / n,
    mcnemar_p: mcnemarExactP(cToI, iToC),
    n,
  };
}

/** Mean and sample standard deviation (n − 1; 0 for one value). */
export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  if (xs.length === 0) return { mean: NaN, std: NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1
    ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1))
    : 0;
  return { mean, std };
}

/**
 * Exact two-sided permutation test of a difference in means between two groups of runs
 * (e.g. one value per seed for each of two algorithms), as scipy's `permutation_test` with
 * `alternative="two-sided"` computes it over all C(n_a + n_b, n_a) relabellings:
 * p = min(1, 2 · min(P(T ≤ t), P(T ≥ t))), where t is the observed mean(a) − mean(b) and T the
 * statistic of a relabelling (compared with a 1e-12 tolerance). It assumes nothing about the
 * distribution of the values; with 5 runs a side the smallest possible p is 2/252 ≈ 0.0079.
 *
 * @throws {RangeError} When a group is empty or the groups hold more than 24 values together
 * (too many relabellings to enumerate).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { permutationTest } from "./self_correction.ts";
 *
 * assert.equal(permutationTest([5, 6, 7], [1, 2, 3]), 0.1); // 2 · 1/20
 * ```
 */
export function permutationTest(a: readonly number[], b: readonly number[]): number {
  const all = [...a, ...b];
  if (a.length === 0 || b.length === 0 || all.length > 24) {
    throw new RangeError(
      `Cannot run the permutation test: need 1..24 values with both groups non-empty: current value is ${a.length} and ${b.length}`,
    );
  }
  const total = all.reduce((s, x) => s + x, 0);
  const na = a.length, nb = b.length;
  const diff = (sumA: number) => sumA / na - (total - sumA) / nb;
  const observed = diff(a.reduce((s, x) => s + x, 0));
  let below = 0, above = 0, count = 0;
  // Every subset of size na of the pooled values, by recursion over indices.
  const walk = (start: number, left: number, sum: number) => {
    if (left === 0) {
      const t = diff(sum);
      count++;
      if (t <= observed + 1e-12) below++;
      if (t >= observed - 1e-12) above++;
      return;
    }
    for (let i = start; i <= all.length - left; i++) walk(i + 1, left - 1, sum + all[i]!);
  };
  walk(0, na, 0);
  return Math.min(1, (2 * Math.min(below, above)) / count);
}
