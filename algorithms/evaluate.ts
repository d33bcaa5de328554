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
    const gens = await generate(model, prompts, {
      maxNewTokens: options.maxNewTokens ?? 48,
      greedy: options.greedy ?? true,
      temperature: options.temperature ?? 1,
      stopIds: [tokenizer.imEndId, tokenizer.eosId],
      padId: tokenizer.padId,
      rng,
    });
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
