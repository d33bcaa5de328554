/**
 * A small TensorBoard event file reader for the tests, written apart from
 * `training/tensorboard.ts`: TFRecord framing with both CRCs checked, and the `Event` fields
 * the writer uses, decoded from the protobuf wire format (unknown fields skipped).
 *
 * @module
 */
import { maskedCrc32c } from "../../training/tensorboard.ts";

/** A decoded value of a `Summary`: a scalar or a string tensor with its plug-in. */
export interface ReadValue {
  tag: string;
  simpleValue?: number;
  /** The string tensor's values (a text summary). */
  strings?: string[];
  /** `metadata.plugin_data.plugin_name`. */
  plugin?: string;
  /** The tensor's shape (`[]` for a scalar). */
  shape?: number[];
}

/** A decoded `Event`. */
export interface ReadEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  summary?: ReadValue[];
  sessionStatus?: number;
  sourceWriter?: string;
}

interface Field {
  field: number;
  wire: number;
  /** varint value, or the fixed64/fixed32 bytes' offset. */
  value: number;
  bytes: Uint8Array;
}

function* fields(buf: Uint8Array): Generator<Field> {
  let i = 0;
  const varint = (): number => {
    let n = 0;
    let scale = 1;
    for (;;) {
      const b = buf[i++];
      if (b === undefined) throw new SyntaxError("Cannot decode a varint: the message ends");
      n += (b & 0x7f) * scale;
      scale *= 128;
      if (b < 0x80) return n;
    }
  };
  while (i < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) {
      yield { field, wire, value: varint(), bytes: new Uint8Array() };
    } else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      yield { field, wire, value: 0, bytes: buf.subarray(i, i + n) };
      i += n;
    } else if (wire === 2) {
      const n = varint();
      yield { field, wire, value: 0, bytes: buf.subarray(i, i + n) };
      i += n;
    } else {
      throw new SyntaxError(`Cannot decode a field: wire type ${wire}`);
    }
  }
}

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const text = (b: Uint8Array) => new TextDecoder("utf-8", { fatal: true }).decode(b);

function decodeValue(buf: Uint8Array): ReadValue {
  const out: ReadValue = { tag: "" };
  for (const f of fields(buf)) {
    if (f.field === 1) out.tag = text(f.bytes);
    if (f.field === 2) out.simpleValue = view(f.bytes).getFloat32(0, true);
    if (f.field === 8) {
      out.strings = [];
      for (const t of fields(f.bytes)) {
        if (t.field === 8) out.strings.push(text(t.bytes));
        if (t.field === 2) {
          out.shape = [...fields(t.bytes)].filter((d) => d.field === 2)
            .map((d) => [...fields(d.bytes)].find((s) => s.field === 1)?.value ?? 0);
        }
      }
    }
    if (f.field === 9) {
      for (const m of fields(f.bytes)) {
        if (m.field !== 1) continue;
        for (const p of fields(m.bytes)) if (p.field === 1) out.plugin = text(p.bytes);
      }
    }
  }
  return out;
}

/** Decodes one `Event` message. */
export function decodeEvent(buf: Uint8Array): ReadEvent {
  const out: ReadEvent = { wallTime: 0, step: 0 };
  for (const f of fields(buf)) {
    if (f.field === 1) out.wallTime = view(f.bytes).getFloat64(0, true);
    if (f.field === 2) out.step = f.value;
    if (f.field === 3) out.fileVersion = text(f.bytes);
    if (f.field === 5) {
      out.summary = [...fields(f.bytes)].filter((v) => v.field === 1).map((v) =>
        decodeValue(v.bytes)
      );
    }
    if (f.field === 7) {
      out.sessionStatus = [...fields(f.bytes)].find((s) => s.field === 1)?.value ?? 0;
    }
    if (f.field === 10) {
      for (const s of fields(f.bytes)) if (s.field === 1) out.sourceWriter = text(s.bytes);
    }
  }
  return out;
}

/** The records of an event file, their length and data CRCs checked. */
export function readRecords(bytes: Uint8Array): Uint8Array[] {
  const records: Uint8Array[] = [];
  let i = 0;
  while (i < bytes.length) {
    const v = view(bytes.subarray(i));
    const length = Number(v.getBigUint64(0, true));
    if (v.getUint32(8, true) !== maskedCrc32c(bytes.subarray(i, i + 8))) {
      throw new SyntaxError(`Cannot read a record at byte ${i}: its length CRC differs`);
    }
    const data = bytes.subarray(i + 12, i + 12 + length);
    if (v.getUint32(12 + length, true) !== maskedCrc32c(data)) {
      throw new SyntaxError(`Cannot read a record at byte ${i}: its data CRC differs`);
    }
    records.push(data);
    i += 12 + length + 4;
  }
  return records;
}

/** The event files of a log folder in the order TensorBoard reads them (by name). */
export async function eventFiles(logDir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(logDir)) {
    if (e.isFile && e.name.includes("tfevents")) names.push(e.name);
  }
  return names.sort().map((name) => `${logDir}/${name}`);
}

/** One scalar point. */
export interface ScalarPoint {
  tag: string;
  step: number;
  value: number;
}

/**
 * The scalars of a log folder as TensorBoard shows them: its files in name order, and a
 * `SessionLog` START at step N dropping the points read so far with step >= N.
 */
export async function readScalars(logDir: string): Promise<ScalarPoint[]> {
  let points: ScalarPoint[] = [];
  for (const path of await eventFiles(logDir)) {
    for (const data of readRecords(await Deno.readFile(path))) {
      const event = decodeEvent(data);
      if (event.sessionStatus === 1) points = points.filter((p) => p.step < event.step);
      for (const v of event.summary ?? []) {
        if (v.simpleValue !== undefined) {
          points.push({ tag: v.tag, step: event.step, value: v.simpleValue });
        }
      }
    }
  }
  return points;
}
