/**
 * Strict UTF-8 decoding for files users hand us (configs, datasets): bytes that are not UTF-8
 * must be an error naming the line, not text with U+FFFD in it.
 *
 * @module
 */

const STRICT = new TextDecoder("utf-8", { fatal: true });

/**
 * The 1-based numbers of the lines of `bytes` (split at `\n`) that are not valid UTF-8; empty
 * when the whole text is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { invalidUtf8Lines } from "./utf8.ts";
 *
 * assert.deepEqual(invalidUtf8Lines(new TextEncoder().encode("a\nb\n")), []);
 * assert.deepEqual(invalidUtf8Lines(new Uint8Array([0x61, 0x0a, 0xff, 0x0a, 0x62])), [2]);
 * ```
 */
export function invalidUtf8Lines(bytes: Uint8Array): number[] {
  try {
    STRICT.decode(bytes);
    return [];
  } catch {
    // find the lines below
  }
  const bad: number[] = [];
  let start = 0;
  for (let line = 1; start <= bytes.length; line++) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    try {
      STRICT.decode(bytes.subarray(start, end));
    } catch {
      bad.push(line);
    }
    start = end + 1;
  }
  return bad;
}

/**
 * Decodes `bytes` as UTF-8, or throws a `TypeError` naming `path` and the first line that is
 * not UTF-8.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeUtf8 } from "./utf8.ts";
 *
 * assert.equal(decodeUtf8(new TextEncoder().encode("é"), "a.yaml"), "é");
 * assert.throws(() => decodeUtf8(new Uint8Array([0xe9]), "a.yaml"), {
 *   message: "a.yaml:1: not valid UTF-8 text (save the file as UTF-8)",
 * });
 * ```
 */
export function decodeUtf8(bytes: Uint8Array, path: string): string {
  const bad = invalidUtf8Lines(bytes);
  if (bad.length > 0) {
    throw new TypeError(`${path}:${bad[0]}: not valid UTF-8 text (save the file as UTF-8)`);
  }
  return new TextDecoder().decode(bytes);
}
