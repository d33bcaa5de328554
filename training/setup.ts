/**
 * What a run is set up from: the repository root, the starting policy (`model.preset` or
 * `model.init`), the training task (synthetic arithmetic or a JSONL dataset) with its held-out
 * problems, and the Layer-1 prompt renderer.
 *
 * @module
 */
import type { TrainConfig } from "../algorithms/builtins.ts";
import type { EvalSplit } from "../config/schema.ts";
import { buildLayer1Prompt } from "../prompts/chat_template.ts";
import { TABLE1_SYSTEM_PROMPT } from "../prompts/system_prompts.ts";
import { loadCheckpoint, type LoadedCheckpoint } from "../model/checkpoint.ts";
import { Transformer } from "../model/transformer.ts";
import { TINY_MODEL_CONFIG } from "../model/model_config.ts";
import { CharTokenizer } from "../model/char_tokenizer.ts";
import { devProblems, devUnseenProblems, heldOutProblems, problemKey } from "../data/arithmetic.ts";
import type { ArithmeticOptions, ArithmeticProblem } from "../data/arithmetic.ts";
import { type BadLine, epochOrder, loadProblemsJsonl } from "../data/jsonl_dataset.ts";
import { loadProblemsHf, loadProblemsParquet } from "../data/tabular.ts";
import type { SourceProblem } from "../actors/prompt_source.ts";
import { InputError } from "../util/errors.ts";
import { resolveModelPath } from "../model/hf_cache.ts";

/** The repository root (where `deno.json` lives). */
export const REPO_ROOT: string = new URL("../", import.meta.url).pathname;

/** Resolves a path from the config: absolute as is, otherwise relative to the repo root. */
export function resolveRepoPath(path: string): string {
  return path.startsWith("/") ? path : `${REPO_ROOT}${path}`;
}

/**
 * The inverse of {@linkcode resolveRepoPath}: a path inside the repo as the repo names it
 * (`checkpoints/tiny-sft`, the same in every clone); one outside it as is.
 */
export function repoPathName(path: string): string {
  return path.startsWith(REPO_ROOT) ? path.slice(REPO_ROOT.length) : path;
}

/**
 * The folder of a model reference (`model.init`, `--model`, `--checkpoint`): a folder (relative
 * to the repo root), else a Hugging Face id (`Qwen/Qwen2.5-0.5B-Instruct[@revision]`) found in
 * the local hub cache, as `transformers` finds it offline.
 *
 * @throws {InputError} For an id that is not cached, with the `hf download` command.
 */
export function resolveModelDir(spec: string): string {
  return resolveModelPath(spec, REPO_ROOT);
}

/**
 * {@linkcode resolveModelDir} for a model a command was told to load (`--checkpoint DIR`,
 * `--model DIR`): a folder that does not exist is bad input.
 *
 * @throws {InputError} Naming the flag and the folder.
 */
export function existingModelDir(spec: string, flag: string): string {
  const dir = resolveModelDir(spec);
  try {
    if (Deno.statSync(dir).isDirectory) return dir;
  } catch {
    // reported below
  }
  throw new InputError(`Cannot load the model of ${flag} "${spec}": the folder does not exist`);
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
 * held-out set (what train evaluates), and `keys`, the problem keys never drawn for training:
 * the whole held-out set of `task.heldout_size` problems, and the `task.dev_unseen_size`
 * problems of the unseen dev split. `split: "heldout"` returns the whole held-out set as
 * `problems` (what eval and compare report on); `split: "dev"` returns `heldout_size` problems
 * drawn like training problems from a stream of their own; `split: "dev_unseen"` the unseen
 * dev split (math kept out of training, like the held-out set's) — both for design choices
 * that must not look at the held-out set.
 */
export function heldOut(
  task: TrainConfig["task"],
  split: "train_eval" | EvalSplit = "train_eval",
): {
  problems: ArithmeticProblem[];
  keys: Set<string>;
} {
  const options = arithmeticOptions(task);
  const all = heldOutProblems(Math.max(task.heldout_size, task.eval_size), options);
  const keys = new Set(all.map(problemKey));
  const unseen = task.dev_unseen_size > 0
    ? devUnseenProblems(task.dev_unseen_size, { ...options, exclude: keys })
    : [];
  for (const problem of unseen) keys.add(problemKey(problem));
  switch (split) {
    case "train_eval":
      return { problems: all.slice(0, task.eval_size), keys };
    case "heldout":
      return { problems: all, keys };
    case "dev":
      return { problems: devProblems(task.heldout_size, { ...options, exclude: keys }), keys };
    case "dev_unseen":
      if (unseen.length === 0) {
        throw new RangeError(
          "Cannot evaluate on the unseen dev split: task.dev_unseen_size must be > 0 (and the policy trained with it, so that its math was kept out of training): current value is 0",
        );
      }
      return { problems: unseen, keys };
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
  split: EvalSplit = "heldout",
): Promise<TrainingTask> {
  if (task.kind === "arithmetic") return { ...heldOutTask(task, split), badLines: [] };
  if (split !== "heldout") {
    throw new RangeError(
      `Cannot evaluate on the ${split} split of dataset "${task.path}": eval.split ${split} needs task.kind arithmetic: current value is "${split}"`,
    );
  }
  const read = {
    onBadLine: task.on_bad_line,
    answerField: task.answer_field,
    ...(task.question_field === undefined ? {} : { questionField: task.question_field }),
    ...(task.answer_marker === undefined ? {} : { answerMarker: task.answer_marker }),
  };
  const { problems, badLines } = await (
    task.kind === "jsonl"
      ? loadProblemsJsonl(task.path!, read)
      : task.kind === "parquet"
      ? loadProblemsParquet(task.path!, read)
      : loadProblemsHf(task.path!, task.split, task.subset, read)
  ).catch((cause) => {
    // A missing file or a bad line is the user's input: exit 2, same message.
    throw new InputError((cause as Error).message, { cause });
  });
  if (task.eval_size >= problems.length) {
    throw new InputError(
      `Cannot use dataset "${task.path}": task.eval_size must be smaller than its ` +
        `${problems.length} problems, to leave some to train on: current value is ${task.eval_size}`,
    );
  }
  const order = epochOrder(problems.length, 0, 0);
  const evalSet = order.slice(0, task.eval_size).map((i) => problems[i]!);
  return { evalSet, keys: new Set(evalSet.map((p) => p.id)), dataset: problems, badLines };
}

function heldOutTask(task: TrainConfig["task"], split: EvalSplit) {
  const { problems, keys } = heldOut(task, split === "heldout" ? "train_eval" : split);
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
  const path = resolveModelDir(config.model.init);
  let loaded: LoadedCheckpoint;
  try {
    loaded = await loadCheckpoint(path, options);
  } catch (cause) {
    // The user named this folder (model.init / model.path): a model, not a checkpoint.
    const exists = await Deno.stat(path).then((s) => s.isDirectory, () => undefined);
    const why = exists === undefined
      ? "the folder does not exist"
      : exists === false
      ? "the path is a file, not a model folder"
      : !(await Deno.stat(`${path}/config.json`).then(() => true, () => false))
      ? 'the folder holds no "config.json": it is not a model folder (ours or a Hugging Face one)'
      : (cause as Error).message.replace(/^Cannot load checkpoint "[^"]*": /, "");
    throw new InputError(`Cannot load model.init "${config.model.init}": ${why}`, { cause });
  }
  return { ...loaded, identity: path };
}
