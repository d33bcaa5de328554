/**
 * A PNG encoder with no dependency: 8-bit RGB or RGBA, one `IDAT` chunk compressed with the web
 * `CompressionStream("deflate")` (which writes the zlib stream PNG asks for), each scanline
 * filtered with the filter type (None, Sub, Up, Average, Paeth) that minimises the sum of
 * absolute filtered bytes, libpng's heuristic. No time stamp or other varying chunk is
 * written: the same pixels give the same bytes.
 *
 * @module
 */

/** Pixels for {@linkcode encodePng}: rows top to bottom, each pixel R, G, B (and A) bytes. */
export interface RasterImage {
  /** Width in pixels, at least 1. */
  width: number;
  /** Height in pixels, at least 1. */
  height: number;
  /** 3 for RGB (PNG colour type 2), 4 for RGBA (colour type 6). */
  channels: 3 | 4;
  /** `width * height * channels` bytes. */
  data: Uint8Array;
}

/** The eight bytes every PNG file starts with. */
export const PNG_SIGNATURE: Uint8Array = Uint8Array.of(137, 80, 78, 71, 13, 10, 26, 10);

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * CRC-32 (ISO 3309, the polynomial PNG and zlib's `crc32` use) of `bytes`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { crc32 } from "./png.ts";
 *
 * assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
 * assert.equal(crc32(new TextEncoder().encode("IEND")), 0xae426082);
 * ```
 */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** The scanlines, each led by its filter type byte, ready for deflate. */
function filterScanlines(image: RasterImage): Uint8Array {
  const { width, height, channels: bpp, data } = image;
  const stride = width * bpp;
  const out = new Uint8Array(height * (stride + 1));
  const candidate = new Uint8Array(stride);
  const zero = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const line = data.subarray(y * stride, (y + 1) * stride);
    const prior = y === 0 ? zero : data.subarray((y - 1) * stride, y * stride);
    let bestType = 0, bestCost = Infinity;
    const target = out.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let type = 0; type < 5; type++) {
      let cost = 0;
      for (let i = 0; i < stride; i++) {
        const a = i >= bpp ? line[i - bpp]! : 0, b = prior[i]!, c = i >= bpp ? prior[i - bpp]! : 0;
        const predictor = type === 0
          ? 0
          : type === 1
          ? a
          : type === 2
          ? b
          : type === 3
          ? (a + b) >> 1
          : paeth(a, b, c);
        const v = (line[i]! - predictor) & 0xff;
        candidate[i] = v;
        cost += v < 128 ? v : 256 - v;
      }
      if (cost < bestCost) {
        bestCost = cost;
        bestType = type;
        target.set(candidate);
      }
    }
    out[y * (stride + 1)] = bestType;
  }
  return out;
}

async function deflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Encodes pixels as a PNG file (8 bits per channel, not interlaced).
 *
 * @throws {RangeError} When the size is not a positive integer or `data` has the wrong length.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodePng, PNG_SIGNATURE } from "./png.ts";
 *
 * const png = await encodePng({ width: 2, height: 1, channels: 3, data: Uint8Array.of(255, 0, 0, 0, 0, 255) });
 * assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
 * assert.equal(new TextDecoder().decode(png.subarray(12, 16)), "IHDR");
 * ```
 */
export async function encodePng(image: RasterImage): Promise<Uint8Array> {
  const { width, height, channels, data } = image;
  for (const [name, v] of [["width", width], ["height", height]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 0x7fffffff) {
      throw new RangeError(
        `Cannot encode a PNG: ${name} must be a positive integer: current value is ${v}`,
      );
    }
  }
  if (channels !== 3 && channels !== 4) {
    throw new RangeError(
      `Cannot encode a PNG: channels must be 3 or 4: current value is ${channels}`,
    );
  }
  if (data.length !== width * height * channels) {
    throw new RangeError(
      `Cannot encode a PNG: data must hold ${width * height * channels} bytes ` +
        `(${width} x ${height} x ${channels}): current length is ${data.length}`,
    );
  }
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header[8] = 8; // bit depth
  header[9] = channels === 4 ? 6 : 2; // colour type: RGBA or RGB
  // header[10..12]: deflate, adaptive filtering, no interlace (all 0)
  const parts = [
    PNG_SIGNATURE,
    chunk("IHDR", header),
    chunk("IDAT", await deflate(filterScanlines(image))),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
