/**
 * Policy checkpoints as a folder: `config.json` (the architecture, Hugging Face field names),
 * `model.safetensors` (weights in Hugging Face layout), `tokenizer.json` and an optional
 * `trainer_state.json`. A save writes a temporary sibling folder, fsyncs every file, then
 * renames it into place, so a reader sees the old checkpoint or the new one, never a mix.
 * `manifest.json` lists the size and SHA-256 of every other file; {@link loadCheckpoint}
 * verifies it and names a missing, truncated or altered file.
 *
 * @module
 */
import { Transformer } from "./transformer.ts";
import { ModelConfigSchema } from "./model_config.ts";
import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
import { CharTokenizer } from "./char_tokenizer.ts";

/** What {@link loadCheckpoint} returns. */
export interface LoadedCheckpoint {
  model: Transformer;
  tokenizer: CharTokenizer;
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

/**
 * Checks the files of checkpoint folder `dir` against its `manifest.json`. A folder without
 * a manifest (a Hugging Face download, an older checkpoint) passes.
 *
 * @throws {Error} naming the folder and the first missing, resized or altered file, or a
 * malformed manifest
 */
export async function verifyCheckpoint(dir: string): Promise<void> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/${MANIFEST_FILE}`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
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

async function writeSynced(path: string, data: Uint8Array): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    let written = 0;
    while (written < data.length) written += await file.write(data.subarray(written));
    await file.sync();
  } finally {
    file.close();
  }
}

/**
 * Saves `model`, `tokenizer`, `state` and any `extraFiles` (name → bytes, e.g. the
 * optimizer state) to the folder `dir` atomically.
 * @example
 * ```ts ignore
 * await saveCheckpoint("runs/x/checkpoint-10", model, tokenizer, { step: 10 });
 * ```
 */
export async function saveCheckpoint(
  dir: string,
  model: Transformer,
  tokenizer: CharTokenizer,
  state: Record<string, unknown> = {},
  extraFiles: Record<string, Uint8Array> = {},
): Promise<void> {
  const clean = dir.replace(/\/+$/, "");
  const tmp = `${clean}.tmp-${Deno.pid}-${Date.now()}`;
  await Deno.mkdir(tmp, { recursive: true });
  try {
    const enc = new TextEncoder();
    const files: CheckpointManifest["files"] = {};
    const put = async (name: string, bytes: Uint8Array) => {
      await writeSynced(`${tmp}/${name}`, bytes);
      files[name] = { size: bytes.length, sha256: await sha256Hex(bytes) };
    };
    const config = {
      architectures: ["Qwen2ForCausalLM"],
      model_type: "qwen2",
      torch_dtype: "float32",
      ...model.config,
    };
    await put("config.json", enc.encode(JSON.stringify(config, null, 2) + "\n"));
    const weights = await model.exportWeights();
    await put("model.safetensors", encodeSafetensors(weights, { format: "pt" }));
    await put("tokenizer.json", enc.encode(JSON.stringify(tokenizer.toJSON(), null, 2) + "\n"));
    await put("trainer_state.json", enc.encode(JSON.stringify(state, null, 2) + "\n"));
    for (const [name, bytes] of Object.entries(extraFiles)) await put(name, bytes);
    const manifest: CheckpointManifest = { format: "mgrpo-checkpoint/1", files };
    await writeSynced(
      `${tmp}/${MANIFEST_FILE}`,
      enc.encode(JSON.stringify(manifest, null, 2) + "\n"),
    );
    // Swap into place: move the old folder aside, rename, then delete the old one.
    let aside: string | undefined;
    try {
      await Deno.stat(clean);
      aside = `${clean}.old-${Deno.pid}-${Date.now()}`;
      await Deno.rename(clean, aside);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    await Deno.rename(tmp, clean);
    if (aside) await Deno.remove(aside, { recursive: true });
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * Loads a checkpoint folder written by {@link saveCheckpoint}, after checking its files
 * against `manifest.json` ({@link verifyCheckpoint}). Errors name the folder and file.
 */
export async function loadCheckpoint(
  dir: string,
  options: { trainable?: boolean } = {},
): Promise<LoadedCheckpoint> {
  await verifyCheckpoint(dir);
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
  const rawConfig = parseJson("config.json", await read("config.json"));
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
  const tokenizer = CharTokenizer.fromJSON(
    parseJson("tokenizer.json", await read("tokenizer.json")),
  );
  let state: Record<string, unknown> = {};
  try {
    state = parseJson("trainer_state.json", await Deno.readFile(`${dir}/trainer_state.json`));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  let model: Transformer;
  try {
    model = Transformer.fromWeights(parsed.data, tensors, options);
  } catch (e) {
    throw new TypeError(`Cannot load checkpoint "${dir}": ${(e as Error).message}`, { cause: e });
  }
  return { model, tokenizer, state };
}
