/**
 * Policy checkpoints as a folder: `config.json` (the architecture, Hugging Face field names),
 * `model.safetensors` (weights in Hugging Face layout), `tokenizer.json` and an optional
 * `trainer_state.json`. A save writes a temporary sibling folder, fsyncs every file, then
 * renames it into place, so a reader sees the old checkpoint or the new one, never a mix.
 * `manifest.json` lists the size and SHA-256 of every other file; {@link loadCheckpoint}
 * verifies it and names a missing, truncated or altered file.
 *
 * Crash safety (SIGKILL at any moment, tests/model/checkpoint_kill_test.ts): a save works in
 * `<dir>.tmp-<pid>-<ms>`; replacing an existing `<dir>` moves it aside to `<dir>.old-<pid>-<ms>`
 * for the instant between two renames (POSIX has no portable atomic swap of two folders);
 * {@link removeCheckpoint} renames to `<dir>.del-<pid>-<ms>` before deleting, so no half-deleted
 * checkpoint is ever visible. A process killed in any of these leaves such a sibling behind:
 * {@link loadCheckpoint} of a missing `<dir>` reads its complete moved-aside copy, and
 * {@link repairCheckpoints} (run by every save on its parent folder) moves that copy back and
 * deletes the other leftovers of dead processes. After the rename the parent folder is fsynced
 * too (open it read-only, `fsync`: works on Linux and macOS; Windows cannot open a folder, so
 * there it is skipped), so the new name also survives a power cut, not only a killed process.
 *
 * @module
 */
import { Transformer } from "./transformer.ts";
import { exists, swapIntoPlace, syncDir, writeSynced } from "./fs.ts";
import { hasLoraAdapter, loadLoraAdapter, loraAdapterFiles } from "./lora.ts";
import { ModelConfigSchema } from "./model_config.ts";
import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
import { CharTokenizer } from "./char_tokenizer.ts";
import { type Tokenizer } from "./tokenizer.ts";
import { loadHfModel, toHfConfig } from "./hf.ts";
import { loadHfTokenizer } from "./hf_tokenizer.ts";

/** What {@link loadCheckpoint} returns. */
export interface LoadedCheckpoint {
  model: Transformer;
  /** The embedded character tokenizer, or a Hugging Face one (`tokenizer.json` of a model). */
  tokenizer: Tokenizer;
  /** Free-form JSON stored beside the weights (step, metrics...). */
  state: Record<string, unknown>;
}

/** File of a checkpoint folder that lists every other file's size and SHA-256. */
export const MANIFEST_FILE = "manifest.json";

/** What `manifest.json` holds. */
export interface CheckpointManifest {
  /** `"mgrpo-checkpoint/1"`. */
  format: string;
  /** Every other file of the folder: its size in bytes and SHA-256 (lower-case hex). */
  files: Record<string, { size: number; sha256: string }>;
}

