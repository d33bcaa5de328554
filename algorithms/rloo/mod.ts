/**
 * RLOO (REINFORCE Leave-One-Out, Ahmadian et al. 2024) as an algorithm plug-in: the worked
 * example of the plug-in contract, in one file and without editing the framework. Load it
 * from YAML:
 *
 * ```yaml
 * plugins: [algorithms/rloo/mod.ts]
 * algorithm: rloo
 * rloo:
 *   epsilon: 0.2
 * ```
 *
 * The graph is GRPO's (G completions per prompt from the `grpo` section, the same Sampler,
 * Verifier, RefPolicy and Learner); what differs is the advantage: each completion's reward
 * minus the mean reward of the OTHER G − 1 completions of its prompt, with no division by
 * the std. The loss is the clipped surrogate of GRPO with these advantages.
 *
 * `rloo.epsilon` is live: the plug-in declares it (`liveFields`), `PATCH /config` validates a
 * new value with this section's schema, every actor that takes `Configure` receives it, and
 * the Learner's algorithm below applies it from the next step; a resumed run keeps it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import type { PolicyAlgorithm } from "../../actors/learner.ts";
import { buildGrpoGraph, grpoGraphInput } from "../grpo/mod.ts";
import { grpoLoss } from "../grpo/loss.ts";
import type { AlgorithmPlugin } from "../registry.ts";

// --- config ---

/** The `rloo` section. */
export const RlooConfigSchema = z.object({
  epsilon: z.number().gt(0).lt(1).default(0.2).describe(
    "ε: the ratio is clipped to [1 - ε, 1 + ε]",
  ),
  loss_type: z.enum(["grpo", "bnpo", "dr_grpo", "dapo"]).default("dapo").describe(
    "Reduction of the per-token loss, as in the grpo section",
  ),
}).strict();

/** Parsed `rloo` section. */
export type RlooConfig = z.infer<typeof RlooConfigSchema>;

// --- graph ---

/** The plug-in: `plugins: [algorithms/rloo/mod.ts]` and `algorithm: rloo` in YAML. */
export const algorithm: AlgorithmPlugin<RlooConfig> = {
  name: "rloo",
  configSchema: RlooConfigSchema,
  description: "RLOO: the clip range and loss reduction of the leave-one-out surrogate",
  liveFields: ["rloo.epsilon"],
  needsReference: () => false,
  buildGraph(input) {
    const rloo = RlooConfigSchema.parse(input.config.rloo ?? {});
    const base = grpoGraphInput(input);
    return buildGrpoGraph({
      ...base,
      config: { ...base.config, beta: 0 }, // RLOO here has no KL term: no RefPolicy
      algorithm: rlooAlgorithm(rloo, base.maxCompletionLength),
    });
  },
};

// --- advantages ---

/**
 * Leave-one-out advantages: `A_i = R_i − mean_{j≠i} R_j` within each group of `groupSize`
 * consecutive rewards (`= G/(G−1) · (R_i − mean R)`). A NaN reward (a skipped sample) is left
 * out of its group's baselines and gets advantage 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { leaveOneOutAdvantages } from "./mod.ts";
 *
 * // Group [1, 0, 0, 1]: A_0 = 1 − (0 + 0 + 1)/3 = 2/3, A_1 = 0 − 2/3.
 * const a = leaveOneOutAdvantages([1, 0, 0, 1], 4);
 * assert.ok(Math.abs(a[0]! - 2 / 3) < 1e-6 && Math.abs(a[1]! + 2 / 3) < 1e-6);
 * ```
 */
export function leaveOneOutAdvantages(rewards: ArrayLike<number>, groupSize: number): Float32Array {
  if (!Number.isInteger(groupSize) || groupSize < 2 || rewards.length % groupSize !== 0) {
    throw new RangeError(
      `Cannot compute leave-one-out advantages: the group size must be an integer >= 2 that divides ${rewards.length}: current value is ${groupSize}`,
    );
  }
  const out = new Float32Array(rewards.length);
  for (let s = 0; s < rewards.length; s += groupSize) {
    let sum = 0, n = 0;
    for (let i = s; i < s + groupSize; i++) {
      if (Number.isNaN(rewards[i]!)) continue;
      sum += rewards[i]!;
      n++;
    }
    for (let i = s; i < s + groupSize; i++) {
      const r = rewards[i]!;
      out[i] = Number.isNaN(r) || n < 2 ? 0 : r - (sum - r) / (n - 1);
    }
  }
  return out;
}

// --- loss ---

/** RLOO's side of the Learner: leave-one-out advantages, GRPO's clipped surrogate (β = 0). */
export function rlooAlgorithm(initial: RlooConfig, maxCompletionLength: number): PolicyAlgorithm {
  let config = initial;
  return {
    configure(settings) {
      const epsilon = settings.values["rloo.epsilon"];
      if (typeof epsilon === "number") config = { ...config, epsilon };
    },
    advantages(scored, options = {}) {
      // A rollout the sender dropped is out of its group's baselines, like a skipped one.
      const rewards = scored.verdicts.map((v, i) =>
        (options.keep?.[i] ?? true) ? (v.reward ?? NaN) : NaN
      );
      return {
        advantages: leaveOneOutAdvantages(rewards, scored.n),
        keep: rewards.map((r) => !Number.isNaN(r)),
        metrics: {},
      };
    },
    loss(inputs, scale) {
      const out = grpoLoss({ ...inputs, advantages: inputs.advantages as tf.Tensor1D }, {
        lossType: config.loss_type,
        epsilon: config.epsilon,
        epsilonHigh: config.epsilon,
        beta: 0,
        maxCompletionLength,
        numItemsInBatch: scale.numItemsInBatch,
      });
      return {
        loss: out.loss,
        batchNormalized: config.loss_type === "dapo",
        stats: { "clip_ratio/region_mean": out.stats.clipRegionMean },
      };
    },
  };
}
