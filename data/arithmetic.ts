/**
 * Synthetic multi-step arithmetic word problems with integer answers: the
 * embedded training task. Problems are short (a tiny model reads them one
 * character at a time), templated, seeded and reproducible.
 *
 * ```
 * Ann has 7 pens. She buys 5. She loses 3. How many pens now?
 * <think>7+5=12 12-3=9</think>9
 * ```
 *
 * @module
 */

import { Rng } from "../util/rng.ts";

/** One operation of a problem, applied to the running quantity. */
export interface ArithmeticStep {
  /** The operation. */
  op: "+" | "-" | "*";
  /** The number it applies. */
  operand: number;
  /** Quantity before the step. */
  before: number;
  /** Quantity after the step. */
  after: number;
}

/** A word problem and its solution trace. */
export interface ArithmeticProblem {
  /**
   * Stable id derived from the question text: `arith-` and 8 hex digits
   * (identical questions share an id).
   */
  id: string;
  /** The word problem. */
  question: string;
  /** The final quantity. */
  answer: number;
  /** The starting quantity, then one entry per operation. */
  steps: ArithmeticStep[];
}

/** Difficulty knobs of the generator. */
export interface ArithmeticOptions {
  /** Fewest operations after the starting quantity (≥ 1). */
  minSteps: number;
  /** Most operations after the starting quantity (≥ minSteps). */
  maxSteps: number;
  /** Largest starting quantity and largest added or subtracted number (≥ 1). */
  maxOperand: number;
  /** Largest value any intermediate quantity may reach (≥ maxOperand). */
  maxValue: number;
  /** Allow "doubles" / "triples" steps (multiply by 2 or 3). */
  allowMultiply: boolean;
}

/**
 * Default difficulty for the tiny embedded model: 2–3 additions or
 * subtractions with numbers up to 20, every quantity at most 99. Measured
 * over 20,000 problems: questions average 67 characters (at most 81); worked
 * solutions average 34.5 characters (at most 43), which is 21.5 tokens (at
 * most 30) for character tokenizers where `<think>` and
 * `</think>` are one token each.
 */
export const DEFAULT_ARITHMETIC: Readonly<ArithmeticOptions> = Object.freeze({
  minSteps: 2,
  maxSteps: 3,
  maxOperand: 20,
  maxValue: 99,
  allowMultiply: false,
});

/** Seed of the held-out stream; training code should never use it directly. */
export const HELDOUT_SEED = 0x6d677270; // "mgrp"

const NAMES: readonly (readonly [string, string])[] = [
  ["Ann", "She"],
  ["Bob", "He"],
  ["Eva", "She"],
  ["Tom", "He"],
  ["Mia", "She"],
  ["Sam", "He"],
  ["Zoe", "She"],
  ["Max", "He"],
  ["Ivy", "She"],
  ["Leo", "He"],
];

const OBJECTS: readonly (readonly [string, string])[] = [
  ["pen", "pens"],
  ["cup", "cups"],
  ["egg", "eggs"],
  ["card", "cards"],
  ["coin", "coins"],
  ["book", "books"],
  ["toy", "toys"],
  ["shell", "shells"],
  ["bead", "beads"],
  ["ball", "balls"],
];

const ADD_VERBS: readonly string[] = ["buys", "gets", "finds", "wins"];
const SUB_VERBS: readonly string[] = ["loses", "sells", "uses", "drops"];

function validateOptions(options: ArithmeticOptions): void {
  const { minSteps, maxSteps, maxOperand, maxValue } = options;
  const check = (ok: boolean, field: string, rule: string, value: unknown) => {
    if (!ok) {
      throw new RangeError(
        `Cannot generate arithmetic problems: field "${field}" must be ${rule}: current value is ${value}`,
      );
    }
  };
  check(Number.isInteger(minSteps) && minSteps >= 1, "minSteps", "an integer >= 1", minSteps);
  check(
    Number.isInteger(maxSteps) && maxSteps >= minSteps,
    "maxSteps",
    `an integer >= minSteps (${minSteps})`,
    maxSteps,
  );
  check(
    Number.isInteger(maxOperand) && maxOperand >= 1,
    "maxOperand",
    "an integer >= 1",
    maxOperand,
  );
  check(
    Number.isSafeInteger(maxValue) && maxValue >= maxOperand,
    "maxValue",
    `an integer >= maxOperand (${maxOperand})`,
    maxValue,
  );
}

