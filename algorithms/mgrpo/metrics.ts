/**
 * metrics: see `mod.ts`.
 *
 * @module
 */
import { mcnemarExactP } from "./self_correction.ts";
import { checkGroupShape, classifyCorrection } from "./selection.ts";

// --- metrics ---

/**
 * Training-time self-correction metrics of one MGRPO step, over N Layer-1 responses o_i and
 * their H corrections õ_ij each. With c_i = correct(o_i) and c̃_ij = correct(õ_ij) as 0/1:
 *
 * - `mgrpo/acc_t1` (Acc@t1) = (1/N) Σ_i c_i.
 * - `mgrpo/acc_t1_prime` (Acc@t1') = (1/N) Σ_i (1/H) Σ_j c̃_ij: the expected accuracy of ONE
 *   correction attempt. The paper awards "half of the points" when an answer is corrected
 *   "multiple times", which says nothing for H > 2; read for H = 2 as half a point per right
 *   attempt, it is this mean, which generalises it to any H without bias.
 * - `mgrpo/delta_t1_t1_prime` = Acc@t1' − Acc@t1.
 * - `mgrpo/delta_i_to_c` (Δ^{i→c}) = (1/(N·H)) Σ_{i,j} [¬c_i ∧ c̃_ij].
 * - `mgrpo/delta_c_to_i` (Δ^{c→i}) = (1/(N·H)) Σ_{i,j} [c_i ∧ ¬c̃_ij].
 *   Since c̃ − c = [¬c ∧ c̃] − [c ∧ ¬c̃] for 0/1 values, Acc@t1' − Acc@t1 = Δ^{i→c} − Δ^{c→i}
 *   exactly: the Δ's are the same per-attempt expectation as Acc@t1'.
 * - `mgrpo/correction_rate` = #{i : ¬c_i ∧ ∃j c̃_ij} / #{i : ¬c_i}: the fraction of wrong o_i
 *   that at least one attempt corrects (0 when no o_i is wrong).
 * - `mgrpo/confirmation_rate` = #{i : c_i ∧ ∀j c̃_ij} / #{i : c_i}: the fraction of right o_i
 *   that every attempt confirms (0 when no o_i is right).
 * - `mgrpo/discarded_frac` = #{i : ¬keep_i} / N: the q'_i groups left out of Layer 2.
 * - `mgrpo/n_correction`, `mgrpo/n_confirmation`, `mgrpo/n_unsuccessful`: how many of the N·H
 *   pairs (o_i, õ_ij) fall in each case of {@linkcode classifyCorrection}.
 * - `mgrpo/n_groups` = N.
 *
 * Acc@t2, the accuracy of the policy after the update, is measured by evaluation
 * ({@linkcode twoTurnMetrics}), not here.
 *
 * @param layer1Correct c_i, one per o_i.
 * @param layer2Correct c̃_ij, H per o_i.
 * @param keep The selection, one flag per o_i (from {@linkcode selectLayer2Groups}).
 * @throws {TypeError} When the shapes disagree (the message names the index).
 * @throws {RangeError} When there is no Layer-1 response.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mgrpoMetrics } from "./mod.ts";
 *
 * const m = mgrpoMetrics([true, false], [[true, false], [true, true]], [true, true]);
 * assert.equal(m["mgrpo/acc_t1"], 0.5); // 1/2
 * assert.equal(m["mgrpo/acc_t1_prime"], 0.75); // (1/2 + 1) / 2
 * assert.equal(m["mgrpo/delta_i_to_c"], 0.5); // 2 of 4 pairs
 * assert.equal(m["mgrpo/delta_c_to_i"], 0.25); // 1 of 4 pairs
 * ```
 */
export function mgrpoMetrics(
  layer1Correct: readonly boolean[],
  layer2Correct: readonly (readonly boolean[])[],
  keep: readonly boolean[],
): Record<string, number> {
  const what = "compute MGRPO metrics";
  const n = layer1Correct.length;
  if (n === 0) {
    throw new RangeError(
      `Cannot ${what}: there must be at least one Layer-1 response: current count is 0`,
    );
  }
  const h = checkGroupShape(what, n, layer2Correct, "layer2Correct");
  if (keep.length !== n) {
    throw new TypeError(
      `Cannot ${what}: keep must hold one flag per Layer-1 response (${n}): current length is ${keep.length}`,
    );
  }
  let right = 0;
  let correctedGroups = 0;
  let confirmedGroups = 0;
  let discarded = 0;
  const counts = { correction: 0, confirmation: 0, unsuccessful: 0 };
  let iToC = 0;
  let cToI = 0;
  layer1Correct.forEach((c, i) => {
    const attempts = layer2Correct[i]!;
    if (c) right++;
    if (!keep[i]) discarded++;
    for (const ct of attempts) {
      counts[classifyCorrection(c, ct)]++;
      if (!c && ct) iToC++;
      if (c && !ct) cToI++;
    }
    if (!c && attempts.some(Boolean)) correctedGroups++;
    if (c && attempts.every(Boolean)) confirmedGroups++;
  });
  const pairs = n * h;
  const accT1 = right / n;
  // Σ_ij c̃_ij = c→c pairs + i→c pairs.
  const accT1Prime = (counts.confirmation + counts.correction) / pairs;
  const wrong = n - right;
  return {
    "mgrpo/acc_t1": accT1,
    "mgrpo/acc_t1_prime": accT1Prime,
    "mgrpo/delta_t1_t1_prime": accT1Prime - accT1,
    "mgrpo/delta_i_to_c": iToC / pairs,
    "mgrpo/delta_c_to_i": cToI / pairs,
    "mgrpo/correction_rate": wrong === 0 ? 0 : correctedGroups / wrong,
    "mgrpo/confirmation_rate": right === 0 ? 0 : confirmedGroups / right,
    "mgrpo/discarded_frac": discarded / n,
    "mgrpo/n_correction": counts.correction,
    "mgrpo/n_confirmation": counts.confirmation,
    "mgrpo/n_unsuccessful": counts.unsuccessful,
    "mgrpo/n_groups": n,
  };
}

