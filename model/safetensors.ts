/**
 * The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then the raw
 * little-endian tensor bytes. F32 is written; F32, F16 and BF16 are read (converted to f32).
 *
 * @module
 */

/** A host tensor: f32 values and a shape. */
export interface HostTensor {
  data: Float32Array;
  shape: number[];
}

/** Serialises named f32 tensors (sorted by name, as the Python library does). */
export function encodeSafetensors(
  tensors: Map<string, HostTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header["__metadata__"] = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) {
      throw new TypeError(
        `Tensor "${name}" has ${t.data.length} values for shape [${t.shape}]: current value is ${t.data.length}`,
      );
    }
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + size * 4] };
    offset += size * 4;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces to an 8-byte boundary so the data is aligned.
  while ((8 + new TextEncoder().encode(json).length) % 8 !== 0) json += " ";
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const name of names) {
    const t = tensors.get(name)!;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
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
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  } catch (cause) {
    throw new SyntaxError(`Cannot read "${source}": header is not JSON`, { cause });
  }
  const dataStart = 8 + headerLen;
  const tensors = new Map<string, HostTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = info as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = info as {
      dtype: string;
      shape: number[];
      data_offsets: [number, number];
    };
    const [begin, end] = data_offsets ?? [];
    if (
      !Array.isArray(shape) || typeof begin !== "number" || typeof end !== "number" ||
      dataStart + end > bytes.length || begin > end
    ) {
      throw new SyntaxError(`Cannot read "${source}": tensor "${name}" has invalid offsets`);
    }
    const size = shape.reduce((a, b) => a * b, 1);
    const raw = bytes.slice(dataStart + begin, dataStart + end);
    const width = dtype === "F32" ? 4 : dtype === "F16" || dtype === "BF16" ? 2 : 0;
    if (width === 0) {
      throw new TypeError(
        `Cannot read "${source}": tensor "${name}" has an unsupported dtype: current value is "${dtype}"`,
      );
    }
    if (raw.length !== size * width) {
      throw new SyntaxError(
        `Cannot read "${source}": tensor "${name}" has ${raw.length} bytes for shape [${shape}]`,
      );
    }
    const data = new Float32Array(size);
    const dv = new DataView(raw.buffer);
    for (let i = 0; i < size; i++) {
      if (dtype === "F32") data[i] = dv.getFloat32(i * 4, true);
      else if (dtype === "BF16") {
        const f = new DataView(new ArrayBuffer(4));
        f.setUint32(0, dv.getUint16(i * 2, true) << 16);
        data[i] = f.getFloat32(0);
      } else data[i] = halfToFloat(dv.getUint16(i * 2, true));
    }
    tensors.set(name, { data, shape });
  }
  return { tensors, metadata };
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * Math.pow(2, -14) * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * Math.pow(2, exp - 15) * (1 + frac / 1024);
}
