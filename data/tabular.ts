/**
 * Training problems from the files users have: Parquet (`task.kind: parquet`, read with
 * hyparquet: pure JavaScript, snappy built in, zstd/gzip/brotli/lz4 through
 * hyparquet-compressors) and Hugging Face datasets (`task.kind: hf`): a dataset id and split
 * from the local hub cache (`hf download <id> --repo-type dataset` lays Parquet files out under
 * `datasets--<org>--<name>/snapshots/<commit>/`), or a `Dataset.save_to_disk` folder (Arrow IPC
 * stream files, read with apache-arrow). Each record is then read and checked as a JSONL line is
 * ({@linkcode problemsFromRecords}).
 *
 * @module
 */
import { parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { tableFromIPC } from "apache-arrow";
import { join } from "node:path";
import {
  problemsFromRecords,
  type ProblemsJsonl,
  type ProblemsJsonlOptions,
} from "./jsonl_dataset.ts";
import { hfHubCache, hubRevision } from "../model/hf_cache.ts";
import { exists } from "../model/fs.ts";
import { InputError } from "../util/errors.ts";

/** Every record of a Parquet file, as plain objects (BigInt columns as numbers when safe). */
export async function readParquetRecords(path: string): Promise<Record<string, unknown>[]> {
  const bytes = await readBytes(path);
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file: file as ArrayBuffer, compressors });
  } catch (cause) {
    throw new InputError(
      `Cannot load dataset "${path}": not a Parquet file it can read: ${(cause as Error).message}`,
      { cause },
    );
  }
  return rows.map(plain);
}

/** Every record of an Arrow IPC file or stream (a `save_to_disk` shard). */
export async function readArrowRecords(path: string): Promise<Record<string, unknown>[]> {
  const bytes = await readBytes(path);
  let table;
  try {
    table = tableFromIPC(bytes);
  } catch (cause) {
    throw new InputError(
      `Cannot load dataset "${path}": not an Arrow file it can read: ${(cause as Error).message}`,
      { cause },
    );
  }
  const names = table.schema.fields.map((f) => f.name);
  const columns = names.map((n) => table.getChild(n)!);
  const rows: Record<string, unknown>[] = [];
  for (let i = 0; i < table.numRows; i++) {
    rows.push(plain(Object.fromEntries(names.map((n, c) => [n, columns[c]!.get(i)]))));
  }
  return rows;
}

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (cause) {
    const why = cause instanceof Deno.errors.NotFound
      ? "file not found"
      : cause instanceof Deno.errors.IsADirectory
      ? "the path is a folder, not a file"
      : `cannot read the file: ${(cause as Error).message}`;
    throw new InputError(`Cannot load dataset "${path}": ${why}`, { cause });
  }
}

function plain(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    out[k] = typeof v === "bigint" && Number.isSafeInteger(Number(v)) ? Number(v) : v;
  }
  return out;
}

/** The `.parquet` files of a folder (recursively), sorted; a file path as itself. */
async function parquetFiles(path: string): Promise<string[]> {
  const info = await Deno.stat(path).catch(() => undefined);
  if (!info?.isDirectory) return [path];
  const out: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.name.endsWith(".parquet")) out.push(p);
    }
  };
  await walk(path);
  if (out.length === 0) {
    throw new InputError(`Cannot load dataset "${path}": the folder holds no .parquet file`);
  }
  return out.sort();
}

/**
 * Problems from a Parquet file, or every `.parquet` file of a folder in name order.
 *
 * @throws {InputError} For a missing or unreadable file; bad records as for JSONL.
 */
export async function loadProblemsParquet(
  path: string,
  options: ProblemsJsonlOptions = {},
): Promise<ProblemsJsonl> {
  const records: Record<string, unknown>[] = [];
  for (const file of await parquetFiles(path)) records.push(...await readParquetRecords(file));
  return problemsFromRecords(records, path, options);
}

/** Where a Hugging Face dataset's split lives: its files, and how to read them. */
export interface HfDatasetFiles {
  readonly format: "parquet" | "arrow";
  readonly files: string[];
  /** The folder or snapshot read, for messages. */
  readonly source: string;
}

