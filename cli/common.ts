/**
 * Pieces shared by the CLIs: path resolution, prompt rendering from the config, the
 * held-out set, and a results table.
 *
 * @module
 */
import type { TrainConfig } from "../algorithms/builtins.ts";
import { ArgsError } from "./args.ts";
import { ConfigError } from "../config/load.ts";
import { buildLayer1Prompt } from "../prompts/chat_template.ts";
import { TABLE1_SYSTEM_PROMPT } from "../prompts/system_prompts.ts";
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
import { loadCheckpoint, type LoadedCheckpoint } from "../model/checkpoint.ts";
import { Transformer } from "../model/transformer.ts";
import { TINY_MODEL_CONFIG } from "../model/model_config.ts";
import { CharTokenizer } from "../model/char_tokenizer.ts";
import { devProblems, heldOutProblems, problemKey } from "../data/arithmetic.ts";
import type { ArithmeticOptions, ArithmeticProblem } from "../data/arithmetic.ts";
import type { AnswerChecker } from "../verifiers/reward.ts";
import { type BadLine, epochOrder, loadProblemsJsonl } from "../data/jsonl_dataset.ts";
import type { SourceProblem } from "../actors/prompt_source.ts";

/** The repository root (where `deno.json` lives). */
export const REPO_ROOT: string = new URL("../", import.meta.url).pathname;

/**
 * `deno run` arguments that start `cli/train.ts` with the permissions `deno task train` has
 * (for tools and tests that run training as a process of its own); append train's flags.
 */
export const TRAIN_RUN_ARGS: readonly string[] = [
  "run",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-net",
  "--allow-ffi", // the optional tensorflow backend (tfjs-node) is a Node-API addon
  `${REPO_ROOT}cli/train.ts`,
];

/** Resolves a path from the config: absolute as is, otherwise relative to the repo root. */
export function resolveRepoPath(path: string): string {
  return path.startsWith("/") ? path : `${REPO_ROOT}${path}`;
}

/**
 * A question → prompt renderer for the config's `prompts` section. An empty system prompt
 * leaves the system turn out (the embedded model's context is short); `"table1"` is the
 * paper's Table 1 system prompt.
 */
export function promptRenderer(prompts: TrainConfig["prompts"]): (question: string) => string {
  const systemPrompt = prompts.system === ""
    ? null
    : prompts.system === "table1"
    ? TABLE1_SYSTEM_PROMPT
    : prompts.system;
  return (question) =>
    buildLayer1Prompt(
      question,
      prompts.template === undefined
        ? { systemPrompt }
        : { systemPrompt, template: prompts.template },
    );
}

/** The task section's difficulty knobs as generator options. */
export function arithmeticOptions(task: TrainConfig["task"]): Partial<ArithmeticOptions> {
  return { minSteps: task.min_steps, maxSteps: task.max_steps, maxOperand: task.max_operand };
}

/**
 * The synthetic task's held-out problems: `problems`, the first `task.eval_size` of the
 * held-out set (what train evaluates), and `keys`, the problem keys of the whole held-out set
 * of `task.heldout_size` problems (never drawn for training). `split: "heldout"` returns the
 * whole set as `problems` (what eval and compare report on); `split: "dev"` returns
 * `heldout_size` problems drawn like training problems from a stream of their own, for design
 * choices that must not look at the held-out set.
 */
export function heldOut(
  task: TrainConfig["task"],
  split: "train_eval" | "heldout" | "dev" = "train_eval",
): {
  problems: ArithmeticProblem[];
  keys: Set<string>;
} {
  const all = heldOutProblems(Math.max(task.heldout_size, task.eval_size), arithmeticOptions(task));
  const keys = new Set(all.map(problemKey));
  switch (split) {
    case "train_eval":
      return { problems: all.slice(0, task.eval_size), keys };
    case "heldout":
      return { problems: all, keys };
    case "dev":
      return {
        problems: devProblems(task.heldout_size, { ...arithmeticOptions(task), exclude: keys }),
        keys,
      };
    default:
      throw new RangeError(`Unknown split: "${split as string}"`);
  }
}

/** The problems of a training run: the held-out set, and the dataset for `task.kind: jsonl`. */
export interface TrainingTask {
  /** The held-out evaluation problems. */
  evalSet: SourceProblem[];
  /** Keys the PromptSource never draws (the held-out set's). */
  keys: Set<string>;
  /** `kind: jsonl`: every good problem of the file (held-out ones are excluded by key). */
  dataset?: SourceProblem[];
  /** `kind: jsonl` with `on_bad_line: skip`: the malformed lines left out. */
  badLines: BadLine[];
}

/**
 * Reads the task of a run. For `kind: jsonl` the held-out set is the first `eval_size`
 * problems of a fixed seeded order of the file (the same for every run seed), and the rest
 * are trained on.
 *
 * @throws {Error} Naming `file:line` for a malformed line (`on_bad_line: stop`), the file when
 * it cannot be read, and `task.eval_size` when it leaves nothing to train on.
 */
