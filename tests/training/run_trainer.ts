/**
 * Training runs in the test's own process: what `deno task train` does after parsing its
 * arguments (`cli/train.ts`), as a {@linkcode Trainer}, without a process start. Tests of the
 * CLI itself (exit codes, signals, flags, processes placed apart) spawn `cli/train.ts`.
 *
 * @module
 */
import { isAbsolute } from "node:path";
import { loadRunConfig } from "../../training/plugins.ts";
import { Trainer, type TrainerOptions, type TrainSummary } from "../../training/trainer.ts";
import { REPO_ROOT } from "../helpers.ts";

/**
 * Overrides every in-process run starts from (a test's own come after them): no control
 * server, and tfjs' single-threaded wasm build (the threaded one starts once per process and
 * keeps its threads alive; its results are the same bit for bit).
 */
export const IN_PROCESS_SETS: readonly string[] = [
  "control.enabled=false",
  "model.wasm_threads=1",
];

/** Options of {@linkcode trainInProcess}. */
export interface TrainInProcessOptions {
  /** Continue the run in `runDir` from its newest checkpoint (`--resume runDir`). @default false */
  resume?: boolean;
  /** Called with the Trainer once it is created, before it runs (to stop it from a test). */
  started?: (trainer: Trainer) => void;
  /** Called after each held-out evaluation with its result (`TrainerOptions.onEval`). */
  onEval?: TrainerOptions["onEval"];
}

/** What {@linkcode trainInProcess} ran. */
export interface InProcessRun {
  /** What the run wrote to `summary.json`. */
  summary: TrainSummary;
  /** The lines the Trainer logged and warned (what `deno task train` prints but its progress line). */
  log: string;
}

/**
 * Runs `deno task train --config <config> --set <sets>... --run-dir <runDir>` (or, with
 * `resume`, `--resume <runDir> --set <sets>...`) in this process: the config loaded with its
 * plug-ins, {@linkcode IN_PROCESS_SETS} then `sets` as overrides, the Trainer run to the end
 * and closed. A relative `config` is read from the repository root.
 *
 * @throws What `loadConfigWithPlugins`, `Trainer.create` or `Trainer.run` throws (a
 * `ConfigError`, an `ActorFailedError`...).
 */
export async function trainInProcess(
  runDir: string,
  config: string | undefined,
  sets: readonly string[],
  options: TrainInProcessOptions = {},
): Promise<InProcessRun> {
  const lines: string[] = [];
  const overrides = [...IN_PROCESS_SETS, ...sets];
  const path = config === undefined || isAbsolute(config) ? config : `${REPO_ROOT}${config}`;
  const { config: loaded, registry, resume } = await loadRunConfig({
    ...(path ? { config: path } : {}),
    ...(options.resume ? { resume: runDir } : {}),
    overrides,
  });
  const trainer = await Trainer.create(loaded, {
    registry,
    runDir,
    ...(resume ? { resume } : {}),
    ...(path ? { configPath: path } : {}),
    overrides,
    log: (line) => lines.push(line),
    warn: (line) => lines.push(line),
    ...(options.onEval ? { onEval: options.onEval } : {}),
  });
  try {
    options.started?.(trainer);
    const summary = await trainer.run();
    return { summary, log: lines.join("\n") };
  } finally {
    await trainer.close();
  }
}
