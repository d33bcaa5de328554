/**
 * The files of run folders, read for the dashboard of finished (or running) runs: which
 * folders are runs ({@linkcode discoverRuns}: a run folder, a compare report's folder of
 * `<arm>-seed<k>` runs, or every run under `runs/`), and what each holds:
 * `metrics.jsonl` as the live server's history entries ({@linkcode readHistory}),
 * `config.yaml`, `summary.json` and `environment.jsonl` (`samples.jsonl`: `readSamples` of
 * `training/samples_file.ts`). Every read goes to
 * the file again, so a folder that a run is still writing shows its newest lines; a last line
 * still being written (no newline yet, not valid JSON) is left for the next read.
 *
 * @module
 */
import { basename, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { InputError } from "../util/errors.ts";
import { resolveRunDir } from "../training/run_dir.ts";
import type { HistoryEntry } from "./run_control.ts";

/** One run folder the dashboard shows. */
export interface RunInfo {
  /** Stable id of the folder (a hash of its real path), used in the `/api/runs/:id` routes. */
  id: string;
  /** The folder's name (`smoke-mgrpo-20261206-051200`, `mgrpo-seed0`). */
  name: string;
  /** The folder as given or found (`runs/compare-2026-12-05/mgrpo-seed0`). */
  path: string;
  /**
   * The group of seed runs it belongs to (`compare-2026-12-05/mgrpo`): the runs of one arm of
   * a compare report, or of one `deno task seeds` folder. `null` for a run of its own.
   */
  group: string | null;
  /** The arm of its group (`mgrpo`, `grpo_tokens`), or `null`. */
  arm: string | null;
  /** The seed in its folder's name (`mgrpo-seed3` → 3, `seed-1` → 1), or `null`. */
  seed: number | null;
  /** `algorithm` of its `config.yaml`, or `null` when it has none. */
  algorithm: string | null;
  /** Whether it has finished (`summary.json` exists). */
  finished: boolean;
  /** Whether its control server is up (`control.json` exists): the run is going on. */
  live: boolean;
  /** The last training step in `metrics.jsonl` (0 before the first). */
  steps: number;
  /** `run.steps` of its config, or `null`. */
  totalSteps: number | null;
}

/** A history entry read from `metrics.jsonl`. */
export interface FileHistoryEntry extends Omit<HistoryEntry, "time"> {
  /**
   * When it was recorded (ISO 8601), estimated from the start time in `environment.jsonl`
   * plus the `time/step` of the steps since; `null` without an `environment.jsonl`.
   */
  time: string | null;
}

/** The files of a run folder the dashboard reads. */
export const RUN_FILES = {
  metrics: "metrics.jsonl",
  config: "config.yaml",
  summary: "summary.json",
  environment: "environment.jsonl",
  samples: "samples.jsonl",
  control: "control.json",
} as const;

// --- discovery ---

/** Options of {@linkcode discoverRuns}. */
export interface DiscoverOptions {
  /** Where to look when no folder is given. @default "runs" */
  runsDir?: string;
}

/**
 * The runs in `paths`: each is a run folder (it holds `metrics.jsonl` or `config.yaml`; a
 * `runs/<name>` link or a name whose dated folders exist, resolved as `--resume` does), or a
 * folder of run folders (a compare report: `<arm>-seed<k>` folders become one group per arm).
 * No paths: every run under `runsDir`, each compare folder there expanded. A folder reached
 * twice (a link and its target) is listed once.
 *
 * @throws {InputError} for a given path that does not exist, is not a folder, or holds no run
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { discoverRuns } from "./run_files.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/cmp/mgrpo-seed0`, { recursive: true });
 * await Deno.writeTextFile(`${dir}/cmp/mgrpo-seed0/metrics.jsonl`, '{"step":1,"kl":0}\n');
 * const [run] = await discoverRuns([`${dir}/cmp`]);
 * assert.equal(run!.group, "cmp/mgrpo");
 * assert.equal(run!.seed, 0);
 * assert.equal(run!.steps, 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function discoverRuns(
  paths: readonly string[],
  options: DiscoverOptions = {},
): Promise<RunInfo[]> {
  const found: { path: string; real: string; parent?: string }[] = [];
  if (paths.length === 0) {
    const root = options.runsDir ?? "runs";
    for (const name of await folderNames(root)) {
      const path = join(root, name);
      const kind = await folderKind(path);
      if (kind === "run") found.push({ path, real: await Deno.realPath(path) });
      if (kind === "runs") found.push(...await childRuns(path));
    }
  } else {
    for (const given of paths) {
      const path = await resolveRunDir(given);
      let info: Deno.FileInfo;
      try {
        info = await Deno.stat(path);
      } catch (cause) {
        if (cause instanceof Deno.errors.NotFound) {
          throw new InputError(`Cannot show run folder "${given}": it does not exist`, { cause });
        }
        throw new InputError(
          `Cannot show run folder "${given}": ${(cause as Error).message}`,
          { cause },
        );
      }
      if (!info.isDirectory) {
        throw new InputError(`Cannot show run folder "${given}": it is not a folder`);
      }
      const kind = await folderKind(path);
      if (kind === "run") found.push({ path, real: await Deno.realPath(path) });
      else if (kind === "runs") found.push(...await childRuns(path));
      else {
        throw new InputError(
          `Cannot show run folder "${given}": it holds no run (no ${RUN_FILES.metrics} or ` +
            `${RUN_FILES.config}) and no folder of runs`,
        );
      }
    }
  }
  const seen = new Set<string>();
  const runs: RunInfo[] = [];
  for (const f of found) {
    if (seen.has(f.real)) continue;
    seen.add(f.real);
    runs.push(await describeRun(f.path, f.real, f.parent));
  }
  return runs;
}

/** The names in `dir`, sorted; none when it does not exist. */
async function folderNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) names.push(e.name);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) return [];
    throw cause;
  }
  return names.sort();
}

