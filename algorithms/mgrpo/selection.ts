/**
 * selection: see `mod.ts`.
 *
 * @module
 */
import type { Layer2Selection } from "./config.ts";

// --- dynamic verification and selection ---

/** The paper's three outcomes of one correction attempt (o_i, õ_ij), §3.2.4. */
export type CorrectionOutcome = "correction" | "confirmation" | "unsuccessful";

/**
 * Classifies one correction attempt: o_i wrong and õ_ij right is a successful `"correction"`
 * (i→c); o_i right and õ_ij right a successful `"confirmation"` (c→c); o_i right and õ_ij
 * wrong (c→i) or both wrong (i→i) is `"unsuccessful"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifyCorrection } from "./mod.ts";
 *
 * assert.equal(classifyCorrection(false, true), "correction");
 * assert.equal(classifyCorrection(true, false), "unsuccessful");
 * ```
 */
export function classifyCorrection(
  layer1Correct: boolean,
  layer2Correct: boolean,
): CorrectionOutcome {
  if (!layer2Correct) return "unsuccessful";
  return layer1Correct ? "confirmation" : "correction";
}

/**
 * One keep flag per Layer-2 group q'_i. `"paper"` (§3.2.4, Selection) discards a group iff
 * o_i was wrong AND all H corrections õ_i1…õ_iH are wrong; every other group, including a
 * right o_i whose corrections all went wrong, is kept. `"keep_all"` keeps every group.
 *
 * @param layer1Correct correct(o_i), one per Layer-1 response.
 * @param layer2Correct correct(õ_ij): for each i, the H verdicts of its corrections.
 * @param selection The selection policy.
 * @throws {TypeError} When there is not one group per o_i, or the groups do not all hold the
 * same number H ≥ 1 of verdicts (the message names the index).
 * @throws {RangeError} When `selection` is unknown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { selectLayer2Groups } from "./mod.ts";
 *
 * const keep = selectLayer2Groups([false, false, true], [[false, false], [false, true], [false, false]], "paper");
 * assert.deepEqual(keep, [false, true, true]);
 * ```
 */
export function selectLayer2Groups(
  layer1Correct: readonly boolean[],
  layer2Correct: readonly (readonly boolean[])[],
  selection: Layer2Selection,
): boolean[] {
  checkGroupShape("select Layer-2 groups", layer1Correct.length, layer2Correct, "layer2Correct");
  switch (selection) {
    case "paper":
      return layer1Correct.map((right, i) => right || layer2Correct[i]!.some(Boolean));
    case "keep_all":
      return layer1Correct.map(() => true);
    default:
      throw new RangeError(
        `Unknown selection: "${selection as string}" (expected "paper" or "keep_all")`,
      );
  }
}

/**
 * Checks that `groups` holds `n` arrays of the same length H ≥ 1 and returns H (0 when n = 0).
 */
export function checkGroupShape(
  what: string,
  n: number,
  groups: readonly (ArrayLike<unknown>)[],
  name: string,
): number {
  if (groups.length !== n) {
    throw new TypeError(
      `Cannot ${what}: ${name} must hold one group per Layer-1 response (${n}): current length is ${groups.length}`,
    );
  }
  const h = groups[0]?.length ?? 0;
  groups.forEach((group, i) => {
    if (group.length === 0) {
      throw new TypeError(
        `Cannot ${what}: ${name}[${i}] must hold at least one correction: current length is 0`,
      );
    }
    if (group.length !== h) {
      throw new TypeError(
        `Cannot ${what}: ${name}[${i}] must hold H = ${h} corrections like ${name}[0]: current length is ${group.length}`,
      );
    }
  });
  return h;
}
