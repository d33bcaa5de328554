/**
 * The self-correction evaluation of a checkpoint (`deno task eval --two-turn`, `compare`): one
 * greedy answer per held-out problem, then one correction round (or two) of the same policy,
 * with the paired statistics of `algorithms/mgrpo/self_correction.ts`.
 *
 * @module
 */
import type { TrainConfig } from "../algorithms/builtins.ts";
import {
  type EvalProblem,
  evaluateSelfCorrection,
  type SelfCorrectionOptions,
  type SelfCorrectionResult,
} from "../algorithms/mgrpo/evaluate.ts";
import { type CorrectionMetrics, correctionMetrics } from "../algorithms/mgrpo/self_correction.ts";
import {
  buildLayer2Prompt,
  layer2Assistant,
  layer2SystemPrompt,
  type TwoTurnMetrics,
  twoTurnMetrics,
} from "../algorithms/mgrpo/mod.ts";
import { loadCheckpoint } from "../model/checkpoint.ts";
import type { AnswerChecker } from "../verifiers/reward.ts";
import { promptRenderer } from "./setup.ts";

/**
 * Options of a self-correction evaluation from a config: the Layer-1 prompt, the Layer-2 query
 * of the `mgrpo` section (Eq. 5 or the appendix form, its system prompt, separator and guide
 * phrases), the `prompts` section's long-prompt handling and the `eval` section's sampling.
 */
export function selfCorrectionOptions(config: TrainConfig): SelfCorrectionOptions {
  const layer2 = {
    systemPrompt: layer2SystemPrompt(config.mgrpo.layer2_system_prompt),
    separator: config.mgrpo.guide_separator,
    position: config.mgrpo.guide_position,
    ...(config.prompts.template === undefined ? {} : { template: config.prompts.template }),
  };
  return {
    renderPrompt: promptRenderer(config.prompts),
    buildCorrection: (question, text, phrase) => ({
      prompt: buildLayer2Prompt(question, text, phrase, layer2),
      assistant: layer2Assistant(text, phrase, layer2),
    }),
    phrases: config.mgrpo.guide_phrases,
    maxPromptTokens: config.prompts.max_prompt_tokens,
    onLongPrompt: config.prompts.on_long_prompt,
    maxNewTokens: config.eval.max_new_tokens,
    greedy: config.eval.greedy,
    temperature: config.eval.temperature,
    batchSize: config.eval.batch_size,
    seed: config.run.seed,
  };
}

/** What {@linkcode evaluateCheckpointTwoTurn} measures on one checkpoint. */
export interface TwoTurnReport {
  /** One guided correction by the same policy (first answer t1 → corrected answer t2). */
  correction: CorrectionMetrics;
  /**
   * The paper's intrinsic self-correction columns (`rounds: 2` only): t1' after the first
   * correction prompt, t2 after the second, Δ's between them, McNemar's p of t1' vs t2.
   */
  intrinsic?: TwoTurnMetrics;
  /** The per-problem verdicts and completions of every round. */
  result: SelfCorrectionResult;
}

/**
 * Loads a checkpoint and runs the self-correction evaluation of {@link selfCorrectionOptions}
 * on it (integer checker unless one is given): one guided correction, and with `rounds: 2` a
 * second one for the intrinsic baseline's columns.
 */
export async function evaluateCheckpointTwoTurn(
  checkpoint: string,
  config: TrainConfig,
  problems: readonly EvalProblem[],
  options: { checker?: AnswerChecker; rounds?: 1 | 2; batchSize?: number } = {},
): Promise<TwoTurnReport> {
  const { model, tokenizer } = await loadCheckpoint(checkpoint, { trainable: false });
  try {
    const result = await evaluateSelfCorrection(model, tokenizer, problems, {
      ...selfCorrectionOptions(config),
      ...(options.checker ? { checker: options.checker } : {}),
      ...(options.batchSize ? { batchSize: options.batchSize } : {}),
      rounds: options.rounds ?? 1,
    });
    const v = result.verdicts;
    const correction = correctionMetrics(v.map((r) => r[0]!), v.map((r) => r[1]!));
    return options.rounds === 2
      ? {
        correction,
        intrinsic: twoTurnMetrics(v.map((r) => ({ t1: r[0]!, t1Prime: r[1]!, t2: r[2]! }))),
        result,
      }
      : { correction, result };
  } finally {
    model.dispose();
  }
}
