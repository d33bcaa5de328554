/**
 * PromptSource: owns the training-data cursor. On `Next` it draws B problems, renders and
 * tokenizes their prompts and asks the Sampler for G completions each; on `Evaluate` it
 * forwards a fixed query set with n = 1.
 *
 * @module
 */
import { fitPrompt } from "../prompts/fit_prompt.ts";
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
import type { Tokenizer } from "../model/tokenizer.ts";
import { type ArithmeticOptions, problemStream } from "../data/arithmetic.ts";
import { datasetStream } from "../data/jsonl_dataset.ts";

/** A training problem: what the PromptSource renders into a query. */
export interface SourceProblem {
  id: string;
  question: string;
  answer: number | string;
}

/** Consecutive rejected problems after which the PromptSource gives up. */
const MAX_REJECTED_IN_A_ROW = 10_000;

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
  /**
   * Problems already consumed (when resuming). The PromptSource also records it here after
   * each `Next` and `Restore`, with the counts below, so a restarted PromptSource
   * (`runtime.max_restarts`) draws the redelivered step's problems again. @default 0
   */
  cursor?: number;
  /** Problems rejected so far (see `onLongPrompt`). @default 0 */
  rejected?: number;
  /** Prompts truncated so far. @default 0 */
  truncated?: number;
  /**
   * Training problems from a dataset file (`task.kind: jsonl`), streamed in seeded epochs;
   * absent, the arithmetic generator of `task` is used. @default undefined
   */
  dataset?: readonly SourceProblem[];
  /** Longest prompt in tokens. @default Infinity */
  maxPromptTokens?: number;
  /**
   * A longer prompt, or one the tokenizer cannot encode: `"reject"` draws another problem,
   * `"truncate"` keeps the last `maxPromptTokens` tokens (an unencodable one is rejected).
   * @default "reject"
   */
  onLongPrompt?: "reject" | "truncate";
}

/** State of {@link promptSource}. */
export interface PromptSourceState {
  input: PromptSourceInput;
  stream: Generator<SourceProblem, never, unknown>;
  /** Problems drawn so far: the data cursor. */
  cursor: number;
  /** Problems left out for a prompt too long or not encodable, so far. */
  rejected: number;
  /** Prompts cut to `maxPromptTokens`, so far. */
  truncated: number;
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
  if (input.dataset) {
    const kept = input.dataset.filter((p) => !input.exclude.has(p.id));
    return { stream: datasetStream(kept, input.seed, { start: cursor }), cursor };
  }
  const stream = problemStream(input.seed, { ...input.task, exclude: input.exclude });
  for (let i = 0; i < cursor; i++) stream.next();
  return { stream, cursor };
}

/**
 * A problem's query with its prompt held to `maxPromptTokens` by `onLongPrompt`: as it is when
 * it fits, cut to its last tokens with `truncate` (`truncated` says so), `undefined` when
 * rejected or when the tokenizer cannot encode it (a RangeError). The rule the PromptSource
 * draws training prompts by, and `train` its own evaluation's.
 */
export function fittedQuery(
  problem: { id: string; question: string; answer: number | string },
  input: Pick<PromptSourceInput, "tokenizer" | "renderPrompt" | "maxPromptTokens" | "onLongPrompt">,
): { query: Query; truncated: boolean } | undefined {
  let query: Query;
  try {
    query = toQuery(problem, input);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    return undefined; // a character the tokenizer has no token for
  }
  const fit = fitPrompt(query.promptIds, input.maxPromptTokens ?? Infinity, input.onLongPrompt);
  if (!fit) return undefined;
  return fit.truncated
    ? { query: { ...query, promptIds: [...fit.ids] }, truncated: true }
    : { query, truncated: false };
}

/**
 * Draws the next problem whose prompt fits (`maxPromptTokens`, `onLongPrompt`), counting
 * the rejected and truncated ones.
 */
function nextQuery(state: PromptSourceState): Query {
  const { input } = state;
  const max = input.maxPromptTokens ?? Infinity;
  for (let tries = 0; tries < MAX_REJECTED_IN_A_ROW; tries++) {
    const problem = state.stream.next().value;
    state.cursor++;
    const fitted = fittedQuery(problem, input);
    if (!fitted) {
      state.rejected++;
      continue;
    }
    if (fitted.truncated) state.truncated++;
    return fitted.query;
  }
  throw new RangeError(
    `Cannot draw prompts: ${MAX_REJECTED_IN_A_ROW} problems in a row were rejected ` +
      `(longer than ${max} tokens, or not encodable): current value is prompts.max_prompt_tokens ${max}`,
  );
}

/** The PromptSource actor. */
export const promptSource: ActorLogic<
  PromptSourceState,
  Next | Evaluate | Configure | Snapshot | Restore,
  PromptSourceInput
> = {
  accepts: ["Next", "Evaluate", "Configure", "Snapshot", "Restore"],
  init(input) {
    return {
      input,
      ...streamAt(input, input.cursor ?? 0),
      rejected: input.rejected ?? 0,
      truncated: input.truncated ?? 0,
    };
  },
  async handle(state, message, ctx) {
    switch (message.type) {
      case "Snapshot":
        await sendSnapshot(ctx, message.step, {
          cursor: state.cursor,
          rejected_prompts: state.rejected,
          truncated_prompts: state.truncated,
        });
        return state;
      case "Restore": {
        const cursor = restoredCount(message, ctx.name, "cursor");
        const rejected = Number(message.state["rejected_prompts"] ?? 0);
        const truncated = Number(message.state["truncated_prompts"] ?? 0);
        Object.assign(state.input, { cursor, rejected, truncated });
        return { ...state, ...streamAt(state.input, cursor), rejected, truncated };
      }
      case "Next": {
        const queries: Query[] = [];
        for (let i = 0; i < state.input.promptsPerStep; i++) queries.push(nextQuery(state));
        const generate: Generate = {
          type: "Generate",
          purpose: "train",
          step: message.step,
          label: "train",
          queries,
          n: state.input.numGenerations,
          params: state.input.sampling,
        };
        // What a restart starts from: the cursor after the last step that succeeded.
        // (In place: a restart re-runs init on this same input object.)
        const { cursor, rejected, truncated } = state;
        Object.assign(state.input, { cursor, rejected, truncated });
        await ctx.send("sampler", generate);
        return state;
      }
      case "Configure": {
        // Live sampling settings apply from the next step's prompts on.
        const sampling = { ...state.input.sampling };
        const { values } = message;
        if ("sampler.temperature" in values) {
          sampling.temperature = values["sampler.temperature"] as number;
        }
        if ("sampler.top_p" in values) sampling.topP = values["sampler.top_p"] as number;
        state.input.sampling = sampling; // in place, so a restart keeps it
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
