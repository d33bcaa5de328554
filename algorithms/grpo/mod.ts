/**
 * GRPO (Group Relative Policy Optimization, Shao et al. 2024, arXiv 2402.03300)
 * as TRL's `GRPOTrainer` computes it: config, group advantages and the clipped
 * surrogate loss with the k3 KL estimator.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import {
  type ActorFailed,
  type Graph,
  GraphBuilder,
  type Supervision,
} from "../../actors/runtime/mod.ts";
import { promptSource, type PromptSourceInput } from "../../actors/prompt_source.ts";
import { sampler, type SamplerInput } from "../../actors/sampler.ts";
import { verifier, type VerifierInput } from "../../actors/verifier.ts";
import { refPolicy, type RefPolicyInput } from "../../actors/ref_policy.ts";
import { learner, type LearnerInput, type PolicyAlgorithm } from "../../actors/learner.ts";
import { corrector, type CorrectorInput } from "../mgrpo/corrector.ts";
import type { AlgorithmGraphInput, AlgorithmPlugin } from "../registry.ts";

// --- config ---

/**
 * The `grpo` config section. Field names and defaults follow TRL's
 * `GRPOConfig` where TRL has the field.
 */
export const GrpoConfigSchema = z.object({
  num_generations: z.number().int().min(2).default(8).describe(
    "G: completions sampled per prompt (group size)",
  ),
  loss_type: z.enum(["grpo", "bnpo", "dr_grpo", "dapo"]).default("dapo").describe(
    "Loss reduction: grpo (per-sequence mean), bnpo (per-batch token mean), dr_grpo (divide by N·T_max), dapo (token mean over the whole generation batch)",
  ),
  scale_rewards: z.enum(["group", "batch", "none"]).default("group").describe(
    "Advantage scaling: divide R - mean(R) by the group std, the batch std, or nothing",
  ),
  epsilon: z.number().positive().default(0.2).describe(
    "ε: lower clip range, the ratio is clipped to [1 - ε, 1 + ε_high]",
  ),
  epsilon_high: z.number().positive().optional().describe(
    "ε_high: upper clip range (clip-higher, DAPO uses 0.28); when absent equals ε",
  ),
  beta: z.number().min(0).default(0.0).describe(
    "β: k3 KL coefficient; 0 skips the reference model",
  ),
  num_iterations: z.number().int().min(1).default(1).describe(
    "μ: optimisation passes over each generation batch",
  ),
  mask_truncated_completions: z.boolean().default(false).describe(
    "Exclude completions that hit the max length without EOS from the loss",
  ),
  filter_groups: z.boolean().default(false).describe(
    "Drop groups whose rewards are all equal (DAPO dynamic sampling, as in verl)",
  ),
}).strict();

/** Parsed `grpo` config section (defaults filled in). */
export type GrpoConfig = z.infer<typeof GrpoConfigSchema>;

// --- graph ---

/** What {@link buildGrpoGraph} wires together. */
export interface GrpoGraphInput {
  promptSource: PromptSourceInput;
  sampler: SamplerInput;
  /** Omitted when β = 0: the graph then has no RefPolicy. */
  refPolicy?: RefPolicyInput;
  learner: Omit<LearnerInput, "algorithm">;
  config: GrpoConfig;
  /** T_max of the sampler (the `dr_grpo` denominator). */
  maxCompletionLength: number;
  mailboxCapacity: number;
  onFailure?: (report: ActorFailed) => void;
  /** Supervision and injected faults (`runtime.max_restarts`, `faults:`). @default {} */
  supervision?: Supervision;
  /** The Verifier's scorer (answer checker and reward functions). @default exact integer match */
  score?: VerifierInput["score"];
  /**
   * MGRPO's Layer 2: when set, scored training rollouts go through this Corrector, which
   * sends both layers to the (RefPolicy and) Learner. See `buildMgrpoGraph`.
   */
  corrector?: Omit<CorrectorInput, "target">;
  /**
   * The Learner's advantages and loss; GRPO's own when absent. Lets an algorithm with GRPO's
   * graph and another estimator (RLOO, REINFORCE++) reuse this wiring.
   */
  algorithm?: PolicyAlgorithm;
}

/** GRPO as a plug-in of the algorithm registry (its section is `grpo`). */
export const grpoPlugin: AlgorithmPlugin<GrpoConfig> = {
  name: "grpo",
  configSchema: GrpoConfigSchema,
  needsReference: (config) => config.grpo.beta !== 0,
  buildGraph: (input) => buildGrpoGraph(grpoGraphInput(input)),
};

