/**
 * TensorBoard event files, written as a run goes (`run.report_to: [tensorboard]`): the same
 * `events.out.tfevents.<time>.<host>.<pid>.<n>` files that TRL's TensorBoard callback
 * (`torch.utils.tensorboard.SummaryWriter`) writes, with one `simple_value` scalar per
 * `metrics.jsonl` key and the step's sample groups (`samples.jsonl`) for the text plugin.
 *
 * The format is written by hand, without a protobuf library: TFRecord framing (little-endian
 * uint64 length, masked CRC32C of the length, the data, masked CRC32C of the data) around
 * `tensorboard.Event` messages (`tensorboard/compat/proto/event.proto`, `summary.proto`,
 * `tensor.proto`). Fields are written in field-number order and proto3 defaults are left out,
 * as the protobuf library does, so a record is byte for byte the one the `tensorboard`
 * package's `EventFileWriter` writes for the same event
 * (`tests/fixtures/tensorboard/`, `tools/tensorboard_golden.py`).
 *
 * @example A step's scalars and its start event, framed as TensorBoard reads them
 * ```ts
 * import assert from "node:assert/strict";
 * import { crc32c, encodeEvent, frameRecord } from "./tensorboard.ts";
 *
 * assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
 * const data = encodeEvent({ wallTime: 1, step: 3, summary: [{ tag: "kl", simpleValue: 0.5 }] });
 * const record = frameRecord(data);
 * assert.equal(record.length, 8 + 4 + data.length + 4);
 * ```
 *
 * @module
 */
import type { SampleCompletion, SampleGroup } from "../actors/messages.ts";

/** One value of a `tensorboard.Summary`: a scalar (`simple_value`) or a text-plugin string. */
export type SummaryValue =
  | { readonly tag: string; readonly simpleValue: number }
  | { readonly tag: string; readonly text: string };

/** The fields of a `tensorboard.Event` this module writes. */
export interface TensorBoardEvent {
  /** Seconds since the epoch. */
  readonly wallTime: number;
  /** The global step (a non-negative integer). @default 0 */
  readonly step?: number;
  /** `"brain.Event:2"` in a file's first event. @default none */
  readonly fileVersion?: string;
  /** Scalars and texts logged at `step`. @default none */
  readonly summary?: readonly SummaryValue[];
  /**
   * A `SessionLog` status: `start` at step N tells a reader to drop the records of earlier
   * files with step >= N (TensorBoard's `purge_step`).
   * @default none
   */
  readonly sessionStatus?: "start" | "stop" | "checkpoint";
  /** `SourceMetadata.writer`: the program that wrote the file. @default none */
  readonly sourceWriter?: string;
}

/** The `file_version` of every file's first event. */
export const FILE_VERSION = "brain.Event:2";

/** The text summary of a step's samples. */
export const SAMPLES_TAG = "samples";

const SESSION_STATUS = { start: 1, stop: 2, checkpoint: 3 } as const;
const DT_STRING = 7;
const CRC32C_TABLE = crcTable(0x82f63b78);

function crcTable(polynomial: number): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ polynomial : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/**
 * CRC-32C (Castagnoli), the checksum of TFRecord framing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { crc32c } from "./tensorboard.ts";
 *
 * assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
 * ```
 */
export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) crc = CRC32C_TABLE[(crc ^ b) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC-32C: rotated right by 15 bits plus `0xa282ead8`, modulo 2^32. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c(bytes);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/**
 * One TFRecord: the data's length (uint64, little-endian), the masked CRC-32C of those 8
 * bytes, the data, the masked CRC-32C of the data.
 */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + 4 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** Protobuf wire format, the few field kinds the event messages use. */
class ProtoWriter {
  #bytes: number[] = [];

  varint(field: number, value: number): this {
    return this.#key(field, 0).#varint(value);
  }

  double(field: number, value: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, true);
    this.#key(field, 1).#bytes.push(...b);
    return this;
  }

  float(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.#key(field, 5).#bytes.push(...b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.#key(field, 2).#varint(value.length);
    for (const b of value) this.#bytes.push(b);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  #key(field: number, wireType: number): this {
    return this.#varint(field * 8 + wireType);
  }

  #varint(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`Cannot encode a varint: current value is ${value}`);
    }
    let n = value;
    while (n >= 0x80) {
      this.#bytes.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.#bytes.push(n);
    return this;
  }
}

