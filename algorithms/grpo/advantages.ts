/**
 * advantages: see `mod.ts`.
 *
 * @module
 */
import type { GrpoConfig } from "./config.ts";

// --- advantages ---

/** How {@linkcode groupAdvantages} scales `R - mean(R)`: TRL's `scale_rewards`. */
export type ScaleRewards = GrpoConfig["scale_rewards"];

/** Added to the std before dividing, as TRL does (`advantages / (std_rewards + 1e-4)`). */
const STD_EPSILON = 1e-4;

/**
 * Group-relative advantages, exactly as TRL's `GRPOTrainer._generate_and_score_completions`
 * (trl 1.16, `multi_objective_aggregation="sum_then_normalize"`) computes them.
 *
 * `rewards` holds consecutive groups of `groupSize` completions of one prompt each.
 * For every completion `i` of group `g`:
 *
 * - `advantages[i] = rewards[i] - mean(R_g)`, always the GROUP mean, also for `"batch"`;
 * - `"group"`: divided by `std(R_g) + 1e-4`;
 * - `"batch"`: divided by `std(R) + 1e-4`, the std of the whole batch
 *   (Liu et al. 2025 / TRL's `scale_rewards="batch"`);
 * - `"none"`: not divided (Dr. GRPO).
 *
 * The std is TRL's `nanstd`: unbiased (Bessel's correction, divides by `n - 1`), like
 * `torch.std`. A `NaN` reward marks an unscorable completion (TRL: every reward function
 * returned `None`): it is left out of the mean and std, and its advantage is 0, as TRL's
 * `torch.nan_to_num(advantages, nan=0.0)` makes it. A group whose rewards are all equal gets
 * advantages 0 (`0 / (0 + 1e-4)`).
 *
 * @param rewards One scalar reward per completion, `groupSize` consecutive completions per prompt.
 * @param groupSize G, the completions per prompt.
 * @param scaleRewards Std scaling: `"group"`, `"batch"` or `"none"`.
 * @returns One advantage per completion.
 * @throws {RangeError} When `groupSize` is not a positive integer or does not divide the number of rewards.
 *
 * @example
 * ```ts
 * import { groupAdvantages } from "./mod.ts";
 * // mean 0.5, unbiased std sqrt(1/3): (1 - 0.5) / (0.57735 + 1e-4) = 0.86588
 * const a = groupAdvantages([1, 0, 0, 1], 4, "group");
 * if (Math.abs(a[0]! - 0.86588) > 1e-4) throw new Error(String(a[0]));
 * ```
 */
export function groupAdvantages(
  rewards: ArrayLike<number>,
  groupSize: number,
  scaleRewards: ScaleRewards,
): Float32Array {
  checkGroups("compute group advantages", rewards.length, groupSize);
  const n = rewards.length;
  const advantages = new Float32Array(n);
  const batchStd = nanStd(rewards, 0, n);
  for (let start = 0; start < n; start += groupSize) {
    const groupMean = nanMean(rewards, start, groupSize);
    let std: number;
    switch (scaleRewards) {
      case "group":
        std = nanStd(rewards, start, groupSize);
        break;
      case "batch":
        std = batchStd;
        break;
      case "none":
        std = 0;
        break;
      default:
        throw new RangeError(
          `Unknown scale_rewards: "${scaleRewards as string}" (expected "group", "batch" or "none")`,
        );
    }
    for (let i = start; i < start + groupSize; i++) {
      let a = rewards[i]! - groupMean;
      if (scaleRewards !== "none") a = a / (std + STD_EPSILON);
      advantages[i] = Number.isNaN(a) ? 0 : a;
    }
  }
  return advantages;
}

/** Options of {@linkcode keptGroupAdvantages}. */
export interface KeptGroupOptions {
  /** Std scaling: `"group"`, `"batch"` or `"none"`, as in {@linkcode groupAdvantages}. */
  scaleRewards: ScaleRewards;
  /**
   * One flag per completion: `false` drops it from the update.
   *
   * @default all kept
   */
  keep?: ArrayLike<boolean>;
}