/** One problem of an evaluation table: its verdict after each turn. */
export interface TwoTurnVerdict {
  /** The first answer is right. */
  t1: boolean;
  /** The answer after one correction prompt is right. */
  t1Prime: boolean;
  /** The answer after a second correction prompt (or the second-turn policy) is right. */
  t2?: boolean;
}

/**
 * The paper's Table 2 columns from an evaluation table; every value is a fraction of ALL
 * problems. The t2 columns are present only when every row has `t2`.
 */
export interface TwoTurnMetrics {
  /** Acc@t1 = #{t1} / N. */
  acc_t1: number;
  /** Acc@t1' = #{t1'} / N. */
  acc_t1_prime: number;
  /** Acc@t2 = #{t2} / N. */
  acc_t2?: number;
  /** Δ(t1', t2) = Acc@t2 − Acc@t1'. */
  delta_t1_prime_t2?: number;
  /** Δ^{i→c}(t1', t2) = #{¬t1' ∧ t2} / N. */
  delta_i_to_c?: number;
  /** Δ^{c→i}(t1', t2) = #{t1' ∧ ¬t2} / N. */
  delta_c_to_i?: number;
  /** McNemar's exact two-sided p of t1' against t2 on the N problems. */
  mcnemar_p?: number;
}

/**
 * Evaluation metrics of a two-turn (solve → self-correct) run, the columns of the paper's
 * Table 2: Acc@t1, Acc@t1', Acc@t2, Δ(t1', t2), Δ^{i→c}(t1', t2), Δ^{c→i}(t1', t2), each
 * a fraction of all N problems, so Δ(t1', t2) = Δ^{i→c} − Δ^{c→i}, and McNemar's exact p of
 * t1' against t2. For the intrinsic self-correction baseline t1' is the answer after the first
 * correction prompt and t2 after the second; for MGRPO (the paper's Table 2 caption) t1 and t1'
 * are the first answer and one correction of the policy before Layer-2 training, and t2 one
 * correction of the policy after MGRPO (see `docs/self-correction.md`).
 *
 * @throws {RangeError} When the table is empty.
 * @throws {TypeError} When some rows have `t2` and others do not (the message names the index).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { twoTurnMetrics } from "./mod.ts";
 *
 * const m = twoTurnMetrics([
 *   { t1: false, t1Prime: false, t2: true },
 *   { t1: true, t1Prime: true, t2: true },
 * ]);
 * assert.equal(m.delta_i_to_c, 0.5);
 * assert.equal(m.delta_t1_prime_t2, 0.5);
 * ```
 */
export function twoTurnMetrics(table: readonly TwoTurnVerdict[]): TwoTurnMetrics {
  const n = table.length;
  if (n === 0) {
    throw new RangeError(
      "Cannot compute two-turn metrics: the table must not be empty: current length is 0",
    );
  }
  const hasT2 = table[0]!.t2 !== undefined;
  let t1 = 0, t1Prime = 0, t2 = 0, iToC = 0, cToI = 0;
  table.forEach((row, i) => {
    if ((row.t2 !== undefined) !== hasT2) {
      throw new TypeError(
        `Cannot compute two-turn metrics: table[${i}].t2 must be ${
          hasT2 ? "set" : "absent"
        } like table[0].t2: current value is ${String(row.t2)}`,
      );
    }
    if (row.t1) t1++;
    if (row.t1Prime) t1Prime++;
    if (row.t2) t2++;
    if (hasT2 && !row.t1Prime && row.t2) iToC++;
    if (hasT2 && row.t1Prime && !row.t2) cToI++;
  });
  const metrics: TwoTurnMetrics = { acc_t1: t1 / n, acc_t1_prime: t1Prime / n };
  if (!hasT2) return metrics;
  return {
    ...metrics,
    acc_t2: t2 / n,
    delta_t1_prime_t2: (t2 - t1Prime) / n,
    delta_i_to_c: iToC / n,
    delta_c_to_i: cToI / n,
    mcnemar_p: mcnemarExactP(cToI, iToC),
  };
}
