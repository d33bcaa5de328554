/**
 * The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then the raw
 * little-endian tensor bytes. F32 and BF16 are written; F32, F16, BF16 and F64 are read
 * (converted to f32).
 *
 * {@link encodeSafetensors} and {@link decodeSafetensors} work on a whole file in memory;
 * {@link SafetensorsReader} and {@link writeSafetensors} stream one tensor at a time, so a
 * model far larger than a comfortable buffer loads and saves with about one tensor's worth of
 * extra host memory. The byte order of the host is assumed little-endian (every platform
 * Deno runs on).
 *
 * @module
 */

/** A host tensor: f32 values and a shape. */
export interface HostTensor {
  data: Float32Array;
  shape: number[];
}

/** Element types this module reads. */
export type SafetensorsDtype = "F32" | "F16" | "BF16" | "F64";

/** Element types this module writes. */
export type SafetensorsWriteDtype = "F32" | "BF16";

const WIDTH: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

/** Largest header accepted (the reference implementation's limit is 100 MB). */
const MAX_HEADER = 100_000_000;

/** One entry of a safetensors header. */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** Byte range relative to the end of the header. */
  begin: number;
  end: number;
}

/** Serialises named f32 tensors (sorted by name, as the Python library does). */
export function encodeSafetensors(
  tensors: Map<string, HostTensor>,
  metadata: Record<string, string> = {},
  options: { dtype?: SafetensorsWriteDtype } = {},
): Uint8Array {
  const dtype = options.dtype ?? "F32";
  const names = [...tensors.keys()].sort();
  const { header, dataBytes } = buildHeader(
    names.map((name) => [name, tensors.get(name)!.shape, tensors.get(name)!.data.length]),
    dtype,
    metadata,
  );
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header, 0);
  let pos = header.length;
  for (const name of names) {
    const bytes = float32To(tensors.get(name)!.data, dtype);
    out.set(bytes, pos);
    pos += bytes.length;
  }
  return out;
}

/** The length prefix and JSON header (padded to 8 bytes) for tensors written in order. */
function buildHeader(
  entries: [name: string, shape: readonly number[], length: number][],
  dtype: SafetensorsWriteDtype,
  metadata: Record<string, string>,
): { header: Uint8Array; dataBytes: number } {
  const json: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) json["__metadata__"] = metadata;
  const width = WIDTH[dtype]!;
  let offset = 0;
  for (const [name, shape, length] of entries) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== length) {
      throw new TypeError(
        `Tensor "${name}" has ${length} values for shape [${shape}]: current value is ${length}`,
      );
    }
    json[name] = { dtype, shape: [...shape], data_offsets: [offset, offset + size * width] };
    offset += size * width;
  }
  let text = JSON.stringify(json);
  // Pad the header with spaces to an 8-byte boundary so the data is aligned.
  while ((8 + new TextEncoder().encode(text).length) % 8 !== 0) text += " ";
  const headerBytes = new TextEncoder().encode(text);
  const header = new Uint8Array(8 + headerBytes.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  header.set(headerBytes, 8);
  return { header, dataBytes: offset };
}

/**
 * Parses a safetensors file. `source` names the file in error messages.
 * Throws a `SyntaxError` for a malformed header and a `TypeError` for an unsupported dtype.
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  source = "model.safetensors",
): { tensors: Map<string, HostTensor>; metadata: Record<string, string> } {
  if (bytes.length < 8) {
    throw new SyntaxError(
      `Cannot read "${source}": file too short: current value is ${bytes.length} bytes`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > bytes.length - 8) {
    throw new SyntaxError(
      `Cannot read "${source}": header length exceeds the file: current value is ${headerLen}`,
    );
  }
  const { entries, metadata } = parseHeader(
    bytes.subarray(8, 8 + headerLen),
    bytes.length - 8 - headerLen,
    source,
  );
  const dataStart = 8 + headerLen;
  const tensors = new Map<string, HostTensor>();
  for (const [name, e] of entries) {
    const raw = bytes.slice(dataStart + e.begin, dataStart + e.end);
    tensors.set(name, { data: toFloat32(raw, e.dtype, name, source), shape: e.shape });
  }
  return { tensors, metadata };
}

/** Validates a header's JSON: every entry's dtype, shape and byte range. */
function parseHeader(
  headerBytes: Uint8Array,
  dataBytes: number,
  source: string,
): { entries: Map<string, SafetensorsEntry>; metadata: Record<string, string> } {
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(headerBytes));
  } catch (cause) {
    throw new SyntaxError(`Cannot read "${source}": header is not JSON`, { cause });
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new SyntaxError(`Cannot read "${source}": header is not a JSON object`);
  }
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = (info ?? {}) as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = (info ?? {}) as {
      dtype?: unknown;
      shape?: unknown;
      data_offsets?: unknown;
    };
    const [begin, end] = Array.isArray(data_offsets) ? data_offsets : [];
    if (
      !Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0) ||
      typeof begin !== "number" || typeof end !== "number" || begin < 0 || begin > end ||
      end > dataBytes
    ) {
      throw new SyntaxError(`Cannot read "${source}": tensor "${name}" has invalid offsets`);
    }
    if (typeof dtype !== "string" || !(dtype in WIDTH)) {
      throw new TypeError(
        `Cannot read "${source}": tensor "${name}" has an unsupported dtype ` +
          `(supported: F32, F16, BF16, F64): current value is "${String(dtype)}"`,
      );
    }
    const size = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end - begin !== size * WIDTH[dtype]!) {
      throw new SyntaxError(
        `Cannot read "${source}": tensor "${name}" has ${end - begin} bytes for ${dtype} ` +
          `shape [${shape}]`,
      );
    }
    entries.set(name, { dtype, shape: shape as number[], begin, end });
  }
  return { entries, metadata };
}

