/**
 * Evaluation of a policy on problems with known answers: n completions per problem (one
 * greedy by default), checked by an answer checker (exact integer by default, the math
 * verifier for benchmarks), summarised as mean accuracy and pass@k.
 *
 * @module
 */
import { fitPrompt } from "../../prompts/fit_prompt.ts";
import type { Transformer } from "../../model/transformer.ts";
import type { Tokenizer } from "../../model/tokenizer.ts";
import { generate } from "../../model/sampling.ts";
import { Rng } from "../../util/rng.ts";
import { formatReward } from "../../verifiers/format_reward.ts";
import { type AnswerChecker, integerChecker } from "../../verifiers/reward.ts";

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
  /** Completions per problem (pass@k needs n ≥ k; use sampling when n > 1). @default 1 */
  n?: number;
  /** Decides whether a completion's answer is right. @default exact integer after `</think>` */
  checker?: AnswerChecker;
  /**
   * Longest prompt in tokens, first answers and corrections alike (`prompts.max_prompt_tokens`);
   * 0 = the context minus one. A longer one is handled by `onLongPrompt`. @default 0
   */
  maxPromptTokens?: number;
  /**
   * `reject`: a prompt that does not fit is scored wrong, with the reason, and counted
   * (`unpromptable`, or `overflow` for a correction); `truncate`: its last `maxPromptTokens`
   * tokens are kept, counted in `truncated`. @default "reject"
   */
  onLongPrompt?: "reject" | "truncate";
}

/** Result of {@link evaluatePolicy}. */
export interface EvalResult {
  /** Fraction of completions answered correctly (mean accuracy over problems and samples). */
  accuracy: number;
  /** Fraction of completions in the `<think>…</think>answer` format. */
  formatRate: number;
  /** Mean completion length in tokens. */
  meanLength: number;
  /** Number of problems. */
  count: number;
  /** Completions per problem. */
  n: number;
  /**
   * Problems that could not be given to the policy (a character outside the tokenizer's
   * alphabet, or a prompt longer than `maxPromptTokens` with `onLongPrompt: reject`): scored
   * wrong, reason says why.
   */
  unpromptable: number;
  /** Problems whose prompt was cut to its last `maxPromptTokens` tokens (`onLongPrompt: truncate`). */
  truncated: number;
  /** Problems whose token budget (context − prompt) was below `maxNewTokens`. */
  shortBudget: number;
  /** Per problem and sample (problem-major): the completion, parsed answer and verdict. */
  samples: {
    id: string;
    sample: number;
    completion: string;
    parsed: string | null;
    correct: boolean;
    reason: string;
  }[];
}

/** Sampling options of an evaluation: stop at `<|im_end|>` or end of text. */
function generateOptions(tokenizer: Tokenizer, options: EvaluateOptions, rng: Rng) {
  return {
    maxNewTokens: options.maxNewTokens ?? 48,
    greedy: options.greedy ?? true,
    temperature: options.temperature ?? 1,
    stopIds: tokenizer.stopIds,
    padId: tokenizer.padId,
    rng,
  };
}

/** Generates `n` completions per problem and checks them. */
export async function evaluatePolicy(
  model: Transformer,
  tokenizer: Tokenizer,
  problems: readonly EvalProblem[],
  options: EvaluateOptions,
): Promise<EvalResult> {
  const batchSize = options.batchSize ?? 100;
  const n = options.n ?? 1;
  const checker = options.checker ?? integerChecker;
  const rng = new Rng(options.seed ?? 0);
  const ctx = model.config.max_position_embeddings;
  const maxPrompt = options.maxPromptTokens || ctx - 1;
  const maxNew = options.maxNewTokens ?? 48;
  const samples: EvalResult["samples"] = [];
  let correct = 0, formatted = 0, tokens = 0, unpromptable = 0, truncated = 0, shortBudget = 0;
  // Rows are (problem, sample) pairs, problem-major.
  const rows = problems.flatMap((p) => Array.from({ length: n }, (_, s) => ({ p, s })));
  for (let i = 0; i < rows.length; i += batchSize) {
    const chunk = rows.slice(i, i + batchSize);
    const prompts: (number[] | string)[] = chunk.map(({ p, s }) => {
      const ids = encodePrompt(tokenizer, options.renderPrompt(p.question));
      if (typeof ids === "string") return ids;
      const fit = fitPrompt(ids, maxPrompt, options.onLongPrompt);
      if (fit === undefined) {
        return options.maxPromptTokens
          ? `prompt of ${ids.length} tokens is longer than prompts.max_prompt_tokens (${maxPrompt})`
          : `prompt of ${ids.length} tokens does not fit the context of ${ctx}`;
      }
      if (s === 0 && fit.truncated) truncated++;
      if (s === 0 && ctx - fit.ids.length < maxNew) shortBudget++;
      return [...fit.ids];
    });
    const runnable = prompts.filter((q): q is number[] => typeof q !== "string");
    const gens = await generate(model, runnable, generateOptions(tokenizer, options, rng));
    const texts = gens.map((g) => tokenizer.decode(g.tokens, { skipSpecialTokens: true }));
    const verdicts = await Promise.all(
      texts.map((text, k) => checker(text, String(chunk[runIndex(prompts, k)]!.p.answer))),
    );
    let k = 0;
    chunk.forEach(({ p, s }, j) => {
      const prompt = prompts[j]!;
      if (typeof prompt === "string") {
        if (s === 0) unpromptable++;
        samples.push({
          id: p.id,
          sample: s,
          completion: "",
          parsed: null,
          correct: false,
          reason: prompt,
        });
        return;
      }
      const verdict = verdicts[k]!, completion = texts[k]!;
      tokens += gens[k]!.tokens.length;
      k++;
      if (verdict.correct) correct++;
      formatted += formatReward(completion);
      samples.push({
        id: p.id,
        sample: s,
        completion,
        parsed: verdict.parsed,
        correct: verdict.correct,
        reason: verdict.reason,
      });
    });
  }
  const total = Math.max(1, rows.length);
  return {
    accuracy: correct / total,
    formatRate: formatted / total,
    meanLength: tokens / total,
    count: problems.length,
    n,
    unpromptable,
    truncated,
    shortBudget,
    samples,
  };
}