/** Whether `path` is a run folder, a folder of run folders, or neither. */
async function folderKind(path: string): Promise<"run" | "runs" | "none"> {
  if (!(await isDir(path))) return "none";
  if (await isRunFolder(path)) return "run";
  for (const name of await folderNames(path)) {
    if (await isRunFolder(join(path, name))) return "runs";
  }
  return "none";
}

async function isDir(path: string): Promise<boolean> {
  return await Deno.stat(path).then((i) => i.isDirectory, () => false);
}

async function isFile(path: string): Promise<boolean> {
  return await Deno.stat(path).then((i) => i.isFile, () => false);
}

async function isRunFolder(path: string): Promise<boolean> {
  return await isDir(path) &&
    (await isFile(join(path, RUN_FILES.metrics)) || await isFile(join(path, RUN_FILES.config)));
}

async function childRuns(dir: string): Promise<{ path: string; real: string; parent: string }[]> {
  const out = [];
  for (const name of await folderNames(dir)) {
    const path = join(dir, name);
    if (await isRunFolder(path)) out.push({ path, real: await Deno.realPath(path), parent: dir });
  }
  return out;
}

/** `mgrpo-seed3` → arm `mgrpo`, seed 3; `seed-1` → seed 1, the arm named by its folder. */
const SEED_NAME = /^(?:(.+?)-)?seed-?(\d+)$/;

async function describeRun(path: string, real: string, parent?: string): Promise<RunInfo> {
  const name = basename(real);
  const m = parent === undefined ? null : SEED_NAME.exec(basename(path));
  const arm = m ? (m[1] ?? basename(resolve(parent!))) : null;
  const config = await readConfig(path).catch(() => null);
  const history = await readHistory(path).catch(() => []);
  const steps = history.reduce((n, e) => e.kind === "step" ? Math.max(n, e.step) : n, 0);
  const run = (config?.["run"] ?? {}) as Record<string, unknown>;
  return {
    id: await runId(real),
    name,
    path,
    group: m && parent !== undefined ? `${basename(resolve(parent))}/${arm}` : null,
    arm,
    seed: m ? Number(m[2]) : null,
    algorithm: typeof config?.["algorithm"] === "string" ? config["algorithm"] : null,
    finished: await isFile(join(path, RUN_FILES.summary)),
    live: await isFile(join(path, RUN_FILES.control)),
    steps,
    totalSteps: typeof run["steps"] === "number" ? run["steps"] : null,
  };
}

/** The first 12 hex digits of the SHA-256 of `realPath`. */
async function runId(realPath: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(realPath));
  return [...new Uint8Array(digest).slice(0, 6)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

// --- files ---

/** The text of `path`, or `undefined` when it does not exist. */
async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) return undefined;
    throw new InputError(`Cannot read "${path}": ${(cause as Error).message}`, { cause });
  }
}

/**
 * The JSON object of every complete line of a JSON Lines `text` read from `path`, with its
 * line number. A last line without its newline that does not parse is still being written and
 * is left out.
 *
 * @throws {InputError} naming the file and line for a line that is not a JSON object
 */
