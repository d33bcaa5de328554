/**
 * The reward-function API: what the Verifier actor runs on every completion.
 *
 * Two parts, as in TRL's `GRPOTrainer(reward_funcs=[...], reward_weights=[...])`:
 *
 * - one **answer checker** decides whether the final answer is right (`correct`, the parsed
 *   answer and a reason). Accuracy, pass@k and MGRPO's correction outcomes read it. Built in:
 *   `integer` (exact integer after `</think>`) and `math` (the math verifier, in Workers with
 *   a time limit);
 * - one or more **reward functions**, each `(sample) => number | null` (sync or async), summed
 *   with weights into the scalar reward the advantages are computed from. Built in: `correct`
 *   (1 when the checker says right, else 0) and `format` (the Table 1 structure).
 *
 * `null` means "this function has no opinion on this sample". The reward is the weighted sum
 * over the functions that returned a number (TRL's `nansum`); a sample on which EVERY function
 * returned `null` is skipped: its reward is `null`, it is left out of its group's mean and std
 * and out of the loss. A function that returns a non-finite number or throws fails the run
 * with a message that names it: a silently wrong reward is worse than a stopped run.
 *
 * @example A reward function and a registry
 * ```ts
 * import assert from "node:assert/strict";
 * import { createScorer, defaultRewardRegistry, integerChecker } from "./reward.ts";
 *
 * const registry = defaultRewardRegistry().register(
 *   "short",
 *   (sample) => (sample.completion.length < 30 ? 1 : 0),
 * );
 * const score = createScorer(integerChecker, [
 *   { name: "correct", fn: registry.get("correct"), weight: 1 },
 *   { name: "short", fn: registry.get("short"), weight: 0.5 },
 * ]);
 * const [verdict] = await score([
 *   { prompt: "2+3?", completion: "<think>2+3=5</think>5", answer: "5", metadata: {} },
 * ]);
 * assert.equal(verdict!.reward, 1.5);
 * assert.deepEqual(verdict!.components, { correct: 1, short: 1 });
 * ```
 *
 * @module
 */
import type { Verdict } from "./verdict.ts";
import { verifyIntegerAnswer } from "./integer_answer.ts";
import { formatReward } from "./format_reward.ts";

/** What a reward function sees of one completion. */
export interface RewardSample {
  /** The rendered prompt text the policy was given (chat template applied). */
  prompt: string;
  /** The completion text whose final answer is scored. */
  completion: string;
  /** The reference answer, as a string. */
  answer: string;
  /**
   * Everything else: `id` (problem id), `purpose` (`"train"` or `"eval"`), `label`, and, set by
   * the scorer before any reward function runs, `correct` (boolean) and `parsed` (the
   * answer checker's reading, or `null`).
   */
  metadata: Record<string, unknown>;
}

/** A reward function: a number, or `null` to abstain on this sample. May be async. */
export type RewardFunction = (sample: RewardSample) => number | null | Promise<number | null>;

/** The answer checker's view of one completion (the reward is filled in by the scorer). */
export type AnswerVerdict = Omit<Verdict, "reward" | "components">;

/** Decides whether a completion's final answer equals the reference. May be async. */
export type AnswerChecker = (
  completion: string,
  answer: string,
) => AnswerVerdict | Promise<AnswerVerdict>;

/** Scores a batch of samples: one verdict per sample, in order. */
export type Scorer = (samples: readonly RewardSample[]) => Promise<Verdict[]>;

/** A reward function with its name (for metrics and messages) and its weight. */
export interface WeightedReward {
  /** Name, used as the metric key `rewards/<name>/mean`. */
  name: string;
  /** The function. */
  fn: RewardFunction;
  /** Its weight in the sum. */
  weight: number;
}

/** The exact-integer checker of the synthetic task ({@linkcode verifyIntegerAnswer}). */
export const integerChecker: AnswerChecker = (completion, answer) => {
  const { correct, parsed, reason } = verifyIntegerAnswer(completion, answer);
  return { correct, parsed, reason };
};

