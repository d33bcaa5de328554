/**
 * What each split of the synthetic task is made of, with no model: per split, how many problems,
 * the share of subtraction (and multiplication) steps, the mean answer and the mean number of
 * units a counted check counts out (the sum of the additions' and subtractions' operands). The
 * held-out set and the unseen dev split hold distinct problem keys drawn before training's, so on
 * a small task they are not made like the training stream; docs/self-correction.md ("Held-out and
 * dev problems") quotes this table.
 *
 *   deno run -A tools/split_stats.ts [--config FILE] [--set task.dev_unseen_size=200] [--draws N]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type ArithmeticProblem, makeProblems, problemKey } from "../data/arithmetic.ts";
import { loadConfig } from "../training/config.ts";
import { arithmeticOptions, heldOut } from "../training/setup.ts";

/** The make-up of one split. */
export interface SplitStats {
  /** Problems in the split. */
  readonly problems: number;
  /** Share of the problems with at least one subtraction. */
  readonly withSubtraction: number;
  /** Share of all steps that subtract. */
  readonly subtractShare: number;
  /** Share of all steps that multiply. */
  readonly multiplyShare: number;
  /** Mean final answer. */
  readonly meanAnswer: number;
  /** Mean units a counted check counts out: the operands of the additions and subtractions. */
  readonly meanCountUnits: number;
}

/** Whether `problem` subtracts in at least one step. */
export function hasSubtraction(problem: ArithmeticProblem): boolean {
  return problem.steps.some((s) => s.op === "-");
}

/** The make-up of `problems` (shares and means are 0 for an empty list). */
export function splitStats(problems: readonly ArithmeticProblem[]): SplitStats {
  let steps = 0, subtract = 0, multiply = 0, answers = 0, units = 0, withSubtraction = 0;
  for (const p of problems) {
    answers += p.answer;
    if (hasSubtraction(p)) withSubtraction += 1;
    for (const s of p.steps) {
      steps += 1;
      if (s.op === "-") subtract += 1;
      if (s.op === "*") multiply += 1;
      else units += s.operand;
    }
  }
  const n = problems.length;
  return {
    problems: n,
    withSubtraction: n === 0 ? 0 : withSubtraction / n,
    subtractShare: steps === 0 ? 0 : subtract / steps,
    multiplyShare: steps === 0 ? 0 : multiply / steps,
    meanAnswer: n === 0 ? 0 : answers / n,
    meanCountUnits: n === 0 ? 0 : units / n,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      config: { type: "string" },
      set: { type: "string", multiple: true },
      draws: { type: "string" },
    },
  });
  const draws = Number(values.draws ?? 20000);
  let config;
  try {
    if (!Number.isInteger(draws) || draws <= 0) {
      throw new RangeError(
        `Invalid value for --draws: must be an integer > 0: current value is ${values.draws}`,
      );
    }
    config = loadConfig(values.config, { overrides: values.set ?? [] });
    if (config.task.kind !== "arithmetic") {
      throw new RangeError(
        `Invalid value for task.kind: the splits this tool describes are the synthetic task's ("arithmetic"): current value is "${config.task.kind}"`,
      );
    }
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    Deno.exit(2);
  }
  const { task } = config;
  const { problems: heldout, keys } = heldOut(task, "heldout");
  const options = arithmeticOptions(task);
  const rows: [string, ArithmeticProblem[]][] = [
    [`held-out (${heldout.length})`, heldout],
    [
      `held-out, first ${task.eval_size} (train's own evaluation)`,
      heldout.slice(0, task.eval_size),
    ],
  ];
  if (task.dev_unseen_size > 0) {
    rows.push([`unseen dev (${task.dev_unseen_size})`, heldOut(task, "dev_unseen").problems]);
  }
  rows.push(
    [`dev (${task.heldout_size})`, heldOut(task, "dev").problems],
    [
      `training stream (run.seed ${config.run.seed}, ${draws} draws)`,
      makeProblems(config.run.seed, draws, { ...options, exclude: keys }),
    ],
    [
      `the generator with nothing kept out (${draws} draws)`,
      makeProblems(config.run.seed, draws, options),
    ],
  );
  const universe = new Set(makeProblems(config.run.seed, 10 * draws, options).map(problemKey));
  console.log(
    "split | problems | problems with a subtraction % | subtraction steps % | multiplication steps % | mean answer | mean count units",
  );
  for (const [name, problems] of rows) {
    const s = splitStats(problems);
    console.log(
      [
        name,
        s.problems,
        (100 * s.withSubtraction).toFixed(1),
        (100 * s.subtractShare).toFixed(1),
        (100 * s.multiplyShare).toFixed(1),
        s.meanAnswer.toFixed(2),
        s.meanCountUnits.toFixed(2),
      ].join(" | "),
    );
  }
  console.log(
    `distinct problem keys in ${
      10 * draws
    } draws: ${universe.size}; kept out of training: ${keys.size}`,
  );
}