async function sha256Hex(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Options of {@linkcode verifyCheckpoint} and {@linkcode loadCheckpoint}. */
export interface VerifyOptions {
  /**
   * Load a checkpoint of ours (it has `trainer_state.json`) that has no manifest, or an empty
   * one, unverified. Also set by the environment variable `MGRPO_ALLOW_UNVERIFIED=1`.
   * @default false
   */
  allowUnverified?: boolean;
}

/** The environment variable that lets an unverifiable checkpoint of ours load. */
export const ALLOW_UNVERIFIED_ENV = "MGRPO_ALLOW_UNVERIFIED";

function unverifiedAllowed(options: VerifyOptions): boolean {
  if (options.allowUnverified) return true;
  try {
    return Deno.env.get(ALLOW_UNVERIFIED_ENV) === "1";
  } catch {
    return false; // no --allow-env
  }
}

/**
 * Checks the files of checkpoint folder `dir` against its `manifest.json`. Every checkpoint
 * this project writes has one; a folder without one passes only when it is not ours (no
 * `trainer_state.json`: a Hugging Face download). One of ours with a missing or empty manifest
 * cannot be checked, so it is refused unless `allowUnverified` (or `MGRPO_ALLOW_UNVERIFIED=1`).
 *
 * @throws {Error} naming the folder and the first missing, resized or altered file, or a
 * malformed, missing or empty manifest
 */
export async function verifyCheckpoint(dir: string, options: VerifyOptions = {}): Promise<void> {
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(`${dir}/${MANIFEST_FILE}`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const ours = await exists(`${dir}/trainer_state.json`);
  const empty = text !== undefined && ["", "{}"].includes(text.replace(/\s+/g, ""));
  if (text === undefined || empty) {
    if (!ours || unverifiedAllowed(options)) return;
    throw new Error(
      `Cannot load checkpoint "${dir}": it was written by mgrpo (it has trainer_state.json) but ` +
        `its ${MANIFEST_FILE} is ${text === undefined ? "missing" : "empty"}, so its files ` +
        `cannot be verified; to load it anyway, set ${ALLOW_UNVERIFIED_ENV}=1`,
    );
  }
  let manifest: CheckpointManifest;
  try {
    manifest = JSON.parse(text);
  } catch (cause) {
    throw new SyntaxError(`Cannot load checkpoint "${dir}": "${MANIFEST_FILE}" is not valid JSON`, {
      cause,
    });
  }
  if (typeof manifest?.files !== "object" || manifest.files === null) {
    throw new TypeError(
      `Cannot load checkpoint "${dir}": "${MANIFEST_FILE}" has no "files" object`,
    );
  }
  if (Object.keys(manifest.files).length === 0 && ours && !unverifiedAllowed(options)) {
    throw new Error(
      `Cannot load checkpoint "${dir}": it was written by mgrpo (it has trainer_state.json) but ` +
        `its ${MANIFEST_FILE} lists no files, so they cannot be verified; to load it anyway, ` +
        `set ${ALLOW_UNVERIFIED_ENV}=1`,
    );
  }
  for (const [name, expected] of Object.entries(manifest.files)) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(`${dir}/${name}`);
    } catch (cause) {
      throw new Error(
        `Cannot load checkpoint "${dir}": file "${name}" listed in ${MANIFEST_FILE} cannot be read: ${
          (cause as Error).message
        }`,
        { cause },
      );
    }
    if (bytes.length !== expected.size) {
      throw new Error(
        `Cannot load checkpoint "${dir}": file "${name}" is corrupt: it has ${bytes.length} bytes, ` +
          `${MANIFEST_FILE} says ${expected.size}`,
      );
    }
    const actual = await sha256Hex(bytes);
    if (actual !== expected.sha256) {
      throw new Error(
        `Cannot load checkpoint "${dir}": file "${name}" is corrupt: its SHA-256 is ${actual}, ` +
          `${MANIFEST_FILE} says ${expected.sha256}`,
      );
    }
  }
}

/**
 * Writes `manifest.json` for the files of checkpoint folder `dir` as they are now (each file's
 * size and SHA-256, as {@linkcode saveCheckpoint} does), replacing any manifest there: for a
 * checkpoint edited on purpose, or one saved before every checkpoint carried a manifest.
 */
export async function writeManifest(dir: string): Promise<void> {
  const files: Record<string, { size: number; sha256: string }> = {};
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name !== MANIFEST_FILE) names.push(e.name);
  }
  for (const name of names.sort()) {
    const bytes = await Deno.readFile(`${dir}/${name}`);
    files[name] = { size: bytes.length, sha256: await sha256Hex(bytes) };
  }
  const manifest: CheckpointManifest = { format: "mgrpo-checkpoint/1", files };
  const path = `${dir}/${MANIFEST_FILE}`;
  await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(manifest, null, 2) + "\n");
  await Deno.rename(`${path}.tmp`, path);
}

/** A sibling that a save, replace or removal leaves while it runs: base, kind, pid, time. */
const LEFTOVER = /^(.+)\.(tmp|old|del)-(\d+)-(\d+)$/;

/** Splits a path without trailing slashes into its parent folder and its name. */
function splitPath(path: string): [parent: string, name: string] {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i < 0 ? [".", path] : [i === 0 ? path.slice(0, 1) : path.slice(0, i), path.slice(i + 1)];
}

/**
 * Whether process `pid` may still be running. Linux answers through `/proc`; elsewhere, or
 * without permission to read it, every other process counts as running, so nothing of theirs
 * is touched.
 */
async function mayBeRunning(pid: number): Promise<boolean> {
  if (pid === Deno.pid) return true;
  try {
    await Deno.stat(`/proc/${pid}`);
    return true;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) return true;
  }
  try {
    await Deno.stat("/proc/self");
    return false;
  } catch {
    return true;
  }
}

/** Whether `dir` holds a manifest and every file matches it. */
async function isComplete(dir: string): Promise<boolean> {
  try {
    await Deno.stat(`${dir}/${MANIFEST_FILE}`);
    await verifyCheckpoint(dir);
    return true;
  } catch {
    return false;
  }
}

