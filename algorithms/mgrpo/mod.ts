/**
 * MGRPO (Multi-layer GRPO, arXiv 2506.04746, §3.2): the pure logic of Layer 2, the
 * self-correction layer. For every Layer-1 response o_i it builds the correction query q'_i
 * (Eq. 5), classifies each of the H corrections õ_ij (successful correction, successful
 * confirmation, unsuccessful), selects the q'_i groups that enter the Layer-2 GRPO update
 * (Eq. 6), computes their advantages and the paper's self-correction metrics.
 *
 * No actors and no tensors here: the Corrector actor and the Learner call these functions.
 *
 * @module
 */
import { buildGrpoGraph, type GrpoGraphInput, grpoGraphInput } from "../grpo/mod.ts";
import type { AlgorithmPlugin } from "../registry.ts";
import type { GrpoConfig } from "../grpo/config.ts";
import { corrector, type CorrectorInput } from "./corrector.ts";
import type { Graph } from "../../actors/runtime/mod.ts";
import { type MgrpoConfig, MgrpoConfigSchema } from "./config.ts";
export * from "./advantages.ts";
export * from "./config.ts";
export * from "./metrics.ts";
export * from "./prompt.ts";
export * from "./selection.ts";

// --- graph ---

/**
 * The MGRPO actor graph: the GRPO graph with a Corrector between the Verifier and the
 * (RefPolicy and) Learner. Layer-1 rollouts go to the Corrector, which asks the same Sampler
 * for H corrections of every o_i; the Verifier scores them and returns them to the Corrector,
 * which selects the Layer-2 groups and sends both layers to the Learner as one batch. One
 * shared policy is updated with `layer1_weight · L1 + layer2_weight · L2`.
 */
export function buildMgrpoGraph(
  input: Omit<GrpoGraphInput, "stage">,
  mgrpo: MgrpoConfig,
  options: { seed: number; template?: string },
): Graph {
  const correctorInput: Omit<CorrectorInput, "target"> = {
    tokenizer: input.promptSource.tokenizer,
    config: mgrpo,
    seed: options.seed,
    sampling: input.promptSource.sampling,
    ...(options.template === undefined ? {} : { template: options.template }),
    ...(input.promptSource.maxPromptTokens === undefined
      ? {}
      : { maxPromptTokens: input.promptSource.maxPromptTokens }),
    ...(input.promptSource.onLongPrompt === undefined
      ? {}
      : { onLongPrompt: input.promptSource.onLongPrompt }),
  };
  return buildGrpoGraph({
    ...input,
    stage: {
      name: "corrector",
      add: (builder, target) =>
        builder.actor("corrector", corrector, { ...correctorInput, target }),
    },
  });
}

/**
 * MGRPO as a plug-in of the algorithm registry: the `grpo` section sets both layers' loss,
 * the `mgrpo` section Layer 2.
 */
export const mgrpoPlugin: AlgorithmPlugin<
  MgrpoConfig,
  { grpo: GrpoConfig; mgrpo: MgrpoConfig }
> = {
  name: "mgrpo",
  configSchema: MgrpoConfigSchema,
  description: "MGRPO Layer 2: corrections per response, guide phrases, selection, layer weights",
  readsSections: ["grpo"],
  liveFields: ["grpo.beta", "grpo.epsilon", "mgrpo.guide_phrases", "mgrpo.num_corrections"],
  needsReference: (config) => config.grpo.beta !== 0,
  buildGraph: (input) =>
    buildMgrpoGraph(grpoGraphInput(input), input.config.mgrpo, {
      seed: input.config.run.seed,
      ...(input.config.prompts.template === undefined
        ? {}
        : { template: input.config.prompts.template }),
    }),
};