let halfTable: Float32Array | undefined;

/** f16 bit pattern → f32, for all 65536 patterns. */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    halfTable[h] = exp === 0
      ? sign * Math.pow(2, -14) * (frac / 1024)
      : exp === 31
      ? (frac ? NaN : sign * Infinity)
      : sign * Math.pow(2, exp - 15) * (1 + frac / 1024);
  }
  return halfTable;
}

/**
 * Converts raw little-endian tensor bytes of `dtype` (F32, F16, BF16, F64) to f32 values.
 * For an aligned F32 input the result is a view of the same memory. `name` and `source`
 * only label errors.
 */
export function toFloat32(
  raw: Uint8Array,
  dtype: string,
  name = "tensor",
  source = "safetensors",
): Float32Array {
  const width = WIDTH[dtype];
  if (width === undefined) {
    throw new TypeError(
      `Cannot read "${source}": tensor "${name}" has an unsupported dtype: current value is "${dtype}"`,
    );
  }
  // A copy at offset 0 is aligned for every typed-array view below.
  const bytes = raw.byteOffset % width === 0 ? raw : raw.slice();
  const n = bytes.byteLength / width;
  if (dtype === "F32") return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  const out = new Float32Array(n);
  if (dtype === "F64") {
    out.set(new Float64Array(bytes.buffer, bytes.byteOffset, n));
    return out;
  }
  const u16 = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  if (dtype === "BF16") {
    const u32 = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u32[i] = u16[i]! << 16;
  } else {
    const table = halfToFloatTable();
    for (let i = 0; i < n; i++) out[i] = table[u16[i]!]!;
  }
  return out;
}

/**
 * Rounds f32 values to bfloat16 bit patterns (round to nearest, ties to even; NaN becomes
 * `0x7fc0`), as PyTorch's `tensor.to(torch.bfloat16)` does.
 */