function jsonLines(text: string, path: string): { line: number; value: Record<string, unknown> }[] {
  const lines = text.split("\n");
  const out = [];
  for (const [i, raw] of lines.entries()) {
    if (raw.trim() === "") continue;
    const last = i === lines.length - 1; // no newline after it
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (cause) {
      if (last) break;
      throw new InputError(
        `Cannot read "${path}": line ${i + 1} is not JSON (${(cause as Error).message}): ${
          JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}…` : raw)
        }`,
        { cause },
      );
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new InputError(`Cannot read "${path}": line ${i + 1} is not a JSON object`);
    }
    out.push({ line: i + 1, value: value as Record<string, unknown> });
  }
  return out;
}

/**
 * Parses the text of a `metrics.jsonl` read from `path`: one entry per line, `"eval"` for a
 * line with `eval/*` keys (the held-out evaluation after `step`; step 0 is the warm start's),
 * `"step"` otherwise. A metric written as `null` (a NaN, in JSON) is left out.
 *
 * @throws {InputError} naming the file, line and field of a line that is not a metrics record
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseMetrics } from "./run_files.ts";
 *
 * const text = '{"step":0,"eval/accuracy":0.5}\n{"step":1,"kl":0.01,"entropy":null}\n';
 * assert.deepEqual(parseMetrics(text, "m.jsonl"), [
 *   { kind: "eval", step: 0, time: null, metrics: { "eval/accuracy": 0.5 } },
 *   { kind: "step", step: 1, time: null, metrics: { kl: 0.01 } },
 * ]);
 * assert.throws(() => parseMetrics('{"step":1}\n{"step":"two"}\n', "m.jsonl"), {
 *   message: 'Cannot read "m.jsonl": line 2: field "step" must be an integer >= 0: current value is "two"',
 * });
 * ```
 */
export function parseMetrics(text: string, path: string): FileHistoryEntry[] {
  return jsonLines(text, path).map(({ line, value }) => {
    const step = value["step"];
    if (typeof step !== "number" || !Number.isInteger(step) || step < 0) {
      throw new InputError(
        `Cannot read "${path}": line ${line}: field "step" must be an integer >= 0: ` +
          `current value is ${JSON.stringify(step)}`,
      );
    }
    const metrics: Record<string, number> = {};
    let isEval = false;
    for (const [key, v] of Object.entries(value)) {
      if (key === "step" || v === null) continue;
      if (typeof v !== "number") {
        throw new InputError(
          `Cannot read "${path}": line ${line}: field "${key}" must be a number: current value is ${
            JSON.stringify(v)
          }`,
        );
      }
      metrics[key] = v;
      if (key.startsWith("eval/")) isEval = true;
    }
    return { kind: isEval ? "eval" : "step", step, time: null, metrics };
  });
}

/**
 * The entries of `<runDir>/metrics.jsonl` (none when it does not exist yet), in file order,
 * with times estimated from `environment.jsonl` (see {@linkcode FileHistoryEntry}).
 *
 * @throws {InputError} for a line that is not a metrics record (file and line named)
 */
export async function readHistory(runDir: string): Promise<FileHistoryEntry[]> {
  const path = join(runDir, RUN_FILES.metrics);
  const text = await readOptional(path);
  if (text === undefined) return [];
  const entries = parseMetrics(text, path);
  const starts = (await readEnvironment(runDir).catch(() => []))
    .map((e) => ({ at: Date.parse(String(e["started_at"])), step: Number(e["start_step"] ?? 0) }))
    .filter((s) => Number.isFinite(s.at) && Number.isFinite(s.step));
  // Each start of the run (a resume too) begins a segment: a step after its start step, or
  // the evaluation at it, is timed from that start.
  let segment = -1;
  let elapsed = 0;
  for (const entry of entries) {
    const at = starts.findLastIndex((s) =>
      entry.kind === "step" ? s.step < entry.step : s.step <= entry.step
    );
    if (at < 0) continue;
    if (at !== segment) [segment, elapsed] = [at, 0];
    if (entry.kind === "step") elapsed += entry.metrics["time/step"] ?? 0;
    entry.time = new Date(starts[at]!.at + elapsed * 1000).toISOString();
  }
  return entries;
}

/** `<runDir>/config.yaml` as an object, or `null` when the run has none. */
export async function readConfig(runDir: string): Promise<Record<string, unknown> | null> {
  const path = join(runDir, RUN_FILES.config);
  const text = await readOptional(path);
  if (text === undefined) return null;
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (cause) {
    throw new InputError(`Cannot read "${path}": ${(cause as Error).message}`, { cause });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InputError(`Cannot read "${path}": it is not a YAML mapping`);
  }
  return value as Record<string, unknown>;
}

/** `<runDir>/summary.json`, or `null` when the run has not finished. */
export async function readSummary(runDir: string): Promise<Record<string, unknown> | null> {
  const path = join(runDir, RUN_FILES.summary);
  const text = await readOptional(path);
  if (text === undefined) return null;
  try {
    const value = JSON.parse(text);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value;
  } catch (cause) {
    throw new InputError(`Cannot read "${path}": ${(cause as Error).message}`, { cause });
  }
  throw new InputError(`Cannot read "${path}": it is not a JSON object`);
}

/** The lines of `<runDir>/environment.jsonl` (one per start of the run), oldest first. */
export async function readEnvironment(runDir: string): Promise<Record<string, unknown>[]> {
  const path = join(runDir, RUN_FILES.environment);
  const text = await readOptional(path);
  return text === undefined ? [] : jsonLines(text, path).map((l) => l.value);
}