/**
 * The files of split `split` (and subset `subset`, the hub's config name such as GSM8K's
 * `main`) of the dataset `spec`: a `save_to_disk` folder (a `Dataset`: `state.json` beside
 * its `.arrow` shards; a `DatasetDict`: `dataset_dict.json` and one folder per split), or a
 * dataset id (`openai/gsm8k`, optionally `@revision`) from the hub cache, whose Parquet files
 * for the split are `<subset>/<split>-*.parquet`, `data/<split>-*.parquet`,
 * `<split>-*.parquet` or `<subset>/<split>/*.parquet`.
 *
 * @throws {InputError} When the folder is not a dataset, or the id or split is not cached
 * (with the `hf download` command).
 */
export async function hfDatasetFiles(
  spec: string,
  split: string,
  subset?: string,
  cache: string = hfHubCache(),
): Promise<HfDatasetFiles> {
  const info = await Deno.stat(spec).catch(() => undefined);
  if (info?.isDirectory) {
    if (await exists(join(spec, "dataset_dict.json"))) {
      return await hfDatasetFiles(join(spec, split), split, subset, cache).catch((cause) => {
        throw new InputError(
          `Cannot load dataset "${spec}": the DatasetDict has no split "${split}" (task.split)`,
          { cause },
        );
      });
    }
    if (await exists(join(spec, "state.json"))) {
      const state = JSON.parse(await Deno.readTextFile(join(spec, "state.json")));
      const files = ((state._data_files ?? []) as { filename: string }[])
        .map((f) => join(spec, f.filename));
      if (files.length === 0) {
        throw new InputError(`Cannot load dataset "${spec}": its state.json lists no data files`);
      }
      return { format: "arrow", files, source: spec };
    }
    throw new InputError(
      `Cannot load dataset "${spec}": the folder is not a saved dataset (no state.json or ` +
        "dataset_dict.json, as Dataset.save_to_disk writes)",
    );
  }
  const m = /^([A-Za-z0-9][\w.-]*\/[\w.-]+|[A-Za-z0-9][\w.-]*)(?:@([\w.\-\/]+))?$/.exec(spec);
  if (!m) {
    throw new InputError(
      `Cannot load dataset "${spec}": it is neither a folder nor a dataset id such as openai/gsm8k`,
    );
  }
  const [, id, revision] = m;
  const download = `hf download ${id} --repo-type dataset${
    revision ? ` --revision ${revision}` : ""
  }`;
  const repo = join(cache, `datasets--${id!.replaceAll("/", "--")}`);
  const snapshot = hubRevision(repo, revision ?? "main");
  if (snapshot === undefined) {
    throw new InputError(
      `Cannot find the dataset "${id}"${revision ? ` at revision "${revision}"` : ""} in the ` +
        `Hugging Face cache ${cache} (it is not a folder here either); download it with: ${download}`,
    );
  }
  const all = await parquetFiles(snapshot).catch(() => [] as string[]);
  const rel = all.map((f) => f.slice(snapshot.length + 1));
  const wanted = (r: string) => {
    const parts = r.split("/");
    const name = parts.at(-1)!;
    const dir = parts.slice(0, -1);
    const splitFile = name === `${split}.parquet` || name.startsWith(`${split}-`);
    if (subset !== undefined) {
      return (dir[0] === subset && splitFile && dir.length === 1) ||
        (dir[0] === subset && dir[1] === split);
    }
    return (splitFile && (dir.length <= 1)) || dir.at(-1) === split;
  };
  const files = all.filter((_, i) => wanted(rel[i]!));
  if (files.length === 0) {
    throw new InputError(
      `Cannot load split "${split}"${subset ? ` of subset "${subset}"` : ""} of the dataset ` +
        `"${id}": the cached snapshot ${snapshot} has no Parquet file for it (it has: ${
          rel.join(", ") || "none"
        }); set task.split / task.subset, or download it with: ${download}`,
    );
  }
  return { format: "parquet", files, source: snapshot };
}

/**
 * Problems from a Hugging Face dataset (see {@linkcode hfDatasetFiles}).
 *
 * @throws {InputError} As {@linkcode hfDatasetFiles}; bad records as for JSONL.
 */
export async function loadProblemsHf(
  spec: string,
  split: string,
  subset: string | undefined,
  options: ProblemsJsonlOptions = {},
): Promise<ProblemsJsonl> {
  const { format, files } = await hfDatasetFiles(spec, split, subset);
  const records: Record<string, unknown>[] = [];
  for (const file of files) {
    records.push(
      ...await (format === "parquet" ? readParquetRecords(file) : readArrowRecords(file)),
    );
  }
  return problemsFromRecords(records, `${spec}[${subset ? `${subset}/` : ""}${split}]`, options);
}
