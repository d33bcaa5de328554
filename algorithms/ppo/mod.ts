/**
 * PPO for language models (Schulman et al. 2017, arXiv 1707.06347; RLHF form of Ziegler et al.
 * 2019, arXiv 1909.08593) as TRL's `PPOTrainer`, OpenRLHF and verl compute it: config, per-token
 * KL-penalised rewards, GAE, whitening, the adaptive KL controller, and the clipped policy and
 * value losses. The Critic actor and the graph that call these live elsewhere.
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
import { critic, type CriticInput } from "./critic.ts";
import { learner, type LearnerInput, type PolicyAlgorithm } from "../../actors/learner.ts";
import type { AlgorithmPlugin } from "../registry.ts";
import type { GrpoConfig } from "../grpo/config.ts";
import { type PpoConfig, PpoConfigSchema } from "./config.ts";
import { ppoPolicyLoss } from "./loss.ts";
export * from "./advantages.ts";
export * from "./config.ts";
export * from "./loss.ts";
export * from "./rewards.ts";

// --- graph ---

/**
 * PPO as a plug-in of the algorithm registry: B·G prompts a step with one completion each (as
 * many completions as GRPO samples), and a Critic whose value model starts as a trainable copy
 * of the Learner's policy.
 */
export const ppoPlugin: AlgorithmPlugin<PpoConfig, { grpo: GrpoConfig; ppo: PpoConfig }> = {
  name: "ppo",
  configSchema: PpoConfigSchema,
  description:
    "PPO: GAE, clipping, KL penalty, epochs and the value model (used when algorithm: ppo)",
  liveFields: ["ppo.cliprange"],
  readsSections: ["grpo"], // num_generations: completions per prompt
  needsReference: (config) => config.ppo.kl_coef > 0,
  buildGraph(input) {
    const { config, promptSource: source, ...rest } = input;
    const g = config.grpo.num_generations;
    return buildPpoGraph({
      ...rest,
      promptSource: {
        ...source,
        promptsPerStep: source.promptsPerStep * g,
        numGenerations: 1,
        ...(source.cursor === undefined ? {} : { cursor: source.cursor * g }),
      },
      critic: {
        model: input.learner.model.clone({ trainable: true }),
        padId: input.sampler.tokenizer.padId,
      },
      config: config.ppo,
    });
  },
};

/** What {@link buildPpoGraph} wires together. */
export interface PpoGraphInput {
  promptSource: PromptSourceInput;
  sampler: SamplerInput;
  /** Needed when β > 0 (KL in the reward or in the loss); omitted otherwise. */
  refPolicy?: RefPolicyInput;
  /** The value model (a trainable copy of the warm start) and the tokenizer's pad id. */
  critic: Omit<CriticInput, "config" | "target">;
  learner: Omit<LearnerInput, "algorithm" | "numIterations">;
  config: PpoConfig;
  mailboxCapacity: number;
  onFailure?: (report: ActorFailed) => void;
  /** Supervision and injected faults (`runtime.max_restarts`, `faults:`). @default {} */
  supervision?: Supervision;
  /** The Verifier's scorer. @default exact integer match */
  score?: VerifierInput["score"];
}

/**
 * The PPO actor graph: PromptSource → Sampler → Verifier → (RefPolicy) → Critic → Learner,
 * the same actors as GRPO plus the Critic, which turns outcome rewards into per-token GAE
 * advantages and trains the value model. The Learner runs `ppo_epochs` optimizer steps of
 * the clipped surrogate on each batch. Sinks as in GRPO: `stats`, `eval`, `events`.
 *
 * @throws {TypeError} When β > 0 and no reference policy is given.
 */
export function buildPpoGraph(input: PpoGraphInput): Graph {
  const useRef = input.config.kl_coef > 0;
  if (useRef && !input.refPolicy) {
    throw new TypeError("Cannot build the PPO graph: kl_coef > 0 needs a reference policy");
  }
  const builder = new GraphBuilder({
    capacity: input.mailboxCapacity,
    ...(input.onFailure ? { onFailure: input.onFailure } : {}),
    ...input.supervision,
  })
    .actor("prompt_source", promptSource, input.promptSource)
    .actor("sampler", sampler, input.sampler)
    .actor("verifier", verifier, {
      trainTarget: useRef ? "ref_policy" : "critic",
      ...(input.score ? { score: input.score } : {}),
    })
    .actor("critic", critic, { ...input.critic, config: input.config, target: "learner" })
    .actor("learner", learner, {
      ...input.learner,
      numIterations: input.config.ppo_epochs,
      miniBatches: input.config.num_mini_batches,
      algorithm: ppoAlgorithm(input.config),
    });
  if (useRef) builder.actor("ref_policy", refPolicy, { ...input.refPolicy!, target: "critic" });
  return builder.sink("stats").sink("eval").sink("events").build();
}

/**
 * PPO's side of the Learner: the per-token advantages the Critic attached, and the clipped
 * surrogate loss (with the KL term when `kl_in_loss`).
 */
export function ppoAlgorithm(initial: PpoConfig): PolicyAlgorithm {
  let config = initial;
  return {
    configure(settings) {
      if ("ppo.cliprange" in settings.values) {
        config = { ...config, cliprange: settings.values["ppo.cliprange"] as number };
      }
    },
    advantages(scored, options = {}) {
      if (scored.tokenAdvantages === undefined) {
        throw new TypeError(
          "Cannot train PPO: the batch has no per-token advantages (is the Critic in the graph?)",
        );
      }
      return {
        advantages: new Float32Array(scored.rollouts.length),
        tokenAdvantages: scored.tokenAdvantages,
        // The Critic whitened GAE over the whole batch before any selection, so `options.keep`
        // can only mask rows out of the loss (PPO's graph has no sender that selects rows).
        keep: scored.verdicts.map((v, i) => (options.keep?.[i] ?? true) && v.reward !== null),
        metrics: {},
      };
    },
    loss(inputs, scale) {
      if (inputs.advantages.rank !== 2) {
        throw new TypeError(
          `Cannot compute the PPO loss: advantages must be [N, T]: current shape is [${inputs.advantages.shape}]`,
        );
      }
      const useKl = config.kl_in_loss && config.kl_coef > 0 && inputs.refLogp !== undefined;
      const out = ppoPolicyLoss({
        logp: inputs.logp,
        oldLogp: inputs.oldLogp,
        advantages: inputs.advantages as tf.Tensor2D,
        mask: inputs.mask,
        ...(useKl ? { refLogp: inputs.refLogp! } : {}),
      }, {
        cliprange: config.cliprange,
        lossType: config.loss_type,
        ...(useKl ? { klCoef: config.kl_coef, klEstimator: config.kl_estimator } : {}),
        numItemsInBatch: scale.numItemsInBatch,
      });
      return {
        loss: out.loss,
        // token_mean already divides by the tokens of the whole batch; the sequence means are
        // per micro-batch, which the Learner weighs by the micro-batch's rows.
        batchNormalized: config.loss_type === "token_mean",
        stats: {
          "clip_ratio": out.stats.clipFrac,
          "approx_kl": out.stats.approxKl,
          "ratio/mean": out.stats.ratioMean,
          "kl": out.stats.kl,
        },
      };
    },
  };
}
