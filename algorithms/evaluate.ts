/**
 * Evaluation of a policy on problems with known integer answers: one completion per problem
 * (greedy by default), verified, summarised as accuracy.
 *
 * @module
 */
import type { Transformer } from "../model/transformer.ts";
import type { CharTokenizer } from "../model/char_tokenizer.ts";
import { generate } from "../model/sampling.ts";
import { Rng } from "../data/rng.ts";
import { formatReward, verifyIntegerAnswer } from "../verifiers/integer_answer.ts";

/** A problem to evaluate on. */
export interface EvalProblem {
  id: string;
  question: string;
  answer: number | string;
}

/** Options of {@link evaluatePolicy}. */
export interface EvaluateOptions {
  /** Renders a question into the prompt text. */
  renderPrompt: (question: string) => string;
  /** Most new tokens per completion. @default 48 */
  maxNewTokens?: number;
  /** Greedy decoding. @default true */
  greedy?: boolean;
  /** Temperature when not greedy. @default 1 */
  temperature?: number;
  /** Problems per generation batch. @default 100 */
  batchSize?: number;
  /** Seed of the sampling RNG when not greedy. @default 0 */
  seed?: number;
}

/** Result of {@link evaluatePolicy}. */
export interface EvalResult {
  /** Fraction of problems answered correctly. */
  accuracy: number;
  /** Fraction of completions in the `<think>…</think>answer` format. */
  formatRate: number;
  /** Mean completion length in tokens. */
  meanLength: number;
  /** Number of problems. */
  count: number;
  /** Per problem: the completion text, parsed answer and verdict. */
  samples: {
    id: string;
    completion: string;
    parsed: string | null;
    correct: boolean;
    reason: string;
  }[];
}

/** Sampling options of an evaluation: stop at `<|im_end|>` or end of text. */
function generateOptions(tokenizer: CharTokenizer, options: EvaluateOptions, rng: Rng) {
  return {
    maxNewTokens: options.maxNewTokens ?? 48,
    greedy: options.greedy ?? true,
    temperature: options.temperature ?? 1,
    stopIds: [tokenizer.imEndId, tokenizer.eosId],
    padId: tokenizer.padId,
    rng,
  };
}

/** Generates one completion per problem and verifies it. */
export async function evaluatePolicy(
  model: Transformer,
  tokenizer: CharTokenizer,
  problems: readonly EvalProblem[],
  options: EvaluateOptions,
): Promise<EvalResult> {
  const batchSize = options.batchSize ?? 100;
  const rng = new Rng(options.seed ?? 0);
  const samples: EvalResult["samples"] = [];
  let correct = 0, formatted = 0, tokens = 0;
  for (let i = 0; i < problems.length; i += batchSize) {
    const chunk = problems.slice(i, i + batchSize);
    const prompts = chunk.map((p) => tokenizer.encode(options.renderPrompt(p.question)));
    const gens = await generate(model, prompts, generateOptions(tokenizer, options, rng));
    chunk.forEach((p, j) => {
      const g = gens[j]!;
      const completion = tokenizer.decode(g.tokens, { skipSpecialTokens: true });
      const verdict = verifyIntegerAnswer(completion, p.answer);
      if (verdict.correct) correct++;
      formatted += formatReward(completion);
      tokens += g.tokens.length;
      samples.push({
        id: p.id,
        completion,
        parsed: verdict.parsed,
        correct: verdict.correct,
        reason: verdict.reason,
      });
    });
  }
  const n = Math.max(1, problems.length);
  return {
    accuracy: correct / n,
    formatRate: formatted / n,
    meanLength: tokens / n,
    count: problems.length,
    samples,
  };
}

/** Options of {@link evaluateSelfCorrection}. */
export interface SelfCorrectionOptions extends EvaluateOptions {
  /**
   * Renders the correction prompt: the question, the assistant text so far and a guide
   * phrase (Eq. 5, e.g. `buildLayer2Prompt`).
   */
  renderCorrection: (question: string, assistantText: string, phrase: string) => string;
  /** Guide phrases; one is drawn per problem and round with the seeded RNG. */
  phrases: readonly string[];
  /** Text between the assistant text and the phrase. @default "\n" */
  separator?: string;
  /** Correction rounds after the first answer: 1 gives t1 and t1', 2 adds t2. @default 2 */
  rounds?: 1 | 2;
}

/** Per problem: correct after the first answer and after each correction round. */
export interface SelfCorrectionResult {
  /** One row per problem: `[t1, t1', t2?]`. */
  verdicts: { t1: boolean; t1Prime: boolean; t2?: boolean }[];
  /** The completions of every round, per problem. */
  completions: string[][];
  /** Correction prompts that did not fit the model's context (counted as wrong). */
  overflow: number;
}

/**
 * Two-turn (solve → self-correct) evaluation, the protocol of the paper's Table 2 and of
 * its intrinsic self-correction baseline: the policy answers; then, shown its own answer and
 * a guide phrase with the assistant turn left open, it continues; a second round repeats this
 * on the text so far. Each round is scored on what the policy wrote in that round (the answer
 * after its last `</think>`), as the Verifier scores Layer-2 corrections in training.
 */
export async function evaluateSelfCorrection(
  model: Transformer,
  tokenizer: CharTokenizer,
  problems: readonly EvalProblem[],
  options: SelfCorrectionOptions,
): Promise<SelfCorrectionResult> {
  const rng = new Rng(options.seed ?? 0).fork("self-correction");
  const separator = options.separator ?? "\n";
  const rounds = options.rounds ?? 2;
  const first = await evaluatePolicy(model, tokenizer, problems, options);
  const completions = first.samples.map((s) => [s.completion]);
  const correct = first.samples.map((s) => [s.correct]);
  const assistant = first.samples.map((s) => s.completion);
  const batchSize = options.batchSize ?? 100;
  let overflow = 0;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < problems.length; i += batchSize) {
      const chunk = problems.slice(i, i + batchSize);
      const prompts: number[][] = [];
      const prefixes: string[] = [];
      chunk.forEach((p, j) => {
        const phrase = rng.pick(options.phrases);
        const prefix = assistant[i + j]!;
        prefixes.push(`${prefix}${separator}${phrase}`);
        prompts.push(tokenizer.encode(options.renderCorrection(p.question, prefix, phrase)));
      });
      // A prompt that leaves no room in the context cannot be continued: counted as wrong.
      const limit = model.config.max_position_embeddings - 1;
      const fits = prompts.map((p) => p.length < limit);
      const gens = await generate(
        model,
        prompts.filter((_, j) => fits[j]),
        generateOptions(tokenizer, options, rng),
      );
      let k = 0;
      chunk.forEach((p, j) => {
        const gen = fits[j] ? gens[k++] : undefined;
        if (!gen) overflow++;
        const text = gen ? tokenizer.decode(gen.tokens, { skipSpecialTokens: true }) : "";
        completions[i + j]!.push(text);
        correct[i + j]!.push(gen ? verifyIntegerAnswer(text, p.answer).correct : false);
        assistant[i + j] = `${prefixes[j]}${text}`;
      });
    }
  }
  return {
    verdicts: correct.map((c) => ({
      t1: c[0]!,
      t1Prime: c[1]!,
      ...(rounds === 2 ? { t2: c[2]! } : {}),
    })),
    completions,
    overflow,
  };
}