/** The GRPO graph's input from the registry's common input (the `grpo` and `sampler` sections). */
export function grpoGraphInput(input: AlgorithmGraphInput): GrpoGraphInput {
  const { config, learner, ...rest } = input;
  return {
    ...rest,
    config: config.grpo,
    maxCompletionLength: config.sampler.max_new_tokens,
    learner: { ...learner, numIterations: config.grpo.num_iterations },
  };
}

/**
 * The GRPO actor graph: PromptSource → Sampler → Verifier → (RefPolicy) → Learner, with the
 * Learner's new weights going back to the Sampler, and three sinks for the driver:
 * `stats` (one `StepStats` per step), `eval` (scored evaluation rollouts), `events`.
 */
export function buildGrpoGraph(input: GrpoGraphInput): Graph {
  const useRef = input.config.beta !== 0;
  if (useRef && !input.refPolicy) {
    throw new TypeError("Cannot build the GRPO graph: beta > 0 needs a reference policy");
  }
  const toLearner = useRef ? "ref_policy" : "learner";
  const builder = new GraphBuilder({
    capacity: input.mailboxCapacity,
    ...(input.onFailure ? { onFailure: input.onFailure } : {}),
    ...input.supervision,
  })
    .actor("prompt_source", promptSource, input.promptSource)
    .actor("sampler", sampler, input.sampler)
    .actor("verifier", verifier, {
      trainTarget: input.corrector ? "corrector" : toLearner,
      ...(input.score ? { score: input.score } : {}),
    })
    .actor("learner", learner, {
      ...input.learner,
      algorithm: input.algorithm ?? grpoAlgorithm(input.config, input.maxCompletionLength),
    });
  if (useRef) builder.actor("ref_policy", refPolicy, input.refPolicy!);
  if (input.corrector) {
    builder.actor("corrector", corrector, { ...input.corrector, target: toLearner });
  }
  return builder.sink("stats").sink("eval").sink("events").build();
}

/** GRPO's advantages and loss in the form the Learner takes. */
export function grpoAlgorithm(initial: GrpoConfig, maxCompletionLength: number): PolicyAlgorithm {
  let config = initial;
  return {
    configure(settings) {
      // β can rise above 0 only when the graph has a RefPolicy (the driver refuses otherwise).
      config = {
        ...config,
        ...(settings.beta === undefined ? {} : { beta: settings.beta }),
        ...(settings.epsilon === undefined ? {} : { epsilon: settings.epsilon }),
      };
    },
    advantages(scored, options = {}) {
      // A skipped sample (every reward function abstained) is NaN: out of its group's mean
      // and std, advantage 0, and out of the loss. A rollout the sender dropped
      // (`options.keep`, e.g. a discarded MGRPO Layer-2 group) is treated the same way.
      const rewards = scored.verdicts.map((v) => v.reward ?? NaN);
      const advantages = keptGroupAdvantages(rewards, scored.n, {
        scaleRewards: config.scale_rewards,
        ...(options.keep ? { keep: options.keep } : {}),
      });
      const zero = zeroVarianceGroups(rewards, scored.n);
      const keep = rewards.map((r, i) =>
        (options.keep?.[i] ?? true) && !Number.isNaN(r) &&
        !(config.filter_groups && zero[Math.floor(i / scored.n)])
      );
      return {
        advantages,
        keep,
        metrics: {
          "frac_reward_zero_std": zero.filter(Boolean).length / Math.max(1, zero.length),
          "groups/filtered": config.filter_groups ? zero.filter(Boolean).length : 0,
        },
      };
    },
    loss(inputs, scale) {
      if (inputs.advantages.rank !== 1) {
        throw new TypeError(
          `Cannot compute the GRPO loss: advantages must be [N]: current shape is [${inputs.advantages.shape}]`,
        );
      }
      const out = grpoLoss({ ...inputs, advantages: inputs.advantages as tf.Tensor1D }, {
        lossType: config.loss_type,
        epsilon: config.epsilon,
        epsilonHigh: config.epsilon_high ?? config.epsilon,
        beta: config.beta,
        maxCompletionLength,
        numItemsInBatch: scale.numItemsInBatch,
      });
      // dapo already divides by the tokens of the whole batch; the other reductions are
      // per micro-batch means, weighted by the micro-batch's share of rows.
      const loss = config.loss_type === "dapo"
        ? out.loss
        : tf.mul(out.loss, scale.rowFraction) as tf.Scalar;
      return {
        loss,
        stats: {
          "kl": out.stats.kl,
          "clip_ratio/low_mean": out.stats.clipLowMean,
          "clip_ratio/high_mean": out.stats.clipHighMean,
          "clip_ratio/region_mean": out.stats.clipRegionMean,
          "ratio/mean": out.stats.ratioMean,
        },
      };
    },
  };
}

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
