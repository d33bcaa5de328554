/**
 * A PNG reader for the tests, written from the PNG specification apart from the encoder in
 * `util/png.ts`: it checks the signature and every chunk's CRC-32, joins the `IDAT` chunks,
 * inflates them with the web `DecompressionStream("deflate")` and undoes the five scanline
 * filters. 8-bit RGB and RGBA, not interlaced, only.
 */
import { crc32 } from "../../util/png.ts";

/** A decoded PNG: its chunks in order, the filter type of each scanline and the pixels. */
export interface DecodedPng {
  width: number;
  height: number;
  channels: 3 | 4;
  data: Uint8Array;
  chunks: { type: string; length: number; crcOk: boolean }[];
  filters: number[];
}

async function inflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Decodes `png`; throws on anything it does not read (bad signature, a CRC, a type). */
export async function decodePng(png: Uint8Array): Promise<DecodedPng> {
  const signature = [137, 80, 78, 71, 13, 10, 26, 10];
  if (!signature.every((b, i) => png[i] === b)) throw new Error("Not a PNG signature");
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const chunks: DecodedPng["chunks"] = [];
  const idat: Uint8Array[] = [];
  let width = 0, height = 0, channels: 3 | 4 = 3;
  for (let at = 8; at < png.length;) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    const body = png.subarray(at + 8, at + 8 + length);
    const crcOk = view.getUint32(at + 8 + length) === crc32(png.subarray(at + 4, at + 8 + length));
    chunks.push({ type, length, crcOk });
    if (type === "IHDR") {
      const h = new DataView(body.buffer, body.byteOffset, body.byteLength);
      width = h.getUint32(0);
      height = h.getUint32(4);
      if (body[8] !== 8 || (body[9] !== 2 && body[9] !== 6) || body[12] !== 0) {
        throw new Error(
          `Unsupported IHDR: depth ${body[8]}, colour ${body[9]}, interlace ${body[12]}`,
        );
      }
      channels = body[9] === 6 ? 4 : 3;
    }
    if (type === "IDAT") idat.push(body);
    at += 12 + length;
  }
  const joined = new Uint8Array(idat.reduce((n, b) => n + b.length, 0));
  idat.reduce((at, b) => (joined.set(b, at), at + b.length), 0);
  const raw = await inflate(joined);
  const stride = width * channels;
  if (raw.length !== height * (stride + 1)) {
    throw new Error(`Inflated ${raw.length} bytes, expected ${height * (stride + 1)}`);
  }
  const data = new Uint8Array(height * stride);
  const filters: number[] = [];
  for (let y = 0; y < height; y++) {
    const type = raw[y * (stride + 1)]!;
    filters.push(type);
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i]!;
      const a = i >= channels ? data[y * stride + i - channels]! : 0;
      const b = y > 0 ? data[(y - 1) * stride + i]! : 0;
      const c = y > 0 && i >= channels ? data[(y - 1) * stride + i - channels]! : 0;
      let predictor: number;
      switch (type) {
        case 0:
          predictor = 0;
          break;
        case 1:
          predictor = a;
          break;
        case 2:
          predictor = b;
          break;
        case 3:
          predictor = Math.floor((a + b) / 2);
          break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          throw new Error(`Unknown filter type ${type} on row ${y}`);
      }
      data[y * stride + i] = (x + predictor) & 0xff;
    }
  }
  return { width, height, channels, data, chunks, filters };
}

/** The `[r, g, b]` of pixel (x, y) of a decoded PNG. */
export function pixelAt(png: DecodedPng, x: number, y: number): [number, number, number] {
  const i = (y * png.width + x) * png.channels;
  return [png.data[i]!, png.data[i + 1]!, png.data[i + 2]!];
}