function resolveOptions(options: Partial<ArithmeticOptions>): ArithmeticOptions {
  const resolved: ArithmeticOptions = { ...DEFAULT_ARITHMETIC };
  for (const key of Object.keys(options) as (keyof ArithmeticOptions)[]) {
    const value = options[key];
    if (value !== undefined) (resolved as unknown as Record<string, unknown>)[key] = value;
  }
  validateOptions(resolved);
  return resolved;
}

function hash32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function apply(op: ArithmeticStep["op"], before: number, operand: number): number {
  switch (op) {
    case "+":
      return before + operand;
    case "-":
      return before - operand;
    case "*":
      return before * operand;
    default:
      throw new RangeError(`Unknown arithmetic operation: current value is ${JSON.stringify(op)}`);
  }
}

/**
 * Draws one problem from `rng` (advancing it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Rng } from "../util/rng.ts";
 * import { generateProblem } from "./arithmetic.ts";
 *
 * const p = generateProblem(new Rng(1), { minSteps: 2, maxSteps: 2 });
 * assert.equal(p.steps.length, 2);
 * assert.equal(p.answer, p.steps[1]!.after);
 * ```
 */
export function generateProblem(
  rng: Rng,
  options: Partial<ArithmeticOptions> = {},
): ArithmeticProblem {
  const { minSteps, maxSteps, maxOperand, maxValue, allowMultiply } = resolveOptions(options);
  const [name, pronoun] = rng.pick(NAMES);
  const [singular, plural] = rng.pick(OBJECTS);
  const start = rng.int(1, maxOperand);
  const stepCount = rng.int(minSteps, maxSteps);

  const sentences = [`${name} has ${start} ${start === 1 ? singular : plural}.`];
  const steps: ArithmeticStep[] = [];
  let value = start;
  for (let i = 0; i < stepCount; i++) {
    const ops: ArithmeticStep["op"][] = [];
    if (value < maxValue) ops.push("+");
    if (value >= 1) ops.push("-");
    if (allowMultiply && value >= 2 && value * 2 <= maxValue) ops.push("*");
    const op = rng.pick(ops);
    let operand: number;
    switch (op) {
      case "+":
        operand = rng.int(1, Math.min(maxOperand, maxValue - value));
        sentences.push(`${pronoun} ${rng.pick(ADD_VERBS)} ${operand}.`);
        break;
      case "-":
        operand = rng.int(1, Math.min(maxOperand, value));
        sentences.push(`${pronoun} ${rng.pick(SUB_VERBS)} ${operand}.`);
        break;
      case "*":
        operand = value * 3 <= maxValue ? rng.int(2, 3) : 2;
        sentences.push(`${pronoun} ${operand === 2 ? "doubles" : "triples"} them.`);
        break;
    }
    const after = apply(op, value, operand);
    steps.push({ op, operand, before: value, after });
    value = after;
  }
  sentences.push(`How many ${plural} now?`);
  const question = sentences.join(" ");
  return {
    id: `arith-${hash32(question).toString(16).padStart(8, "0")}`,
    question,
    answer: value,
    steps,
  };
}

/** Options of {@linkcode makeProblems} and {@linkcode problemStream}. */
export interface MakeProblemsOptions extends Partial<ArithmeticOptions> {
  /**
   * Problem keys ({@linkcode problemKey}) to skip, e.g. the held-out set's.
   *
   * @default {undefined}
   */
  exclude?: ReadonlySet<string>;
}

/**
 * An endless, deterministic stream of problems for a seed. Taking `n` items
 * always yields the first `n` items of any longer take.
 */
export function* problemStream(
  seed: number,
  options: MakeProblemsOptions = {},
): Generator<ArithmeticProblem, never, unknown> {
  const { exclude, ...knobs } = options;
  resolveOptions(knobs);
  const rng = new Rng(seed);
  let skipped = 0;
  while (true) {
    const problem = generateProblem(rng, knobs);
    if (exclude !== undefined && exclude.has(problemKey(problem))) {
      if (++skipped > 100_000) {
        throw new RangeError(
          `Cannot make problems: "exclude" rules out nearly every problem of this difficulty: current value is ${exclude.size} keys`,
        );
      }
      continue;
    }
    skipped = 0;
    yield problem;
  }
}

