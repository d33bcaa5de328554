/**
 * Exact resume: what `deno task train --resume runs/<name>` reads from the newest checkpoint
 * and how the run directory is brought back to that step.
 *
 * A checkpoint's `trainer_state.json` holds the Learner's counters (`step`, `policy_version`,
 * `optimizer_steps`: also the LR schedule position, `consecutive_skips`), the driver's
 * (`sampled_tokens`, `live_config`: the live settings in force, `reference`: the identity of
 * the reference policy) and, under `actors`, every stateful actor's snapshot (the data cursor,
 * the sampling and guide-phrase RNG states, the PPO value model). See `actors/snapshot.ts`.
 *
 * @module
 */
import type { Restore } from "../actors/messages.ts";
import { liveFieldsFor } from "../server/run_control.ts";
import {
  MANIFEST_FILE,
  removeCheckpoint,
  repairCheckpoints,
  verifyCheckpoint,
} from "../model/checkpoint.ts";
import { exists } from "../model/fs.ts";
import type { TrainConfig } from "../algorithms/builtins.ts";
import { InputError } from "../util/errors.ts";

/** The file a checkpoint keeps its counters and actor snapshots in. */
export const TRAINER_STATE_FILE = "trainer_state.json";

/** What the Learner writes for each actor snapshot under `actors.<name>`. */
export interface SavedActorState {
  state: Record<string, unknown>;
  /** File names inside the checkpoint, without the `<name>.` prefix. */
  files: string[];
}

/** The part of `trainer_state.json` a resume reads. */
export interface TrainerState {
  step?: number;
  policy_version?: number;
  optimizer_steps?: number;
  consecutive_skips?: number;
  sampled_tokens?: number;
  live_config?: Record<string, unknown>;
  reference?: { init: string; sha256: string };
  actors?: Record<string, SavedActorState>;
  [key: string]: unknown;
}

/** The `checkpoint-<step>` folders of a run, oldest first. */
export async function listCheckpoints(runDir: string): Promise<{ step: number; path: string }[]> {
  const found: { step: number; path: string }[] = [];
  for await (const e of Deno.readDir(runDir)) {
    const m = /^checkpoint-(\d+)$/.exec(e.name);
    if (e.isDirectory && m) found.push({ step: Number(m[1]), path: `${runDir}/${e.name}` });
  }
  return found.sort((a, b) => a.step - b.step);
}

/**
 * The newest `checkpoint-<step>` folder of a run that verifies: it has a manifest and every
 * file matches it. A newer one that does not (corrupt, emptied, its manifest lost) is moved
 * aside as `checkpoint-<step>.corrupt-<time>` for inspection, `warn` says so, and the next
 * older one is tried.
 *
 * @throws {InputError} Naming the folder when it does not exist, holds no checkpoint, or none
 * of its checkpoints verifies.
 */
export async function latestCheckpoint(
  runDir: string,
  warn: (line: string) => void = (line) => console.error(line),
): Promise<string> {
  let all;
  try {
    // A process killed mid-save may have left the newest checkpoint moved aside: put it back.
    await repairCheckpoints(runDir);
    all = await listCheckpoints(runDir);
  } catch (cause) {
    const why = cause instanceof Deno.errors.NotFound
      ? "the folder does not exist"
      : cause instanceof Deno.errors.NotADirectory
      ? "the path is a file, not a run folder"
      : (cause as Error).message;
    throw new InputError(`Cannot resume from "${runDir}": ${why}`, { cause });
  }
  if (all.length === 0) {
    throw new InputError(
      `Cannot resume from "${runDir}": it is not a run folder (no checkpoint-<step> folder in it)`,
    );
  }
  const bad: string[] = [];
  for (const { path } of all.reverse()) {
    try {
      // Every checkpoint a run writes has a manifest: one without cannot be trusted here.
      if (!(await exists(`${path}/${MANIFEST_FILE}`))) {
        throw new Error(`Cannot load checkpoint "${path}": its ${MANIFEST_FILE} is missing`);
      }
      await verifyCheckpoint(path);
    } catch (error) {
      const aside = `${path}.corrupt-${Date.now()}`;
      await Deno.rename(path, aside);
      bad.push(path);
      warn(
        `resume: ${
          (error as Error).message
        }; kept aside as ${aside}, trying the next older checkpoint`,
      );
      continue;
    }
    if (bad.length > 0) {
      warn(`resume: continuing from ${path}, the newest checkpoint that verifies`);
    }
    return path;
  }
  throw new InputError(
    `Cannot resume from "${runDir}": none of its checkpoints verifies (${bad.length} kept aside as *.corrupt-*)`,
  );
}