/** The complete moved-aside copies of checkpoint `dir` (`<dir>.old-*`), newest first. */
async function asideCopies(dir: string): Promise<string[]> {
  const [parent, name] = splitPath(dir);
  const found: { path: string; ms: number }[] = [];
  try {
    for await (const e of Deno.readDir(parent)) {
      const m = LEFTOVER.exec(e.name);
      if (e.isDirectory && m && m[1] === name && m[2] === "old") {
        found.push({ path: `${parent}/${e.name}`, ms: Number(m[4]) });
      }
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const complete: string[] = [];
  for (const { path } of found.sort((a, b) => b.ms - a.ms)) {
    if (await isComplete(path)) complete.push(path);
  }
  return complete;
}

/** What {@link repairCheckpoints} did. */
export interface CheckpointRepair {
  /** Checkpoint folders moved back from their complete moved-aside copy. */
  restored: string[];
  /** Leftover temporary, moved-aside and half-deleted folders deleted. */
  removed: string[];
}

/**
 * Cleans up after processes killed while saving into folder `parent`: a checkpoint that was
 * moved aside to be replaced (`<name>.old-<pid>-<ms>`) and whose replacement never arrived is
 * moved back to `<name>` (when its files match its manifest); every other leftover of a dead
 * process (`.tmp-`, `.old-` and `.del-` folders) is deleted. Folders of processes that may
 * still run are left alone. {@link saveCheckpoint} runs it on its parent folder; a resume can
 * run it on the run folder before it looks for the newest checkpoint.
 * @example
 * ```ts ignore
 * await repairCheckpoints("runs/x");
 * ```
 */
export async function repairCheckpoints(parent: string): Promise<CheckpointRepair> {
  const repair: CheckpointRepair = { restored: [], removed: [] };
  const leftovers: { name: string; base: string; kind: string; ms: number }[] = [];
  try {
    for await (const e of Deno.readDir(parent)) {
      const m = LEFTOVER.exec(e.name);
      if (!e.isDirectory || !m || await mayBeRunning(Number(m[3]))) continue;
      leftovers.push({ name: e.name, base: m[1]!, kind: m[2]!, ms: Number(m[4]) });
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return repair;
    throw e;
  }
  leftovers.sort((a, b) => b.ms - a.ms); // newest moved-aside copy first
  for (const { name, base, kind } of leftovers) {
    const path = `${parent}/${name}`, target = `${parent}/${base}`;
    if (kind === "old" && !(await exists(target)) && await isComplete(path)) {
      await Deno.rename(path, target);
      await syncDir(parent);
      repair.restored.push(target);
    } else {
      await Deno.remove(path, { recursive: true });
      repair.removed.push(path);
    }
  }
  return repair;
}

/**
 * Deletes checkpoint folder `dir` so that a crash cannot leave it half-deleted: it is first
 * renamed to `<dir>.del-<pid>-<ms>`, which {@link repairCheckpoints} finishes deleting if this
 * process dies. Use it, not `Deno.remove`, for `keep_last` pruning.
 *
 * @throws {Deno.errors.NotFound} when `dir` does not exist
 * @example
 * ```ts ignore
 * await removeCheckpoint("runs/x/checkpoint-10");
 * ```
 */
export async function removeCheckpoint(dir: string): Promise<void> {
  const clean = dir.replace(/\/+$/, "");
  const doomed = `${clean}.del-${Deno.pid}-${Date.now()}`;
  await Deno.rename(clean, doomed);
  await Deno.remove(doomed, { recursive: true });
}

/**
 * Saves `model`, `tokenizer`, `state` and any `extraFiles` (name → bytes, e.g. the
 * optimizer state) to the folder `dir` atomically: killed at any moment, it leaves the old
 * checkpoint or the new one (possibly as a moved-aside copy, see {@link repairCheckpoints},
 * which it first runs on the parent folder, best effort). One process at a time may write a
 * given folder.
 * @example
 * ```ts ignore
 * await saveCheckpoint("runs/x/checkpoint-10", model, tokenizer, { step: 10 });
 * ```
 */
export async function saveCheckpoint(
  dir: string,
  model: Transformer,
  tokenizer: Tokenizer,
  state: Record<string, unknown> = {},
  extraFiles: Record<string, Uint8Array> = {},
): Promise<void> {
  const clean = dir.replace(/\/+$/, "");
  const [parent] = splitPath(clean);
  // Housekeeping only: a folder it cannot repair must not stop a training run from saving.
  await repairCheckpoints(parent).catch(() => {});
  const tmp = `${clean}.tmp-${Deno.pid}-${Date.now()}`;
  await Deno.mkdir(tmp, { recursive: true });
  try {
    const enc = new TextEncoder();
    const files: CheckpointManifest["files"] = {};
    const put = async (name: string, bytes: Uint8Array) => {
      await writeSynced(`${tmp}/${name}`, bytes);
      files[name] = { size: bytes.length, sha256: await sha256Hex(bytes) };
    };
    // The embedded model keeps its compact config; a Hugging Face model gets the config.json
    // transformers reads, so a checkpoint of it is a model folder transformers and vLLM load.
    const config = tokenizer instanceof CharTokenizer
      ? {
        architectures: ["Qwen2ForCausalLM"],
        model_type: "qwen2",
        torch_dtype: "float32",
        ...model.config,
      }
      : toHfConfig(model.config, {
        eosTokenId: [...tokenizer.stopIds],
        padTokenId: tokenizer.padId,
      });
    await put("config.json", enc.encode(JSON.stringify(config, null, 2) + "\n"));
    const weights = await model.exportWeights();
    // Under LoRA the base weights go to model.safetensors and the adapters to a PEFT adapter
    // beside them, so the folder is a base model plus an adapter that vLLM and PEFT load.
    for (const name of weights.keys()) if (/\.lora_[AB]\.weight$/.test(name)) weights.delete(name);
    await put("model.safetensors", encodeSafetensors(weights, { format: "pt" }));
    if (model.lora) {
      for (const [name, bytes] of Object.entries(await loraAdapterFiles(model))) {
        await put(name, bytes);
      }
    }
    for (const [name, text] of Object.entries(tokenizer.files())) {
      await put(name, enc.encode(text));
    }
    await put("trainer_state.json", enc.encode(JSON.stringify(state, null, 2) + "\n"));
    for (const [name, bytes] of Object.entries(extraFiles)) await put(name, bytes);
    const manifest: CheckpointManifest = { format: "mgrpo-checkpoint/1", files };
    await writeSynced(
      `${tmp}/${MANIFEST_FILE}`,
      enc.encode(JSON.stringify(manifest, null, 2) + "\n"),
    );
    await swapIntoPlace(tmp, clean, parent);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * Loads a checkpoint folder written by {@link saveCheckpoint}, after checking its files
 * against `manifest.json` ({@link verifyCheckpoint}). Errors name the folder and file. When
 * `dir` is missing because a process was killed while replacing it, its complete moved-aside
 * copy (`<dir>.old-*`) is read instead.
 */
export async function loadCheckpoint(
  dir: string,
  options: { trainable?: boolean } & VerifyOptions = {},
): Promise<LoadedCheckpoint> {
  const clean = dir.replace(/\/+$/, "");
  if (!(await exists(clean))) dir = (await asideCopies(clean))[0] ?? dir;
  await verifyCheckpoint(dir, options);
  const read = async (name: string) => {
    try {
      return await Deno.readFile(`${dir}/${name}`);
    } catch (cause) {
      throw new Error(
        `Cannot load checkpoint "${dir}": cannot read "${name}": ${(cause as Error).message}`,
        {
          cause,
        },
      );
    }
  };
  const dec = new TextDecoder();
  const parseJson = (name: string, bytes: Uint8Array) => {
    try {
      return JSON.parse(dec.decode(bytes));
    } catch (cause) {
      throw new SyntaxError(`Cannot load checkpoint "${dir}": "${name}" is not valid JSON`, {
        cause,
      });
    }
  };
  let state: Record<string, unknown> = {};
  try {
    state = parseJson("trainer_state.json", await Deno.readFile(`${dir}/trainer_state.json`));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const rawConfig = parseJson("config.json", await read("config.json"));
  const tokenizerJson = parseJson("tokenizer.json", await read("tokenizer.json"));
  if (tokenizerJson?.type !== "char") {
    // A Hugging Face model folder (downloaded, or a checkpoint of a run that trains one).
    const tokenizer = await loadHfTokenizer(dir);
    const { model } = await loadHfModel(dir, { trainable: options.trainable ?? true });
    if (await hasLoraAdapter(dir)) await loadLoraAdapter(dir, model);
    return { model, tokenizer, state };
  }
  const { architectures: _a, model_type: _m, torch_dtype: _t, ...fields } = rawConfig;
  const parsed = ModelConfigSchema.safeParse(fields);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new TypeError(
      `Cannot load checkpoint "${dir}": config.json field "${
        issue.path.join(".")
      }" ${issue.message}`,
    );
  }
  const { tensors } = decodeSafetensors(
    await read("model.safetensors"),
    `${dir}/model.safetensors`,
  );
  const tokenizer = CharTokenizer.fromJSON(tokenizerJson);
  let model: Transformer;
  try {
    model = Transformer.fromWeights(parsed.data, tensors, options);
  } catch (e) {
    throw new TypeError(`Cannot load checkpoint "${dir}": ${(e as Error).message}`, { cause: e });
  }
  if (await hasLoraAdapter(dir)) await loadLoraAdapter(dir, model);
  return { model, tokenizer, state };
}