/**
 * Returns `count` problems for a training seed, deterministic and
 * prefix-stable (the first 10 of 100 equal the 10 of a run asking for 10).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { makeProblems } from "./arithmetic.ts";
 *
 * assert.deepEqual(makeProblems(7, 3), makeProblems(7, 3));
 * ```
 */
export function makeProblems(
  seed: number,
  count: number,
  options: MakeProblemsOptions = {},
): ArithmeticProblem[] {
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(
      `Cannot make problems: count must be an integer >= 0: current value is ${count}`,
    );
  }
  const problems: ArithmeticProblem[] = [];
  if (count === 0) return problems;
  for (const problem of problemStream(seed, options)) {
    problems.push(problem);
    if (problems.length === count) break;
  }
  return problems;
}

/**
 * The held-out evaluation set: `count` problems with distinct keys, drawn from
 * `new Rng(HELDOUT_SEED).fork("heldout")`, a stream unrelated to any
 * `new Rng(seed)` used for training. Stable across releases as long as the
 * generator is unchanged; it depends on `options`, so evaluate with the
 * difficulty the model trains on. The same math can still come up by chance in a
 * training stream; pass `new Set(heldOutProblems(n).map(problemKey))` as
 * `exclude` to {@linkcode makeProblems} to rule that out.
 */
export function heldOutProblems(
  count = 200,
  options: Partial<ArithmeticOptions> = {},
): ArithmeticProblem[] {
  return distinctProblems(
    new Rng(HELDOUT_SEED).fork("heldout"),
    count,
    options,
    undefined,
    "held-out",
  );
}

/** `count` problems with distinct keys from `rng`, none of them in `exclude`. */
function distinctProblems(
  rng: Rng,
  count: number,
  options: Partial<ArithmeticOptions>,
  exclude: ReadonlySet<string> | undefined,
  what: string,
): ArithmeticProblem[] {
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(
      `Cannot make ${what} problems: count must be an integer >= 0: current value is ${count}`,
    );
  }
  const seen = new Set<string>();
  const problems: ArithmeticProblem[] = [];
  let attempts = 0;
  while (problems.length < count) {
    if (++attempts > count * 100 + 1000) {
      throw new RangeError(
        `Cannot make ${what} problems: the difficulty allows too few distinct problems: current value is ${count} requested`,
      );
    }
    const problem = generateProblem(rng, options);
    const key = problemKey(problem);
    if (seen.has(key) || exclude?.has(key)) continue;
    seen.add(key);
    problems.push(problem);
  }
  return problems;
}

/** Seed of the dev stream (design choices are made on it, never on the held-out set). */
export const DEV_SEED = 0x64657631; // "dev1"

/**
 * A dev split: the first `count` problems of a stream of their own, drawn exactly like
 * training problems (repeats allowed; `exclude` rules out the held-out keys), from a seed no
 * training run uses by default. Design choices (prompt forms, warm-start recipes) are made on
 * it, so that the held-out set stays unseen. Its math overlaps what training draws, as any
 * sample of the training distribution does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { devProblems, heldOutProblems, problemKey } from "./arithmetic.ts";
 *
 * const exclude = new Set(heldOutProblems(50).map(problemKey));
 * const dev = devProblems(20, { exclude });
 * assert.equal(dev.length, 20);
 * assert.ok(dev.every((p) => !exclude.has(problemKey(p))));
 * ```
 */
export function devProblems(count: number, options: MakeProblemsOptions = {}): ArithmeticProblem[] {
  return makeProblems(DEV_SEED, count, options);
}

/**
 * The unseen dev split: `count` problems with distinct keys, none in `options.exclude` (pass
 * the held-out keys), drawn like the held-out set from a stream of their own
 * (`new Rng(DEV_SEED).fork("unseen")`). Unlike {@linkcode devProblems}, whose math training
 * draws too, these keys are meant to be kept out of training as well (`task.dev_unseen_size`),
 * so that a design choice can be made on math the policy never saw, as the held-out set is
 * scored, without looking at the held-out set.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { devUnseenProblems, heldOutProblems, problemKey } from "./arithmetic.ts";
 *
 * const exclude = new Set(heldOutProblems(50).map(problemKey));
 * const dev = devUnseenProblems(20, { exclude });
 * assert.equal(new Set(dev.map(problemKey)).size, 20);
 * assert.ok(dev.every((p) => !exclude.has(problemKey(p))));
 * ```
 */
