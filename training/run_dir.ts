/**
 * Run folders that cannot be mixed up. A new run never writes into a folder that holds another
 * run: an explicit `--run-dir` that is not empty is refused unless the user asks to move the
 * old run aside (`--overwrite`, never a deletion); the default folder `<run.dir>/<run.name>`
 * becomes a fresh dated folder `<run.name>-<YYYYMMDD-HHMMSS>` with `<run.dir>/<run.name>` a
 * symbolic link to the newest one, so `--resume runs/<name>`, `deno task ctl --run-dir
 * runs/<name>` and paths such as `runs/<name>/checkpoint-16` keep finding the newest run.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { InputError } from "../util/errors.ts";

/** How a new run claims its folder (not used when resuming). */
export interface RunDirClaim {
  /** Move a non-empty folder aside (`<dir>.replaced-<stamp>`) instead of refusing. */
  readonly overwrite: boolean;
  /** The default folder's name to point at this run (`<run.dir>/<run.name>`), when dated. */
  readonly link?: string;
}

/** `YYYYMMDD-HHMMSS` of `date` in UTC. */
export function dateStamp(date: Date = new Date()): string {
  return date.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}

/** Whether `dir` exists and holds anything. */
async function nonEmpty(dir: string): Promise<boolean> {
  try {
    for await (const _ of Deno.readDir(dir)) return true;
    return false;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    if (e instanceof Deno.errors.NotADirectory) return true;
    throw e;
  }
}

/**
 * A fresh dated folder for a run whose default folder is `base` (`runs/tiny-mgrpo` →
 * `runs/tiny-mgrpo-20261206-051200`, with `-2`, `-3`, ... when that is taken).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { datedRunDir } from "./run_dir.ts";
 *
 * const dir = await datedRunDir("runs/x", new Date("2026-12-06T05:12:00Z"));
 * assert.equal(dir, "runs/x-20261206-051200");
 * ```
 */
export async function datedRunDir(base: string, now: Date = new Date()): Promise<string> {
  const stem = `${base.replace(/\/+$/, "")}-${dateStamp(now)}`;
  for (let k = 1;; k++) {
    const dir = k === 1 ? stem : `${stem}-${k}`;
    try {
      await Deno.lstat(dir);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return dir;
      throw e;
    }
  }
}

/**
 * Refuses a non-empty `runDir` for a new run unless `claim.overwrite`, before anything is
 * loaded or written.
 *
 * @throws {InputError} Naming the folder and the two ways on.
 */
export async function checkRunDir(runDir: string, claim: RunDirClaim): Promise<void> {
  if (claim.overwrite || !(await nonEmpty(runDir))) return;
  throw new InputError(
    `Cannot start a new run in "${runDir}": the folder is not empty (another run's config, ` +
      `metrics or checkpoints would be mixed with this one's); continue that run with ` +
      `--resume ${runDir}, choose another --run-dir, or pass --overwrite to move it aside ` +
      `(to ${runDir}.replaced-<time>, nothing is deleted)`,
  );
}

/**
 * Claims `runDir` for a new run, once everything was checked: moves a non-empty folder aside
 * (`overwrite`), creates it, and points `claim.link` at it. Returns where the old run went.
 */
export async function claimRunDir(runDir: string, claim: RunDirClaim): Promise<string | undefined> {
  await checkRunDir(runDir, claim);
  let aside: string | undefined;
  if (await nonEmpty(runDir)) {
    aside = `${runDir.replace(/\/+$/, "")}.replaced-${dateStamp()}`;
    for (let k = 2; await Deno.lstat(aside).then(() => true, () => false); k++) {
      aside = `${runDir.replace(/\/+$/, "")}.replaced-${dateStamp()}-${k}`;
    }
    await Deno.rename(runDir, aside);
  }
  await Deno.mkdir(runDir, { recursive: true });
  if (claim.link) await pointLink(claim.link, runDir);
  return aside;
}

/**
 * Makes `link` a symbolic link to `target` (a sibling folder), replacing an older link
 * atomically. A real folder at `link` (a run of the layout before dated folders) is left as it
 * is.
 */
async function pointLink(link: string, target: string): Promise<void> {
  const clean = link.replace(/\/+$/, "");
  try {
    const info = await Deno.lstat(clean);
    if (!info.isSymlink) return;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const tmp = join(dirname(clean), `.${basename(clean)}.link-${Deno.pid}`);
  await Deno.remove(tmp).catch(() => {});
  await Deno.symlink(basename(target), tmp);
  await Deno.rename(tmp, clean);
}

/**
 * The run folder `dir` names: itself when it exists (a dated folder, or the link to the newest
 * one), else the newest dated run of that name (`<dir>-<YYYYMMDD-HHMMSS>[-k]`), else `dir`
 * unchanged (for the caller's own "does not exist" message).
 */
export async function resolveRunDir(dir: string): Promise<string> {
  const clean = dir.replace(/\/+$/, "");
  if (await Deno.lstat(clean).then(() => true, () => false)) return clean;
  const parent = dirname(clean), name = basename(clean);
  const dated = new RegExp(
    `^${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}-(\\d{8}-\\d{6})(?:-(\\d+))?$`,
  );
  let best: { key: string; path: string } | undefined;
  try {
    for await (const e of Deno.readDir(parent)) {
      const m = dated.exec(e.name);
      if (!m || !e.isDirectory) continue;
      const key = `${m[1]}-${(m[2] ?? "1").padStart(6, "0")}`;
      if (!best || key > best.key) best = { key, path: join(parent, e.name) };
    }
  } catch {
    return clean;
  }
  return best?.path ?? clean;
}