/** Index in `prompts` of the k-th runnable (non-string) prompt. */
function runIndex(prompts: readonly (number[] | string)[], k: number): number {
  let seen = -1;
  for (let j = 0; j < prompts.length; j++) {
    if (typeof prompts[j] !== "string" && ++seen === k) return j;
  }
  throw new RangeError(`Cannot find runnable prompt: current value is ${k}`);
}

/** The prompt's ids, or why it cannot be encoded. */
function encodePrompt(tokenizer: Tokenizer, text: string): number[] | string {
  try {
    return tokenizer.encode(text);
  } catch (e) {
    return `prompt not encodable: ${(e as Error).message}`;
  }
}

/** Options of {@link evaluateSelfCorrection}. */
export interface SelfCorrectionOptions extends EvaluateOptions {
  /**
   * Builds a correction query from the question, the assistant text so far and a guide
   * phrase: the prompt text to continue, and the assistant text it holds (the text the next
   * round's continuation is appended to), e.g. with `buildLayer2Prompt` and `layer2Assistant`.
   */
  buildCorrection: (
    question: string,
    assistantText: string,
    phrase: string,
  ) => { prompt: string; assistant: string };
  /** Guide phrases; one is drawn per problem and round, in problem order, with the seeded RNG. */
  phrases: readonly string[];
  /**
   * Correction rounds after the first answer: 1 gives the first answer and one guided
   * correction; 2 adds a second correction of the corrected text (the paper's intrinsic
   * baseline). @default 1
   */
  rounds?: 1 | 2;
  /** Most new tokens of each correction round. @default maxNewTokens */
  correctionMaxNewTokens?: number;
}

/**
 * The seeded stream the guide phrases of {@linkcode evaluateSelfCorrection} are drawn from:
 * one phrase per problem and round, in problem order ({@linkcode correctionQuery} draws
 * them). Training's own held-out evaluation draws from the same stream, so its figures after
 * one correction equal `deno task eval --two-turn --rounds 1` on the same problems.
 */
export function correctionPhraseStream(seed: number): Rng {
  return new Rng(seed).fork("self-correction");
}

/** One correction query of {@linkcode correctionQuery}. */
export interface CorrectionQuery {
  /** p_guide, the phrase drawn for it. */
  phrase: string;
  /** The prompt text to continue (q'_i). */
  prompt: string;
  /** The assistant text the prompt holds (the next round's continuation is appended to it). */
  assistant: string;
  /**
   * The prompt's ids, fitted to `maxPromptTokens`; absent when the prompt was rejected (too
   * long with `onLongPrompt: reject`, empty, or not encodable): it is not generated from and
   * scores as wrong.
   */
  ids?: readonly number[];
  /** Whether `ids` were cut to their last `maxPromptTokens` tokens (`onLongPrompt: truncate`). */
  truncated: boolean;
}

/**
 * One problem's correction query in {@linkcode evaluateSelfCorrection}: the next guide phrase
 * from `rng` (the stream of {@linkcode correctionPhraseStream}), the prompt that
 * `buildCorrection` makes of the question, the assistant text so far and that phrase, and its
 * ids within `maxPromptTokens` by the rule of `onLongPrompt`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { correctionPhraseStream, correctionQuery } from "./evaluate.ts";
 * import { CharTokenizer } from "../../model/char_tokenizer.ts";
 *
 * const query = correctionQuery(new CharTokenizer(), "1+1?", "2", correctionPhraseStream(0), {
 *   buildCorrection: (q, text, phrase) => ({ prompt: `${q} ${text} ${phrase}`, assistant: text }),
 *   phrases: ["Check."],
 *   maxPromptTokens: 100,
 * });
 * assert.equal(query.prompt, "1+1? 2 Check.");
 * assert.equal(query.ids?.length, 13);
 * ```
 */
