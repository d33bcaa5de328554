/**
 * PromptSource: owns the training-data cursor. On `Next` it draws B problems, renders and
 * tokenizes their prompts and asks the Sampler for G completions each; on `Evaluate` it
 * forwards a fixed query set with n = 1.
 *
 * @module
 */
import type { ActorLogic } from "./runtime/mod.ts";
import type {
  Configure,
  Evaluate,
  Generate,
  Next,
  Query,
  Restore,
  SamplingParams,
  Snapshot,
} from "./messages.ts";
import { restoredCount, sendSnapshot } from "./snapshot.ts";
import type { Tokenizer } from "../model/char_tokenizer.ts";
import {
  type ArithmeticOptions,
  type ArithmeticProblem,
  problemStream,
} from "../data/arithmetic.ts";

/** Input of {@link promptSource}. */
export interface PromptSourceInput {
  tokenizer: Tokenizer;
  renderPrompt: (question: string) => string;
  task: Partial<ArithmeticOptions>;
  /** Problem keys never drawn for training (the held-out set). */
  exclude: ReadonlySet<string>;
  seed: number;
  /** B: prompts per step. */
  promptsPerStep: number;
  /** G: completions per prompt. */
  numGenerations: number;
  sampling: SamplingParams;
  /** Problems already consumed (when resuming). @default 0 */
  cursor?: number;
}

/** State of {@link promptSource}. */
export interface PromptSourceState {
  input: PromptSourceInput;
  stream: Generator<ArithmeticProblem, never, unknown>;
  /** Problems drawn so far: the data cursor. */
  cursor: number;
}

/** Renders and tokenizes a problem into a query. */
export function toQuery(
  problem: { id: string; question: string; answer: number | string },
  input: Pick<PromptSourceInput, "tokenizer" | "renderPrompt">,
): Query {
  const prompt = input.renderPrompt(problem.question);
  return {
    id: problem.id,
    question: problem.question,
    answer: problem.answer,
    prompt,
    promptIds: input.tokenizer.encode(prompt),
  };
}

/** The problem stream of a seed, advanced past the first `cursor` problems. */
function streamAt(input: PromptSourceInput, cursor: number) {
  const stream = problemStream(input.seed, { ...input.task, exclude: input.exclude });
  for (let i = 0; i < cursor; i++) stream.next();
  return { stream, cursor };
}

/** The PromptSource actor. */
export const promptSource: ActorLogic<
  PromptSourceState,
  Next | Evaluate | Configure | Snapshot | Restore,
  PromptSourceInput
> = {
  init(input) {
    return { input, ...streamAt(input, input.cursor ?? 0) };
  },
  async handle(state, message, ctx) {
    switch (message.type) {
      case "Snapshot":
        await sendSnapshot(ctx, message.step, { cursor: state.cursor });
        return state;
      case "Restore":
        return { ...state, ...streamAt(state.input, restoredCount(message, ctx.name, "cursor")) };
      case "Next": {
        const queries: Query[] = [];
        for (let i = 0; i < state.input.promptsPerStep; i++) {
          queries.push(toQuery(state.stream.next().value, state.input));
          state.cursor++;
        }
        const generate: Generate = {
          type: "Generate",
          purpose: "train",
          step: message.step,
          label: "train",
          queries,
          n: state.input.numGenerations,
          params: state.input.sampling,
        };
        await ctx.send("sampler", generate);
        return state;
      }
      case "Configure": {
        // Live sampling settings apply from the next step's prompts on.
        const sampling = { ...state.input.sampling };
        if (message.temperature !== undefined) sampling.temperature = message.temperature;
        if (message.topP !== undefined) sampling.topP = message.topP;
        state.input = { ...state.input, sampling };
        return state;
      }
      case "Evaluate": {
        const generate: Generate = {
          type: "Generate",
          purpose: "eval",
          step: 0,
          label: message.label,
          queries: message.queries,
          n: 1,
          params: message.params,
          ...(message.batchSize ? { batchSize: message.batchSize } : {}),
        };
        await ctx.send("sampler", generate);
        return state;
      }
      default:
        throw new TypeError(`Unknown message type: "${(message as { type: string }).type}"`);
    }
  },
};
