/**
 * advantages: see `mod.ts`.
 *
 * @module
 */
import { keptGroupAdvantages, type ScaleRewards } from "../grpo/advantages.ts";
import { checkGroupShape } from "./selection.ts";

// --- advantages ---

/**
 * Layer-2 advantages (Eq. 6): GRPO within each kept q'_i group, over its H corrections; a
 * discarded group gets all zeros (and must also be masked out of the loss: its zeros are not
 * a learning signal). For `"batch"` scaling the std is taken over the rewards of the KEPT
 * groups only, the Layer-2 batch that is trained on.
 *
 * This is {@linkcode keptGroupAdvantages} with one flag per group instead of per correction,
 * the function GRPO's Learner side calls: the Learner hands the Layer-2 part's selection to
 * the algorithm, so these are exactly the advantages that train.
 *
 * @param rewards R(õ_ij): for each q'_i, the rewards of its H corrections.
 * @param keep One flag per q'_i (from {@linkcode selectLayer2Groups}).
 * @param scaleRewards Std scaling, as in the `grpo` section.
 * @returns One array of H advantages per q'_i.
 * @throws {TypeError} When the shapes disagree (the message names the index).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layer2Advantages } from "./mod.ts";
 *
 * const a = layer2Advantages([[1, 0], [0, 0]], [true, false], "none");
 * assert.deepEqual(a.map((g) => [...g]), [[0.5, -0.5], [0, 0]]);
 * ```
 */
export function layer2Advantages(
  rewards: readonly (readonly number[])[],
  keep: readonly boolean[],
  scaleRewards: ScaleRewards,
): Float32Array[] {
  const h = checkGroupShape("compute Layer-2 advantages", keep.length, rewards, "rewards");
  const advantages = keptGroupAdvantages(rewards.flat(), Math.max(1, h), { // [N · H]
    scaleRewards,
    keep: rewards.flatMap((group, i) => group.map(() => keep[i]!)),
  });
  return rewards.map((_, i) => advantages.slice(i * h, (i + 1) * h)); // [N][H]
}