export function correctionQuery(
  tokenizer: Tokenizer,
  question: string,
  assistantText: string,
  rng: Rng,
  options: Pick<SelfCorrectionOptions, "buildCorrection" | "phrases" | "onLongPrompt"> & {
    /** Longest prompt in tokens (already resolved: no 0). */
    maxPromptTokens: number;
  },
): CorrectionQuery {
  const phrase = rng.pick(options.phrases);
  const built = options.buildCorrection(question, assistantText, phrase);
  const ids = encodePrompt(tokenizer, built.prompt);
  const fit = typeof ids === "string" || ids.length === 0
    ? undefined
    : fitPrompt(ids, options.maxPromptTokens, options.onLongPrompt);
  return {
    phrase,
    prompt: built.prompt,
    assistant: built.assistant,
    ...(fit ? { ids: fit.ids } : {}),
    truncated: fit?.truncated ?? false,
  };
}

/** Per problem: correct after the first answer and after each correction round. */
export interface SelfCorrectionResult {
  /** One row per problem: `[first answer, after correction 1, after correction 2?]`. */
  verdicts: boolean[][];
  /** The completions of every round, per problem. */
  completions: string[][];
  /** The guide phrase of each correction round, per problem (`phrases[i][r]`: round r + 1). */
  phrases: string[][];
  /** Correction prompts that did not fit the context and were rejected (scored wrong). */
  overflow: number;
  /** Correction prompts cut to their last `maxPromptTokens` tokens (`onLongPrompt: truncate`). */
  truncated: number;
  /** Correction rows whose token budget (context − prompt) was below `correctionMaxNewTokens`. */
  shortBudget: number;
  /** The first answers' counts (a rejected one is scored wrong at every round). */
  first: Pick<EvalResult, "unpromptable" | "truncated" | "shortBudget">;
}

/**
 * Guided self-correction evaluation: the policy answers; then, shown its own answer and a
 * guide phrase with the assistant turn left open (Eq. 5, or the appendix form), it continues;
 * a second round (`rounds: 2`) repeats this on the text so far. Each round is scored on what
 * the policy wrote in that round (the answer after its own `</think>`), as the Verifier scores
 * Layer-2 corrections in training. Every row gets its own token budget, and the guide phrases
 * are drawn in problem order from their own stream, so greedy verdicts do not depend on the
 * batch size.
 */
export async function evaluateSelfCorrection(
  model: Transformer,
  tokenizer: Tokenizer,
  problems: readonly EvalProblem[],
  options: SelfCorrectionOptions,
): Promise<SelfCorrectionResult> {
  const phraseRng = correctionPhraseStream(options.seed ?? 0);
  const sampleRng = new Rng(options.seed ?? 0).fork("self-correction-sampling");
  const rounds = options.rounds ?? 1;
  const checker = options.checker ?? integerChecker;
  const ctx = model.config.max_position_embeddings;
  const maxPrompt = options.maxPromptTokens || ctx - 1;
  const maxNew = options.correctionMaxNewTokens ?? options.maxNewTokens ?? 48;
  const first = await evaluatePolicy(model, tokenizer, problems, { ...options, n: 1 });
  const completions = first.samples.map((s) => [s.completion]);
  const correct = first.samples.map((s) => [s.correct]);
  const assistant = first.samples.map((s) => s.completion);
  const phrases: string[][] = problems.map(() => []);
  const batchSize = options.batchSize ?? 100;
  let overflow = 0, truncated = 0, shortBudget = 0;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < problems.length; i += batchSize) {
      const chunk = problems.slice(i, i + batchSize);
      const prompts: (readonly number[] | undefined)[] = [];
      const held: string[] = [];
      chunk.forEach((p, j) => {
        const query = correctionQuery(tokenizer, p.question, assistant[i + j]!, phraseRng, {
          ...options,
          maxPromptTokens: maxPrompt,
        });
        held.push(query.assistant);
        phrases[i + j]!.push(query.phrase);
        if (query.truncated) truncated++;
        prompts.push(query.ids);
      });
      const runnable = prompts.filter((p): p is readonly number[] => p !== undefined);
      shortBudget += runnable.filter((p) => ctx - p.length < maxNew).length;
      const gens = await generate(
        model,
        runnable,
        generateOptions(tokenizer, { ...options, maxNewTokens: maxNew }, sampleRng),
      );
      let k = 0;
      const texts = chunk.map((_, j) => {
        const gen = prompts[j] ? gens[k++] : undefined;
        if (!gen) overflow++;
        return gen ? tokenizer.decode(gen.tokens, { skipSpecialTokens: true }) : undefined;
      });
      const verdicts = await Promise.all(
        chunk.map((p, j) => {
          const text = texts[j];
          return text === undefined ? undefined : checker(text, String(p.answer));
        }),
      );
      chunk.forEach((_, j) => {
        const text = texts[j] ?? "";
        completions[i + j]!.push(text);
        correct[i + j]!.push(verdicts[j]?.correct ?? false);
        assistant[i + j] = `${held[j]}${text}`;
      });
    }
  }
  const { unpromptable, truncated: firstTruncated, shortBudget: firstShort } = first;
  return {
    verdicts: correct,
    completions,
    phrases,
    overflow,
    truncated,
    shortBudget,
    first: { unpromptable, truncated: firstTruncated, shortBudget: firstShort },
  };
}
