/**
 * The self-correction evaluation of a checkpoint (`deno task eval --two-turn`, `compare`): one
 * greedy answer per held-out problem, then one correction round (or two) of the same policy,
 * with the paired statistics of `algorithms/mgrpo/self_correction.ts`; and the correction
 * queries of training's own held-out evaluation (`eval.correction`), built by the same rule.
 *
 * @module
 */
import type { TrainConfig } from "../algorithms/builtins.ts";
import type { AlgorithmPlugin } from "../algorithms/registry.ts";
import {
  correctionPhraseStream,
  correctionQuery,
  type EvalProblem,
  type EvaluateOptions,
  evaluateSelfCorrection,
  type SelfCorrectionOptions,
  type SelfCorrectionResult,
} from "../algorithms/mgrpo/evaluate.ts";
import type { Query } from "../actors/messages.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { ConfigError } from "../config/load.ts";
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
 * Options of an evaluation from a config: the Layer-1 prompt, the `prompts` section's long-prompt
 * handling and the `eval` section's sampling.
 */
export function evaluateOptions(config: TrainConfig): EvaluateOptions {
  return {
    renderPrompt: promptRenderer(config.prompts),
    maxPromptTokens: config.prompts.max_prompt_tokens,
    onLongPrompt: config.prompts.on_long_prompt,
    maxNewTokens: config.eval.max_new_tokens,
    greedy: config.eval.greedy,
    temperature: config.eval.temperature,
    batchSize: config.eval.batch_size,
    seed: config.run.seed,
  };
}

/**
 * Options of a self-correction evaluation from a config: {@linkcode evaluateOptions}, the
 * Layer-2 query of the `mgrpo` section (Eq. 5 or the appendix form, its system prompt, separator
 * and guide phrases, `layer2_max_new_tokens` for each correction).
 */
export function selfCorrectionOptions(config: TrainConfig): SelfCorrectionOptions {
  const layer2 = {
    systemPrompt: layer2SystemPrompt(config.mgrpo.layer2_system_prompt),
    separator: config.mgrpo.guide_separator,
    position: config.mgrpo.guide_position,
    ...(config.prompts.template === undefined ? {} : { template: config.prompts.template }),
  };
  return {
    ...evaluateOptions(config),
    buildCorrection: (question, text, phrase) => ({
      prompt: buildLayer2Prompt(question, text, phrase, layer2),
      assistant: layer2Assistant(text, phrase, layer2),
    }),
    phrases: config.mgrpo.guide_phrases,
    correctionMaxNewTokens: config.mgrpo.layer2_max_new_tokens ?? config.eval.max_new_tokens,
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

/**
 * Whether a run's own held-out evaluation adds one guided correction (`eval.correction`):
 * `"auto"` is on for MGRPO (`algorithm: mgrpo`, or a plug-in that reads the `mgrpo` section)
 * and off otherwise; `true` and `false` force it.
 *
 * @throws {ConfigError} When it is forced on and the config has no `mgrpo` section (its guide
 * phrases and Layer-2 query are needed), naming `configPath`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TrainConfigSchema } from "../algorithms/builtins.ts";
 * import { correctionEnabled } from "./evaluate.ts";
 *
 * const grpo = TrainConfigSchema.parse({ algorithm: "grpo" });
 * assert.equal(correctionEnabled(grpo, { name: "grpo" }), false);
 * assert.equal(correctionEnabled(TrainConfigSchema.parse({}), { name: "mgrpo" }), true);
 * const forced = { ...grpo, eval: { ...grpo.eval, correction: true as const } };
 * assert.equal(correctionEnabled(forced, { name: "grpo" }), true);
 * ```
 */
export function correctionEnabled(
  config: Pick<TrainConfig, "eval"> & { mgrpo?: TrainConfig["mgrpo"] },
  plugin: Pick<AlgorithmPlugin, "name" | "readsSections">,
  configPath = "configs/tiny-mgrpo.yaml",
): boolean {
  const setting = config.eval.correction;
  const on = setting === "auto"
    ? plugin.name === "mgrpo" || (plugin.readsSections ?? []).includes("mgrpo")
    : setting;
  if (on && config.mgrpo === undefined) {
    throw new ConfigError(configPath, [{
      field: "eval.correction",
      message:
        `field "eval.correction" needs the mgrpo section (its guide phrases and Layer-2 query), which the registry of algorithm "${plugin.name}" does not have: current value is ${
          JSON.stringify(setting)
        }`,
    }]);
  }
  return on;
}

/** What {@linkcode correctionQueries} builds for one evaluation. */
export interface CorrectionQueries {
  /** The correction queries that fit, in problem order (with their guide phrases). */
  queries: Query[];
  /** For each query, the index of the problem it corrects. */
  problemIndex: number[];
  /** Correction prompts rejected by `prompts.on_long_prompt` (scored wrong). */
  overflow: number;
  /** Correction prompts cut to their last `prompts.max_prompt_tokens` tokens. */
  truncated: number;
}

/**
 * The Layer-2 queries of one guided correction of every problem, from its first answer, as
 * {@linkcode evaluateCheckpointTwoTurn} builds them with `rounds: 1`: the guide phrases drawn
 * from `mgrpo.guide_phrases` by the seeded, problem-ordered rule, the Layer-2 query of
 * {@linkcode selfCorrectionOptions}, and `prompts.max_prompt_tokens` (0: the context minus
 * one) with `prompts.on_long_prompt`. Training's own evaluation sends them through its graph's
 * Sampler, so its figures equal `deno task eval --two-turn --rounds 1` on the same problems.
 *
 * @throws {RangeError} When `firstAnswers` and `problems` differ in length.
 */
export function correctionQueries(
  config: TrainConfig,
  problems: readonly EvalProblem[],
  options: {
    /** The first answer to each problem, as the Sampler decodes it. */
    firstAnswers: readonly string[];
    tokenizer: Tokenizer;
    /** The policy's context length in tokens (`max_position_embeddings`). */
    contextLength: number;
  },
): CorrectionQueries {
  if (options.firstAnswers.length !== problems.length) {
    throw new RangeError(
      `Cannot build correction queries: need one first answer per problem (${problems.length}): current value is ${options.firstAnswers.length}`,
    );
  }
  const correction = selfCorrectionOptions(config);
  const rng = correctionPhraseStream(correction.seed ?? 0);
  const out: CorrectionQueries = { queries: [], problemIndex: [], overflow: 0, truncated: 0 };
  problems.forEach((p, i) => {
    const query = correctionQuery(options.tokenizer, p.question, options.firstAnswers[i]!, rng, {
      ...correction,
      maxPromptTokens: correction.maxPromptTokens || options.contextLength - 1,
    });
    if (query.truncated) out.truncated++;
    if (query.ids === undefined) {
      out.overflow++;
      return;
    }
    out.queries.push({
      id: p.id,
      question: p.question,
      answer: p.answer,
      prompt: query.prompt,
      promptIds: [...query.ids],
      guidePhrase: query.phrase,
    });
    out.problemIndex.push(i);
  });
  return out;
}