export function devUnseenProblems(
  count: number,
  options: MakeProblemsOptions = {},
): ArithmeticProblem[] {
  const { exclude, ...knobs } = options;
  return distinctProblems(new Rng(DEV_SEED).fork("unseen"), count, knobs, exclude, "unseen dev");
}

/**
 * The math of a problem, ignoring names, objects and verbs: the start and the
 * operations, e.g. `"7+5-3"`. Two problems with the same key have the same
 * solution; use it to keep held-out math out of training.
 */
export function problemKey(problem: Pick<ArithmeticProblem, "steps">): string {
  const first = problem.steps[0];
  if (first === undefined) {
    throw new RangeError(
      "Cannot compute problem key: the problem has no steps: current length is 0",
    );
  }
  return `${first.before}` + problem.steps.map((s) => `${s.op}${s.operand}`).join("");
}

/** One step as an equation: `"7+5=12"`. */
export function formatStep(step: ArithmeticStep): string {
  return `${step.before}${step.op}${step.operand}=${step.after}`;
}

/** A chain of steps as space-separated equations: `"7+5=12 12-3=9"`. */
export function formatSteps(steps: readonly ArithmeticStep[]): string {
  return steps.map(formatStep).join(" ");
}

/**
 * The completion format shared by supervised data and the verifier:
 * `<think>` reasoning `</think>` answer, nothing after the answer (the model
 * then emits `<|im_end|>`).
 */
export function formatCompletion(reasoning: string, answer: number | string): string {
  return `<think>${reasoning}</think>${answer}`;
}

/**
 * The correct worked solution: `<think>7+5=12 12-3=9</think>9`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { workedSolution } from "./arithmetic.ts";
 *
 * const steps = [
 *   { op: "+" as const, operand: 5, before: 7, after: 12 },
 *   { op: "-" as const, operand: 3, before: 12, after: 9 },
 * ];
 * assert.equal(workedSolution({ steps, answer: 9 }), "<think>7+5=12 12-3=9</think>9");
 * ```
 */
export function workedSolution(problem: Pick<ArithmeticProblem, "steps" | "answer">): string {
  return formatCompletion(formatSteps(problem.steps), problem.answer);
}

/**
 * The steps with one arithmetic slip: a random step's result is off by 1 or 2
 * and every later step carries the wrong value on consistently, so the final
 * result differs from the answer. Every wrong value stays ≥ 0.
 */
export function slipSteps(
  problem: Pick<ArithmeticProblem, "steps">,
  rng: Rng,
): ArithmeticStep[] {
  const { steps } = problem;
  if (steps.length === 0) {
    throw new RangeError("Cannot add a slip: the problem has no steps: current length is 0");
  }
  const at = rng.int(0, steps.length - 1);
  const deltas = [-2, -1, 1, 2];
  rng.shuffle(deltas);
  for (const delta of deltas) {
    const wrong: ArithmeticStep[] = [];
    let value = steps[0]!.before;
    let valid = true;
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      let after = apply(step.op, value, step.operand);
      if (i === at) after += delta;
      if (after < 0) {
        valid = false;
        break;
      }
      wrong.push({ op: step.op, operand: step.operand, before: value, after });
      value = after;
    }
    // With a positive delta every later value only grows, so this always succeeds.
    if (valid && value !== steps[steps.length - 1]!.after) return wrong;
  }
  throw new RangeError("Cannot add a slip: no valid slip exists: current value is unreachable");
}

/**
 * A solution with one slipped step and a wrong final answer, no correction:
 * `<think>7+5=13 13-3=10</think>10`. Useful as a Layer-1 output to correct.
 */
export function wrongSolution(problem: Pick<ArithmeticProblem, "steps">, rng: Rng): string {
  const wrong = slipSteps(problem, rng);
  return formatCompletion(formatSteps(wrong), wrong[wrong.length - 1]!.after);
}

/**
 * A self-correcting solution for supervised warm-up: the slipped chain, the
 * guiding phrase, then the correct chain and the right answer:
 * `<think>7+5=13 13-3=10 Wait, let me check. 7+5=12 12-3=9</think>9`.
 */