/** Built-in `correct`: 1 when the answer checker said right, else 0. */
export const correctReward: RewardFunction = (sample) => (sample.metadata.correct === true ? 1 : 0);

/** Built-in `format`: 1 when the completion has the Table 1 structure, else 0. */
export const formatRewardFunction: RewardFunction = (sample) => formatReward(sample.completion);

/**
 * Named reward functions. `register` returns the registry so calls chain; a name can be
 * registered once.
 */
export class RewardRegistry {
  #functions = new Map<string, RewardFunction>();

  /**
   * Adds `fn` under `name`.
   *
   * @throws {RangeError} When the name is empty or already taken.
   */
  register(name: string, fn: RewardFunction): this {
    if (name === "") {
      throw new RangeError("Cannot register reward function: the name must not be empty");
    }
    if (this.#functions.has(name)) {
      throw new RangeError(
        `Cannot register reward function "${name}": the name is taken: known names are ${this.#known()}`,
      );
    }
    this.#functions.set(name, fn);
    return this;
  }

  /** Whether `name` is registered. */
  has(name: string): boolean {
    return this.#functions.has(name);
  }

  /**
   * The function registered under `name`.
   *
   * @throws {RangeError} When it is not registered; the message lists the known names.
   */
  get(name: string): RewardFunction {
    const fn = this.#functions.get(name);
    if (fn === undefined) {
      throw new RangeError(
        `Unknown reward function "${name}": known names are ${this.#known()}`,
      );
    }
    return fn;
  }

  /** The registered names, in registration order. */
  names(): string[] {
    return [...this.#functions.keys()];
  }

  #known(): string {
    return this.names().map((n) => `"${n}"`).join(", ");
  }
}

/** A registry with the built-ins `correct` and `format`. */
export function defaultRewardRegistry(): RewardRegistry {
  return new RewardRegistry()
    .register("correct", correctReward)
    .register("format", formatRewardFunction);
}

/**
 * Builds the scorer the Verifier actor runs: the answer checker on every sample (all at once,
 * so an async checker backed by a Worker pool runs them in parallel), then every reward
 * function, then the weighted sum. Each verdict carries `components`: every function's raw
 * value (or `null`).
 *
 * @throws {RangeError} (from the returned scorer) When a reward function returns something
 * other than a finite number or `null`; the message names the function and the sample.
 * @throws {RangeError} When `rewards` is empty.
 */
export function createScorer(checker: AnswerChecker, rewards: readonly WeightedReward[]): Scorer {
  if (rewards.length === 0) {
    throw new RangeError("Cannot create scorer: at least one reward function is needed");
  }
  return async (samples) => {
    const checked = await Promise.all(samples.map((s) => checker(s.completion, s.answer)));
    const withVerdicts = samples.map((s, i) => ({
      ...s,
      metadata: { ...s.metadata, correct: checked[i]!.correct, parsed: checked[i]!.parsed },
    }));
    const values = await Promise.all(
      rewards.map((r) => Promise.all(withVerdicts.map((s) => callReward(r, s)))),
    );
    return withVerdicts.map((_, i) => {
      const components: Record<string, number | null> = {};
      let sum = 0, any = false;
      rewards.forEach((r, k) => {
        const v = values[k]![i]!;
        components[r.name] = v;
        if (v !== null) {
          sum += r.weight * v;
          any = true;
        }
      });
      return { ...checked[i]!, reward: any ? sum : null, components };
    });
  };
}

async function callReward(r: WeightedReward, sample: RewardSample): Promise<number | null> {
  let value: unknown;
  try {
    value = await r.fn(sample);
  } catch (cause) {
    throw new Error(
      `Reward function "${r.name}" failed on sample "${sample.metadata.id ?? "?"}": ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
  }
  if (value === null) return null;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new RangeError(
      `Reward function "${r.name}" must return a finite number or null: current value is ${
        typeof value === "string" ? JSON.stringify(value) : String(value)
      } on sample "${sample.metadata.id ?? "?"}"`,
    );
  }
  return value;
}