/**
 * {@linkcode groupAdvantages} of the kept completions alone: a dropped completion is left out
 * of its group's mean and std and of the batch std, exactly like a `NaN` reward, and gets
 * advantage 0 (it must also be left out of the loss: its 0 is not a learning signal). A group
 * with every completion dropped gets all zeros; the others get the advantages they would get
 * in a batch of the kept groups alone. For `"batch"` scaling the std is thus taken over the
 * rewards that are trained on. GRPO's Learner side computes its advantages with this, and so
 * does MGRPO's Layer 2 (`layer2Advantages`, where the dropped groups are the discarded q'_i).
 *
 * @param rewards One scalar reward per completion, `groupSize` consecutive completions per prompt.
 * @param groupSize G, the completions per prompt.
 * @param options The std scaling and the kept completions.
 * @returns One advantage per completion, 0 for a dropped one.
 * @throws {RangeError} When `groupSize` is not a positive integer or does not divide the number of rewards.
 * @throws {TypeError} When `keep` does not hold one flag per reward.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keptGroupAdvantages } from "./mod.ts";
 *
 * // Group 1 is dropped: its rewards do not enter the batch std, which is that of [1, 0]
 * // (sqrt(0.5) = 0.70711): ±0.5 / (0.70711 + 1e-4) = ±0.70701.
 * const a = keptGroupAdvantages([1, 0, 1, 1], 2, {
 *   scaleRewards: "batch",
 *   keep: [true, true, false, false],
 * });
 * assert.ok(Math.abs(a[0]! - 0.70701) < 1e-4 && Math.abs(a[1]! + 0.70701) < 1e-4);
 * assert.deepEqual([a[2], a[3]], [0, 0]);
 * ```
 */
export function keptGroupAdvantages(
  rewards: ArrayLike<number>,
  groupSize: number,
  options: KeptGroupOptions,
): Float32Array {
  const { keep, scaleRewards } = options;
  if (keep === undefined) return groupAdvantages(rewards, groupSize, scaleRewards);
  if (keep.length !== rewards.length) {
    throw new TypeError(
      `Cannot compute kept-group advantages: keep must hold one flag per reward (${rewards.length}): current length is ${keep.length}`,
    );
  }
  const kept = Float64Array.from(rewards, (r, i) => (keep[i] ? r : NaN));
  return groupAdvantages(kept, groupSize, scaleRewards);
}

/**
 * Which groups carry no learning signal because all their rewards are equal (`NaN`
 * rewards are ignored; a group with no scorable reward counts as zero-variance). With
 * `filter_groups` these groups are dropped before the update, as verl's DAPO dynamic
 * sampling filter does (`std(rewards) == 0`).
 *
 * @param rewards One scalar reward per completion, `groupSize` consecutive completions per prompt.
 * @param groupSize G, the completions per prompt.
 * @returns One flag per group: `true` when every reward of the group is the same.
 * @throws {RangeError} When `groupSize` is not a positive integer or does not divide the number of rewards.
 *
 * @example
 * ```ts
 * import { zeroVarianceGroups } from "./mod.ts";
 * const flags = zeroVarianceGroups([1, 1, 0, 1], 2);
 * if (flags[0] !== true || flags[1] !== false) throw new Error(String(flags));
 * ```
 */
export function zeroVarianceGroups(rewards: ArrayLike<number>, groupSize: number): boolean[] {
  checkGroups("find zero-variance groups", rewards.length, groupSize);
  const flags: boolean[] = [];
  for (let start = 0; start < rewards.length; start += groupSize) {
    let first = NaN;
    let allEqual = true;
    for (let i = start; i < start + groupSize; i++) {
      const r = rewards[i]!;
      if (Number.isNaN(r)) continue;
      if (Number.isNaN(first)) first = r;
      else if (r !== first) allEqual = false;
    }
    flags.push(allEqual);
  }
  return flags;
}

function checkGroups(what: string, n: number, groupSize: number): void {
  if (!Number.isInteger(groupSize) || groupSize < 1) {
    throw new RangeError(
      `Cannot ${what}: group size must be a positive integer: current value is ${groupSize}`,
    );
  }
  if (n % groupSize !== 0) {
    throw new RangeError(
      `Cannot ${what}: the number of rewards must be a multiple of the group size ${groupSize}: current value is ${n}`,
    );
  }
}

/** Mean of the non-NaN values of `x[start, start + count)`; NaN when there are none. */
function nanMean(x: ArrayLike<number>, start: number, count: number): number {
  let sum = 0;
  let k = 0;
  for (let i = start; i < start + count; i++) {
    const v = x[i]!;
    if (Number.isNaN(v)) continue;
    sum += v;
    k++;
  }
  return k === 0 ? NaN : sum / k;
}

/** Unbiased std (n - 1) of the non-NaN values, TRL's `nanstd`; NaN for fewer than 2 values. */
function nanStd(x: ArrayLike<number>, start: number, count: number): number {
  const mean = nanMean(x, start, count);
  let sq = 0;
  let k = 0;
  for (let i = start; i < start + count; i++) {
    const v = x[i]!;
    if (Number.isNaN(v)) continue;
    sq += (v - mean) ** 2;
    k++;
  }
  return k < 2 ? NaN : Math.sqrt(sq / (k - 1));
}