/** `Summary.Value`: `tag` (1), `simple_value` (2) or `tensor` (8) with `metadata` (9). */
function encodeValue(value: SummaryValue): Uint8Array {
  const w = new ProtoWriter().string(1, value.tag);
  if ("simpleValue" in value) return w.float(2, value.simpleValue).finish();
  // A scalar DT_STRING tensor (`dtype` 1, an empty `tensor_shape` 2, `string_val` 8) and the
  // text plugin's metadata: `plugin_data { plugin_name: "text" }` (its TextPluginData,
  // version 0, encodes to no bytes).
  const tensor = new ProtoWriter().varint(1, DT_STRING).bytes(2, new Uint8Array())
    .string(8, value.text).finish();
  const pluginData = new ProtoWriter().string(1, "text").finish();
  const metadata = new ProtoWriter().bytes(1, pluginData).finish();
  return w.bytes(8, tensor).bytes(9, metadata).finish();
}

/**
 * Encodes a `tensorboard.Event`: `wall_time` (1), `step` (2), `file_version` (3), `summary`
 * (5), `session_log` (7), `source_metadata` (10), each left out at its default.
 *
 * @throws {RangeError} For a step that is not a non-negative integer.
 */
export function encodeEvent(event: TensorBoardEvent): Uint8Array {
  const w = new ProtoWriter();
  if (event.wallTime !== 0) w.double(1, event.wallTime);
  if (event.step) w.varint(2, event.step);
  if (event.fileVersion) w.string(3, event.fileVersion);
  if (event.summary) {
    const summary = new ProtoWriter();
    for (const value of event.summary) summary.bytes(1, encodeValue(value));
    w.bytes(5, summary.finish());
  }
  if (event.sessionStatus) {
    w.bytes(7, new ProtoWriter().varint(1, SESSION_STATUS[event.sessionStatus]).finish());
  }
  if (event.sourceWriter) {
    w.bytes(10, new ProtoWriter().string(1, event.sourceWriter).finish());
  }
  return w.finish();
}

/** Options of {@linkcode TensorBoardWriter.create}. */
export interface TensorBoardWriterOptions {
  /**
   * Start the file with a `SessionLog` START at this step, after `file_version`: readers drop
   * what earlier files logged at this step and later (a resumed run's steps after its
   * checkpoint). TensorBoard's server (`plugin_event_accumulator`) takes the first START of a
   * run for its beginning and purges only at later ones, so a new run writes one as well.
   * @default no START
   */
  readonly purgeStep?: number;
  /** Seconds since the epoch, for each event's `wall_time`. @default Date.now() / 1000 */
  readonly clock?: () => number;
}

let filesOpened = 0;