export function float32ToBfloat16(data: Float32Array): Uint16Array {
  const u32 = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const x = u32[i]!;
    out[i] = (x & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

/**
 * Rounds f32 values to the nearest bfloat16 in place (the values a bf16 model would hold)
 * and returns the same array.
 *
 * @example
 * ```ts
 * import { roundToBfloat16 } from "./safetensors.ts";
 * const x = roundToBfloat16(new Float32Array([1 + 2 ** -9, 3.14159]));
 * if (x[0] !== 1 || x[1] !== 3.140625) throw new Error(`${x}`);
 * ```
 */
export function roundToBfloat16(data: Float32Array): Float32Array {
  const bits = float32ToBfloat16(data);
  const u32 = new Uint32Array(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < data.length; i++) u32[i] = bits[i]! << 16;
  return data;
}

/** f32 values as little-endian bytes of `dtype`. */
function float32To(data: Float32Array, dtype: SafetensorsWriteDtype): Uint8Array {
  if (dtype === "F32") return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const bits = float32ToBfloat16(data);
  return new Uint8Array(bits.buffer);
}

async function readExactly(
  file: Deno.FsFile,
  buf: Uint8Array,
  position: number,
  source: string,
): Promise<void> {
  await file.seek(position, Deno.SeekMode.Start);
  let off = 0;
  while (off < buf.length) {
    const n = await file.read(buf.subarray(off));
    if (n === null) {
      throw new SyntaxError(
        `Cannot read "${source}": file ends early: needed ${buf.length} bytes at offset ` +
          `${position}: current value is ${off}`,
      );
    }
    off += n;
  }
}

/**
 * Reads a safetensors file tensor by tensor: {@link SafetensorsReader.open} reads only the
 * header; {@link SafetensorsReader.read} seeks to one tensor and reads its bytes. Close it
 * when done.
 *
 * @example
 * ```ts ignore
 * const r = await SafetensorsReader.open("model.safetensors");
 * try {
 *   const w = await r.read("model.norm.weight");
 * } finally {
 *   r.close();
 * }
 * ```
 */
export class SafetensorsReader {
  /** The file path (names it in errors). */
  readonly path: string;
  /** Header entries by tensor name. */
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  /** The header's `__metadata__`. */
  readonly metadata: Record<string, string>;
  readonly #file: Deno.FsFile;
  readonly #dataStart: number;

  private constructor(
    path: string,
    file: Deno.FsFile,
    dataStart: number,
    entries: Map<string, SafetensorsEntry>,
    metadata: Record<string, string>,
  ) {
    this.path = path;
    this.#file = file;
    this.#dataStart = dataStart;
    this.entries = entries;
    this.metadata = metadata;
  }

  /**
   * Opens `path` and parses its header. Throws a `SyntaxError` for a malformed header (or a
   * file shorter than its header says) and a `TypeError` for an unsupported dtype.
   */
  static async open(path: string): Promise<SafetensorsReader> {
    const file = await Deno.open(path, { read: true });
    try {
      const size = (await file.stat()).size;
      if (size < 8) {
        throw new SyntaxError(
          `Cannot read "${path}": file too short: current value is ${size} bytes`,
        );
      }
      const prefix = new Uint8Array(8);
      await readExactly(file, prefix, 0, path);
      const headerLen = Number(new DataView(prefix.buffer).getBigUint64(0, true));
      if (headerLen > size - 8 || headerLen > MAX_HEADER) {
        throw new SyntaxError(
          `Cannot read "${path}": header length exceeds the file: current value is ${headerLen}`,
        );
      }
      const headerBytes = new Uint8Array(headerLen);
      await readExactly(file, headerBytes, 8, path);
      const { entries, metadata } = parseHeader(headerBytes, size - 8 - headerLen, path);
      return new SafetensorsReader(path, file, 8 + headerLen, entries, metadata);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** The raw bytes of tensor `name`, in the file's dtype. */
  async readRaw(name: string): Promise<Uint8Array> {
    const e = this.entries.get(name);
    if (!e) throw new RangeError(`Cannot read "${this.path}": no tensor is named "${name}"`);
    const buf = new Uint8Array(e.end - e.begin);
    await readExactly(this.#file, buf, this.#dataStart + e.begin, this.path);
    return buf;
  }

  /** Tensor `name` converted to f32. Throws a `RangeError` for an unknown name. */
  async read(name: string): Promise<HostTensor> {
    const raw = await this.readRaw(name);
    const e = this.entries.get(name)!;
    return { data: toFloat32(raw, e.dtype, name, this.path), shape: [...e.shape] };
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }
}

/**
 * Writes a safetensors file tensor by tensor: the header from `tensors` (name and shape, in
 * the given order), then each tensor's values, which `read(name)` supplies one at a time, so
 * only one tensor is held on the host at once. Writes `dtype` (F32 by default; BF16 rounds
 * to nearest even) and fsyncs the file before it returns.
 *
 * @example
 * ```ts ignore
 * await writeSafetensors("out.safetensors", [["w", [2]]], () => new Float32Array([1, 2]));
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly (readonly [name: string, shape: readonly number[]])[],
  read: (name: string) => Float32Array | Promise<Float32Array>,
  options: { dtype?: SafetensorsWriteDtype; metadata?: Record<string, string> } = {},
): Promise<void> {
  const dtype = options.dtype ?? "F32";
  const { header } = buildHeader(
    tensors.map(([name, shape]) => [name, shape, shape.reduce((a, b) => a * b, 1)]),
    dtype,
    options.metadata ?? {},
  );
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const writeAll = async (bytes: Uint8Array) => {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
    };
    await writeAll(header);
    for (const [name, shape] of tensors) {
      const data = await read(name);
      const size = shape.reduce((a, b) => a * b, 1);
      if (data.length !== size) {
        throw new TypeError(
          `Cannot write "${path}": tensor "${name}" must have ${size} values for [${shape}]: ` +
            `current value is ${data.length}`,
        );
      }
      await writeAll(float32To(data, dtype));
    }
    await file.sync();
  } finally {
    file.close();
  }
}