export function correctionSolution(
  problem: Pick<ArithmeticProblem, "steps" | "answer">,
  rng: Rng,
  guidePhrase: string,
): string {
  const wrong = slipSteps(problem, rng);
  const reasoning = `${formatSteps(wrong)} ${guidePhrase} ${formatSteps(problem.steps)}`;
  return formatCompletion(reasoning, problem.answer);
}

/**
 * A self-check that confirms: the correct chain, the guiding phrase, the same chain again and
 * the right answer: `<think>7+5=12 12-3=9 Wait, let me check. 7+5=12 12-3=9</think>9`. Mixed
 * with {@linkcode correctionSolution} so that a phrase does not by itself mean an error.
 */
export function confirmationSolution(
  problem: Pick<ArithmeticProblem, "steps" | "answer">,
  guidePhrase: string,
): string {
  const chain = formatSteps(problem.steps);
  return formatCompletion(`${chain} ${guidePhrase} ${chain}`, problem.answer);
}

/**
 * A Layer-2 continuation that checks o_i's own equations by their inverse before it changes
 * anything: each equation `a op b=c` of the Layer-1 chain is undone (`c inv b=a'`) and marked
 * `ok` when a' is the value it started from; at the first `no` the correct chain is written from
 * that step on, by `redo` of the steps still to do (the chain, {@linkcode layer2Continuation}, by
 * default; a counted check of {@linkcode COUNT_FORMS} counts them out, so a right answer is only
 * ever counted after a check that failed). The check is a different computation from the one that
 * slipped, so a model can find its own slip without re-deriving a right chain:
 * `" 2+6=8 no 9-6=3 3+4=7</think>7"` after `9-6=2 2+4=6`, and `" 3+6=9 ok 7-4=3 ok</think>7"`
 * after the right `9-6=3 3+4=7`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkedContinuation, countedContinuation } from "./arithmetic.ts";
 *
 * const right = [
 *   { op: "-" as const, operand: 6, before: 9, after: 3 },
 *   { op: "+" as const, operand: 4, before: 3, after: 7 },
 * ];
 * const slipped = [
 *   { op: "-" as const, operand: 6, before: 9, after: 2 },
 *   { op: "+" as const, operand: 4, before: 2, after: 6 },
 * ];
 * const problem = { steps: right, answer: 7 };
 * assert.equal(checkedContinuation(right, problem), " 3+6=9 ok 7-4=3 ok</think>7");
 * assert.equal(checkedContinuation(slipped, problem), " 2+6=8 no 9-6=3 3+4=7</think>7");
 * assert.equal(
 *   checkedContinuation(slipped, problem, countedContinuation),
 *   " 2+6=8 no 9-6:8,5 7,4 6,3 5,2 4,1 3,0 3+4:4,3 5,2 6,1 7,0</think>7",
 * );
 * ```
 */
export function checkedContinuation(
  layer1Steps: readonly ArithmeticStep[],
  problem: Pick<ArithmeticProblem, "steps" | "answer">,
  redo: (rest: Pick<ArithmeticProblem, "steps" | "answer">) => string = layer2Continuation,
): string {
  const parts: string[] = [];
  for (let i = 0; i < layer1Steps.length; i++) {
    const s = layer1Steps[i]!;
    const [inverse, back] = s.op === "+"
      ? ["-", s.after - s.operand]
      : s.op === "-"
      ? ["+", s.after + s.operand]
      : ["/", s.after / s.operand];
    const ok = back === s.before;
    parts.push(`${s.after}${inverse}${s.operand}=${back} ${ok ? "ok" : "no"}`);
    if (!ok) {
      return ` ${parts.join(" ")}${
        redo({ steps: problem.steps.slice(i), answer: problem.answer })
      }`;
    }
  }
  return ` ${parts.join(" ")}</think>${problem.answer}`;
}