/**
 * Deletes all but the newest `keepLast` checkpoints of a run (`run.keep_last`). Counts every
 * `checkpoint-<step>` folder, those of earlier (resumed) processes too.
 */
export async function pruneCheckpoints(runDir: string, keepLast: number): Promise<string[]> {
  const all = await listCheckpoints(runDir);
  const old = all.slice(0, Math.max(0, all.length - keepLast)).map((c) => c.path);
  // Renamed before it is deleted, so a kill never leaves a half-deleted checkpoint-<step>.
  for (const path of old) await removeCheckpoint(path).catch(() => {});
  return old;
}

/**
 * Reads a checkpoint's `trainer_state.json`.
 *
 * @throws {SyntaxError} Naming the file when it is not a JSON object.
 */
export async function readTrainerState(checkpoint: string): Promise<TrainerState> {
  const path = `${checkpoint}/${TRAINER_STATE_FILE}`;
  let value: unknown;
  try {
    value = JSON.parse(await Deno.readTextFile(path));
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) return {};
    throw new SyntaxError(`Cannot read "${path}": ${(cause as Error).message}`, { cause });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new SyntaxError(`Cannot read "${path}": expected a JSON object`);
  }
  return value as TrainerState;
}

/**
 * The live settings of a config, by dotted key: `fields` (the run's, `liveFieldsFor(plugin)`),
 * by default those of a built-in `config.algorithm`.
 */
export function liveConfigValues(
  config: TrainConfig,
  fields: readonly string[] = liveFieldsFor(config.algorithm),
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    let value: unknown = config;
    for (const part of field.split(".")) value = (value as Record<string, unknown>)[part];
    out[field] = value;
  }
  return out;
}

/** Where a resumed run continues from. */
export interface ResumePoint {
  /** The checkpoint folder. */
  readonly checkpoint: string;
  /** Its `trainer_state.json`. */
  readonly saved: TrainerState;
}

/**
 * Where `--resume <runDir>` continues: the newest checkpoint of the run folder and its trainer
 * state. The resumed run loads `<runDir>/config.yaml` with `saved.live_config` as `values` (the
 * live settings in force when the checkpoint was written), then the command line's overrides.
 *
 * @throws {Error} When the folder holds no checkpoint, or its state cannot be read.
 */
export async function resumePoint(runDir: string): Promise<ResumePoint> {
  const checkpoint = await latestCheckpoint(runDir);
  return { checkpoint, saved: await readTrainerState(checkpoint) };
}

/**
 * One `Restore` message per actor snapshot of a checkpoint, with its files read back.
 *
 * @throws {Error} Naming the checkpoint file that is missing.
 */
export async function restoreMessages(
  checkpoint: string,
  state: TrainerState,
): Promise<Map<string, Restore>> {
  const out = new Map<string, Restore>();
  for (const [name, saved] of Object.entries(state.actors ?? {})) {
    const files: Restore["files"] = {};
    for (const file of saved.files ?? []) {
      const path = `${checkpoint}/${name}.${file}`;
      try {
        files[file] = await Deno.readFile(path);
      } catch (cause) {
        throw new Error(`Cannot resume: cannot read "${path}": ${(cause as Error).message}`, {
          cause,
        });
      }
    }
    out.set(name, { type: "Restore", step: state.step ?? 0, state: saved.state, files });
  }
  return out;
}

/**
 * SHA-256 identifying a model folder's weights: of `model.safetensors`, or for a sharded
 * model of its shards' hashes in order (`model.safetensors.index.json`).
 */
export async function weightsSha256(dir: string): Promise<string> {
  try {
    return await fileSha256(`${dir}/model.safetensors`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const index = JSON.parse(await Deno.readTextFile(`${dir}/model.safetensors.index.json`)) as {
    weight_map?: Record<string, string>;
  };
  const shards = [...new Set(Object.values(index.weight_map ?? {}))].sort();
  const hashes: string[] = [];
  for (const shard of shards) hashes.push(await fileSha256(`${dir}/${shard}`));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(hashes.join("\n")));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 of a file, in hex. */
export async function fileSha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Rewrites `metrics.jsonl` without the records of steps after `step`: a run killed after its
 * last checkpoint has logged steps that the resumed run will log again. Written to a temporary
 * file and renamed, so a crash leaves the old file or the new one.
 *
 * @returns How many lines were dropped.
 */
export async function truncateMetrics(path: string, step: number): Promise<number> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const keep = lines.filter((line) => {
    try {
      const record = JSON.parse(line) as { step?: unknown };
      return typeof record.step !== "number" || record.step <= step;
    } catch {
      return false; // a line cut by the kill
    }
  });
  if (keep.length === lines.length) return 0;
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, keep.map((l) => l + "\n").join(""));
  await Deno.rename(tmp, path);
  return lines.length - keep.length;
}