/**
 * Writes one event file in a log folder, each event on disk as soon as it is written (no
 * buffer: a run killed at any point leaves every step it logged).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TensorBoardWriter } from "./tensorboard.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const writer = await TensorBoardWriter.create(`${dir}/tb`);
 * await writer.writeMetrics({ step: 1, "reward/mean": 0.5, kl: 0.01 });
 * writer.close();
 * assert.match(writer.path, /\/tb\/events\.out\.tfevents\.\d{10}\..+\.\d+\.\d+$/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class TensorBoardWriter {
  /** The event file. */
  readonly path: string;
  readonly #file: Deno.FsFile;
  readonly #clock: () => number;
  #closed = false;

  private constructor(path: string, file: Deno.FsFile, clock: () => number) {
    this.path = path;
    this.#file = file;
    this.#clock = clock;
  }

  /**
   * Creates `<logDir>/events.out.tfevents.<time>.<host>.<pid>.<n>` (the folder too) and writes
   * its first event, `file_version`, then the purge step's START if there is one.
   */
  static async create(
    logDir: string,
    options: TensorBoardWriterOptions = {},
  ): Promise<TensorBoardWriter> {
    const clock = options.clock ?? (() => Date.now() / 1000);
    await Deno.mkdir(logDir, { recursive: true });
    const now = clock();
    const name = `events.out.tfevents.${String(Math.floor(now)).padStart(10, "0")}.` +
      `${hostname()}.${Deno.pid}.${filesOpened++}`;
    const path = `${logDir}/${name}`;
    const file = await Deno.open(path, { createNew: true, write: true });
    const writer = new TensorBoardWriter(path, file, clock);
    await writer.write({ wallTime: now, fileVersion: FILE_VERSION, sourceWriter: "mgrpo" });
    if (options.purgeStep !== undefined) {
      await writer.write({ wallTime: clock(), step: options.purgeStep, sessionStatus: "start" });
    }
    return writer;
  }

  /** Appends one event (its `wall_time` as given). */
  async write(event: TensorBoardEvent): Promise<void> {
    let bytes = frameRecord(encodeEvent(event));
    while (bytes.length > 0) bytes = bytes.subarray(await this.#file.write(bytes));
  }

  /**
   * Writes a `metrics.jsonl` record as one event: its `step` is the event's step, every other
   * key a scalar of that name (a float32, as TensorBoard stores it; `null` in JSON is NaN).
   */
  async writeMetrics(record: Readonly<Record<string, number>>): Promise<void> {
    const summary = Object.entries(record).filter(([key]) => key !== "step")
      .map(([tag, value]) => ({ tag, simpleValue: value }));
    await this.write({ wallTime: this.#clock(), step: record["step"] ?? 0, summary });
  }

  /** Writes a step's sample groups as Markdown for the text plugin (none: nothing). */
  async writeSamples(step: number, samples: readonly SampleGroup[]): Promise<void> {
    if (samples.length === 0) return;
    await this.write({
      wallTime: this.#clock(),
      step,
      summary: [{ tag: SAMPLES_TAG, text: samplesMarkdown(samples) }],
    });
  }

  /** Closes the file (again: nothing). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }
}

/**
 * A step's sample groups as Markdown: a heading per prompt, then a heading per completion
 * with its reward, trained advantage and verdict, the texts as indented code blocks (shown as
 * they are); under MGRPO each completion's guide phrase and its corrections, each with its
 * own reward, advantage and verdict, and whether they were discarded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplesMarkdown } from "./tensorboard.ts";
 *
 * const md = samplesMarkdown([{
 *   step: 1,
 *   prompt: "1+1=?",
 *   completions: [{ text: "2", reward: 1, advantage: 0.5, correct: true, reason: "correct" }],
 * }]);
 * assert.equal(
 *   md,
 *   "### Prompt 1\n\n    1+1=?\n\n" +
 *     "#### Completion 1: reward 1.000, advantage 0.500, correct\n\n    2",
 * );
 * ```
 */
export function samplesMarkdown(groups: readonly SampleGroup[]): string {
  const block = (text: string) => text.split("\n").map((line) => `    ${line}`).join("\n");
  return groups.map((g, p) => {
    const parts = [`### Prompt ${p + 1}`, block(g.prompt)];
    g.completions.forEach((c, i) => {
      const fate = c.discarded ? ", corrections discarded" : "";
      parts.push(`#### Completion ${i + 1}: ${verdictText(c)}${fate}`, block(c.text));
      if (c.guidePhrase !== undefined) parts.push(`Guide phrase:`, block(c.guidePhrase));
      c.corrections?.forEach((k, j) => {
        parts.push(`##### Correction ${i + 1}.${j + 1}: ${verdictText(k)}`, block(k.text));
      });
    });
    return parts.join("\n\n");
  }).join("\n\n");
}

/** `reward R, advantage A (or not trained), correct|wrong (reason)` of one completion. */
function verdictText(c: SampleCompletion): string {
  const verdict = c.correct === undefined ? undefined : c.correct ? "correct" : "wrong";
  const reward = c.reward === null ? "none" : c.reward.toFixed(3);
  const advantage = c.advantage === null ? "not trained" : `advantage ${c.advantage.toFixed(3)}`;
  const why = c.reason === verdict ? "" : ` (${c.reason})`;
  return `reward ${reward}, ${advantage}${verdict ? `, ${verdict}` : ""}${why}`;
}

/**
 * The host's name for event file names, as Python's `socket.gethostname()`: `Deno.hostname()`
 * where `--allow-sys` grants it, else the kernel's (`/proc`), else `localhost`.
 */
function hostname(): string {
  if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") {
    return Deno.hostname();
  }
  for (const path of ["/proc/sys/kernel/hostname", "/etc/hostname"]) {
    try {
      const name = Deno.readTextFileSync(path).trim();
      if (name) return name;
    } catch {
      // not Linux, or not readable: the next one
    }
  }
  return "localhost";
}