/**
 * A Layer-2 continuation that changes the answer without checking anything, as a model does
 * that takes a guide phrase for a verdict: the thought ends at once and another answer follows.
 * After a wrong answer it is the right one; after a right answer, a slipped one (one step off
 * by 1 or 2, carried on: {@linkcode slipSteps}). A warm start that has seen it does in its
 * correction what the paper's base model does: it changes answers, right ones included, and
 * fixes a few wrong ones by luck.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flippedContinuation } from "./arithmetic.ts";
 * import { Rng } from "../util/rng.ts";
 *
 * const steps = [
 *   { op: "-" as const, operand: 6, before: 9, after: 3 },
 *   { op: "+" as const, operand: 4, before: 3, after: 7 },
 * ];
 * assert.equal(flippedContinuation(6, { steps, answer: 7 }, new Rng(1)), "</think>7");
 * assert.notEqual(flippedContinuation(7, { steps, answer: 7 }, new Rng(1)), "</think>7");
 * ```
 */
export function flippedContinuation(
  layer1Answer: number,
  problem: Pick<ArithmeticProblem, "steps" | "answer">,
  rng: Rng,
): string {
  if (layer1Answer !== problem.answer) return `</think>${problem.answer}`;
  const slipped = slipSteps(problem, rng);
  return `</think>${slipped[slipped.length - 1]!.after}`;
}

/**
 * The continuation a self-correcting model writes in Layer 2 after the guide phrase: the
 * correct chain, a new `</think>` and the right answer, `" 7+5=12 12-3=9</think>9"`. Used as
 * the target of supervised Layer-2 examples, after a right or a wrong Layer-1 answer alike
 * (a confirmation restates the answer, so the exact-integer verifier can read it).
 */
export function layer2Continuation(problem: Pick<ArithmeticProblem, "steps" | "answer">): string {
  return ` ${formatSteps(problem.steps)}</think>${problem.answer}`;
}

/**
 * A Layer-2 continuation that redoes the chain slowly: each step `a op b` of the correct chain
 * is counted out one unit at a time from the running value, beside a counter that runs from
 * b − 1 down to 0, so the result comes from successors and predecessors (a few dozen facts) and
 * the count stops on a local cue, instead of the one-shot sum or difference that slipped. The
 * operators and second operands are those of o_i's equations, the running value is the count's
 * own, so a slip does not carry on: `" 9-6:8,5 7,4 6,3 5,2 4,1 3,0 3+4:4,3 5,2 6,1 7,0</think>7"`
 * after `9-6=2 2+4=6` and after the right `9-6=3 3+4=7` alike. A multiplication step is written
 * as its equation (`3*2=6`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countedContinuation } from "./arithmetic.ts";
 *
 * const steps = [
 *   { op: "-" as const, operand: 2, before: 5, after: 3 },
 *   { op: "+" as const, operand: 3, before: 3, after: 6 },
 * ];
 * assert.equal(countedContinuation({ steps, answer: 6 }), " 5-2:4,1 3,0 3+3:4,2 5,1 6,0</think>6");
 * ```
 */
export function countedContinuation(problem: Pick<ArithmeticProblem, "steps" | "answer">): string {
  return countCarrying(problem, () => "");
}

/**
 * The counted check of {@linkcode countedContinuation} with `carried(step)` of every later step
 * appended to each step's head and to each of its lines (or to its one multiplication line).
 */
function countCarrying(
  problem: Pick<ArithmeticProblem, "steps" | "answer">,
  carried: (step: ArithmeticStep) => string,
): string {
  const parts = problem.steps.map((s, i) => {
    const rest = problem.steps.slice(i + 1).map(carried).join("");
    if (s.op === "*") return `${s.before}*${s.operand}=${s.after}${rest}`;
    const counts: string[] = [];
    const dir = s.op === "+" ? 1 : -1;
    for (let k = 1; k <= s.operand; k++) {
      counts.push(`${s.before + dir * k},${s.operand - k}${rest}`);
    }
    return `${s.before}${s.op}${s.operand}${rest}:${counts.join(" ")}`;
  });
  return ` ${parts.join(" ")}</think>${problem.answer}`;
}

/** The letter {@linkcode letterCarriedCountContinuation} carries for each operator. */
export const CARRIED_LETTER = { "+": "a", "-": "s", "*": "t" } as const;