export async function loadTrainingTask(
  task: TrainConfig["task"],
  split: "heldout" | "dev" = "heldout",
): Promise<TrainingTask> {
  if (task.kind !== "jsonl") return { ...heldOutTask(task, split), badLines: [] };
  if (split === "dev") {
    throw new RangeError(
      `Cannot evaluate on the dev split of dataset "${task.path}": eval.split dev needs task.kind arithmetic: current value is "dev"`,
    );
  }
  const { problems, badLines } = await loadProblemsJsonl(task.path!, {
    onBadLine: task.on_bad_line,
    answerField: task.answer_field,
    ...(task.question_field === undefined ? {} : { questionField: task.question_field }),
  });
  if (task.eval_size >= problems.length) {
    throw new RangeError(
      `Cannot use dataset "${task.path}": task.eval_size must be smaller than its ` +
        `${problems.length} problems, to leave some to train on: current value is ${task.eval_size}`,
    );
  }
  const order = epochOrder(problems.length, 0, 0);
  const evalSet = order.slice(0, task.eval_size).map((i) => problems[i]!);
  return { evalSet, keys: new Set(evalSet.map((p) => p.id)), dataset: problems, badLines };
}

function heldOutTask(task: TrainConfig["task"], split: "heldout" | "dev") {
  const { problems, keys } = heldOut(task, split === "dev" ? "dev" : "train_eval");
  return { evalSet: problems.slice(0, task.eval_size) as SourceProblem[], keys };
}

/**
 * The policy a run starts from: `model.preset` (a random model, seeded by `run.seed`) or the
 * folder `model.init` (ours, or a Hugging Face model's; `model.path` sets it).
 */
export async function loadStartingPolicy(
  config: TrainConfig,
  options: { trainable?: boolean } = {},
): Promise<LoadedCheckpoint & { identity: string }> {
  if (config.model.preset === "tiny") {
    return {
      model: Transformer.create(TINY_MODEL_CONFIG, {
        seed: config.run.seed,
        trainable: options.trainable ?? true,
      }),
      tokenizer: new CharTokenizer(),
      state: {},
      identity: `preset:tiny:seed-${config.run.seed}`,
    };
  }
  const path = resolveRepoPath(config.model.init);
  return { ...(await loadCheckpoint(path, options)), identity: path };
}

/** Formats rows as an aligned plain-text table. */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(cells[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)]
    .join("\n");
}

/**
 * Runs a CLI entry point and exits with its code: a thrown `ArgsError` or `ConfigError`
 * prints its message and exits 2 (bad command line or config), anything else exits 1.
 */
export async function runMain(main: (argv: string[]) => Promise<number>): Promise<never> {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    Deno.exit(e instanceof ArgsError || e instanceof ConfigError ? 2 : 1);
  }
}

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

/** A fraction as a percentage with one decimal, or "-". */
export function pct(x: number | undefined): string {
  return x === undefined ? "-" : (100 * x).toFixed(1);
}

/** A p-value with two significant digits (scientific below 1e-4), or "-". */
export function pValue(p: number | undefined): string {
  return p === undefined ? "-" : p < 1e-4 ? p.toExponential(1) : p.toPrecision(2);
}

/** Column names of one guided correction (first answer t1, corrected answer t2), in order. */
export const CORRECTION_COLUMNS: readonly string[] = [
  "Acc@t1 %",
  "Acc@t2 %",
  "Δ(t1,t2)",
  "Δi→c",
  "Δc→i",
  "McNemar p",
];

/** The cells of {@linkcode CORRECTION_COLUMNS} for one policy. */
export function correctionCells(m: CorrectionMetrics): string[] {
  return [
    pct(m.acc_t1),
    pct(m.acc_t2),
    pct(m.delta_t1_t2),
    pct(m.delta_i_to_c),
    pct(m.delta_c_to_i),
    pValue(m.mcnemar_p),
  ];
}

/** The cells of {@linkcode TWO_TURN_COLUMNS} and McNemar's p of t1' vs t2 for one policy. */
export function intrinsicCells(m: TwoTurnMetrics): string[] {
  return [
    pct(m.acc_t1),
    pct(m.acc_t1_prime),
    pct(m.acc_t2),
    pct(m.delta_t1_prime_t2),
    pct(m.delta_i_to_c),
    pct(m.delta_c_to_i),
    pValue(m.mcnemar_p),
  ];
}

/** Column names of the paper's Table 2 (two-turn evaluation), in the order of the rows. */
export const TWO_TURN_COLUMNS: readonly string[] = [
  "Acc@t1 %",
  "Acc@t1' %",
  "Acc@t2 %",
  "Δ(t1',t2)",
  "Δi→c",
  "Δc→i",
];
