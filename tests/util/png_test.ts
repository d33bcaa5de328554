import assert from "node:assert/strict";
import { crc32, encodePng, PNG_SIGNATURE, type RasterImage } from "../../util/png.ts";
import { Rng } from "../../util/rng.ts";
import { decodePng, pixelAt } from "./png_decoder.ts";

/** Rows of noise, gradients and flat colour, so that every filter type wins somewhere. */
function testImage(width: number, height: number, channels: 3 | 4): RasterImage {
  const rng = new Rng(7);
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        const i = (y * width + x) * channels + c;
        data[i] = y % 4 === 0
          ? rng.nextUint32() & 0xff // noise
          : y % 4 === 1
          ? (x * 9 + c * 40) & 0xff // horizontal gradient
          : y % 4 === 2
          ? (y * 11 + c) & 0xff // flat row
          : (x * 5 + y * 3 + c * 17) & 0xff; // diagonal gradient
      }
    }
  }
  return { width, height, channels, data };
}

Deno.test("crc32() gives the check value of CRC-32/ISO-HDLC and zlib", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
  assert.equal(
    crc32(new TextEncoder().encode("The quick brown fox jumps over the lazy dog")),
    0x414fa339,
  );
});

for (const channels of [3, 4] as const) {
  Deno.test(`encodePng() round-trips a ${channels}-channel image through an independent decoder`, async () => {
    const image = testImage(37, 23, channels);
    const png = await encodePng(image);
    assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
    const decoded = await decodePng(png);
    assert.deepEqual(decoded.chunks.map((c) => c.type), ["IHDR", "IDAT", "IEND"]);
    assert.ok(decoded.chunks.every((c) => c.crcOk), "every chunk's CRC-32 is right");
    assert.deepEqual(decoded.chunks[0], { type: "IHDR", length: 13, crcOk: true });
    assert.equal(decoded.width, 37);
    assert.equal(decoded.height, 23);
    assert.equal(decoded.channels, channels);
    assert.deepEqual(decoded.data, image.data);
    // The adaptive filter picks more than one type on this mix of rows.
    assert.ok(new Set(decoded.filters).size >= 3, `filters used: ${[...new Set(decoded.filters)]}`);
    // Row 2 is flat: (2 * 11 + c) for every pixel.
    assert.deepEqual(pixelAt(decoded, 30, 2), [22, 23, 24]);
  });
}

Deno.test("encodePng() writes the same bytes for the same pixels", async () => {
  const image = testImage(16, 9, 3);
  assert.deepEqual(await encodePng(image), await encodePng(image));
});

Deno.test("encodePng() writes a 1x1 image whose IEND chunk is the standard 12 bytes", async () => {
  const png = await encodePng({ width: 1, height: 1, channels: 3, data: Uint8Array.of(1, 2, 3) });
  assert.deepEqual(
    [...png.subarray(png.length - 12)],
    [0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82],
  );
  assert.deepEqual(pixelAt(await decodePng(png), 0, 0), [1, 2, 3]);
});

Deno.test("encodePng() rejects a size that does not match the data", async () => {
  await assert.rejects(
    encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(11) }),
    (e: Error) =>
      e instanceof RangeError &&
      e.message ===
        "Cannot encode a PNG: data must hold 12 bytes (2 x 2 x 3): current length is 11",
  );
  await assert.rejects(
    encodePng({ width: 0, height: 2, channels: 3, data: new Uint8Array(0) }),
    /width must be a positive integer: current value is 0/,
  );
});
