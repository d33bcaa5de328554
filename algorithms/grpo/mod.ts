/**
 * GRPO (Group Relative Policy Optimization, Shao et al. 2024, arXiv 2402.03300)
 * as TRL's `GRPOTrainer` computes it: config, group advantages and the clipped
 * surrogate loss with the k3 KL estimator.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
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
import type { AlgorithmGraphInput, AlgorithmPlugin } from "../registry.ts";
import { keptGroupAdvantages, zeroVarianceGroups } from "./advantages.ts";
import { type GrpoConfig, GrpoConfigSchema } from "./config.ts";
import { grpoLoss } from "./loss.ts";
export * from "./advantages.ts";
export * from "./config.ts";
export * from "./loss.ts";

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
   * An actor between the Verifier and the (RefPolicy and) Learner: scored training rollouts
   * go to it, and it sends its training batches on to `target`. An algorithm that extends
   * GRPO's graph adds it (MGRPO's Corrector, see `buildMgrpoGraph`).
   */
  stage?: GraphStage;
  /**
   * The Learner's advantages and loss; GRPO's own when absent. Lets an algorithm with GRPO's
   * graph and another estimator (RLOO, REINFORCE++) reuse this wiring.
   */
  algorithm?: PolicyAlgorithm;
}

/** An actor placed between the Verifier and the Learner of the GRPO graph. */
export interface GraphStage {
  /** Its name in the graph; the Verifier's training rollouts go to it. */
  readonly name: string;
  /** Adds the actor to `builder`, sending its output to `target`. */
  add(builder: GraphBuilder, target: string): void;
}

/** GRPO as a plug-in of the algorithm registry (its section is `grpo`). */
export const grpoPlugin: AlgorithmPlugin<GrpoConfig, { grpo: GrpoConfig }> = {
  name: "grpo",
  configSchema: GrpoConfigSchema,
  description: "GRPO group size, loss and clipping (also the loss of both MGRPO layers)",
  liveFields: ["grpo.beta", "grpo.epsilon"],
  needsReference: (config) => config.grpo.beta !== 0,
  buildGraph: (input) => buildGrpoGraph(grpoGraphInput(input)),
};

/** The GRPO graph's input from the registry's common input (the `grpo` and `sampler` sections). */
export function grpoGraphInput(input: AlgorithmGraphInput<{ grpo: GrpoConfig }>): GrpoGraphInput {
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
      trainTarget: input.stage?.name ?? toLearner,
      ...(input.score ? { score: input.score } : {}),
    })
    .actor("learner", learner, {
      ...input.learner,
      algorithm: input.algorithm ?? grpoAlgorithm(input.config, input.maxCompletionLength),
    });
  if (useRef) builder.actor("ref_policy", refPolicy, input.refPolicy!);
  input.stage?.add(builder, toLearner);
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
        ...("grpo.beta" in settings.values ? { beta: settings.values["grpo.beta"] as number } : {}),
        ...("grpo.epsilon" in settings.values
          ? { epsilon: settings.values["grpo.epsilon"] as number }
          : {}),
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
      return {
        loss: out.loss,
        // dapo already divides by the tokens of the whole batch; the other reductions are
        // per micro-batch means, which the Learner weighs by the micro-batch's rows.
        batchNormalized: config.loss_type === "dapo",
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