/**
 * The counted check with the operands still to come carried on each line (`;5`), and each
 * later step's head reading its operand from the line before: {@linkcode countedContinuation}'s
 * count and heads, with `;b` for every later step's operand appended to the opening head and to
 * each line, `" 6-2;5:5,1;5 4,0;5 4+5:5,4 6,3 7,2 8,1 9,0</think>9"`. Only digits are carried,
 * so no operator sign stands next to a count's values; an operator is still copied from o_i.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { operandCarriedCountContinuation } from "./arithmetic.ts";
 *
 * const steps = [
 *   { op: "-" as const, operand: 2, before: 5, after: 3 },
 *   { op: "+" as const, operand: 3, before: 3, after: 6 },
 * ];
 * assert.equal(
 *   operandCarriedCountContinuation({ steps, answer: 6 }),
 *   " 5-2;3:4,1;3 3,0;3 3+3:4,2 5,1 6,0</think>6",
 * );
 * ```
 */
export function operandCarriedCountContinuation(
  problem: Pick<ArithmeticProblem, "steps" | "answer">,
): string {
  return countCarrying(problem, (t) => `;${t.operand}`);
}

/**
 * The counted check with every later operation carried on each line as a letter and its operand
 * (`;a5` add, `;s5` subtract, `;t5` times): {@linkcode operandCarriedCountContinuation} with the
 * operator carried too, so a later step's head reads both from the line before. A letter, unlike
 * a carried sign ({@linkcode carriedCountContinuation}), does not look like the operator of the
 * step being counted. `" 6-2;a5:5,1;a5 4,0;a5 4+5:5,4 6,3 7,2 8,1 9,0</think>9"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { letterCarriedCountContinuation } from "./arithmetic.ts";
 *
 * const steps = [
 *   { op: "-" as const, operand: 2, before: 5, after: 3 },
 *   { op: "+" as const, operand: 3, before: 3, after: 6 },
 * ];
 * assert.equal(
 *   letterCarriedCountContinuation({ steps, answer: 6 }),
 *   " 5-2;a3:4,1;a3 3,0;a3 3+3:4,2 5,1 6,0</think>6",
 * );
 * ```
 */
export function letterCarriedCountContinuation(
  problem: Pick<ArithmeticProblem, "steps" | "answer">,
): string {
  return countCarrying(problem, (t) => `;${CARRIED_LETTER[t.op]}${t.operand}`);
}

/**
 * The counted check with every copy local: {@linkcode countedContinuation}'s count, but the
 * opening head lists the start value and every operation of o_i's chain (`5-2+3:`), and each
 * line of a step carries the operations still to come (`4,1+3`), so a step's operand is read
 * from the line just before its count starts rather than from o_i across the previous count.
 * Each step ends on counter 0 as before; a multiplication step is one line,
 * `before*operand=after`, followed by the operations still to come.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { carriedCountContinuation } from "./arithmetic.ts";
 *
 * const steps = [
 *   { op: "-" as const, operand: 2, before: 5, after: 3 },
 *   { op: "+" as const, operand: 3, before: 3, after: 6 },
 * ];
 * assert.equal(carriedCountContinuation({ steps, answer: 6 }), " 5-2+3:4,1+3 3,0+3 4,2 5,1 6,0</think>6");
 * ```
 */
export function carriedCountContinuation(
  problem: Pick<ArithmeticProblem, "steps" | "answer">,
): string {
  const { steps } = problem;
  const ops = steps.map((s) => `${s.op}${s.operand}`);
  const lines: string[] = [];
  steps.forEach((s, i) => {
    const rest = ops.slice(i + 1).join("");
    if (s.op === "*") {
      lines.push(`${s.before}*${s.operand}=${s.after}${rest}`);
      return;
    }
    const dir = s.op === "+" ? 1 : -1;
    for (let k = 1; k <= s.operand; k++) {
      lines.push(`${s.before + dir * k},${s.operand - k}${rest}`);
    }
  });
  return ` ${steps[0]!.before}${ops.join("")}:${lines.join(" ")}</think>${problem.answer}`;
}

/**
 * The counted checks `deno task sft --count-form` can teach, by name: the plain count and the
 * forms that carry what a later step's head needs.
 */
export const COUNT_FORMS = {
  plain: countedContinuation,
  carry: carriedCountContinuation,
  operands: operandCarriedCountContinuation,
  letters: letterCarriedCountContinuation,
} as const;

/** One of {@linkcode COUNT_FORMS}' names. */
export type CountForm = keyof typeof COUNT_FORMS;
