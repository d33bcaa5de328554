/**
 * A small seeded pseudo-random number generator (xoshiro128**) whose output is
 * identical on every platform: it uses 32-bit integer math only
 * (`Math.imul`, shifts), so a run can be reproduced, forked into independent
 * streams and resumed exactly from a saved state.
 *
 * @module
 */

/** The full state of an {@linkcode Rng}: four unsigned 32-bit words, not all zero. */
export type RngState = readonly [number, number, number, number];

const TWO_POW_32 = 0x1_0000_0000;

/** splitmix32 step: returns the next state and a well-mixed output. */
function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  z ^= z >>> 15;
  return [next, z >>> 0];
}

/** FNV-1a over the UTF-16 code units of a string, 32 bits. */
function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Expands 64 bits of seed material into a full, non-zero xoshiro128 state. */
function seedState(lo: number, hi: number): [number, number, number, number] {
  let sm = lo ^ Math.imul(hi, 0x85ebca6b);
  const words: number[] = [];
  for (let i = 0; i < 4; i++) {
    const [next, out] = splitmix32(sm);
    sm = next;
    words.push(out);
  }
  const [a = 0, b = 0, c = 0, d = 0] = words;
  // xoshiro's only forbidden state is all zeros.
  if ((a | b | c | d) === 0) return [0x9e3779b9, 0x243f6a88, 0xb7e15162, 0x1];
  return [a, b, c, d];
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function validateState(state: unknown): [number, number, number, number] {
  if (!Array.isArray(state) || state.length !== 4) {
    throw new TypeError(
      `Cannot set Rng state: expected an array of 4 unsigned 32-bit integers: current value is ${
        JSON.stringify(state)
      }`,
    );
  }
  for (const word of state) {
    if (!Number.isInteger(word) || word < 0 || word >= TWO_POW_32) {
      throw new RangeError(
        `Cannot set Rng state: every word must be an integer in [0, 2^32): current value is ${
          JSON.stringify(state)
        }`,
      );
    }
  }
  const [a, b, c, d] = state as number[];
  if ((a! | b! | c! | d!) === 0) {
    throw new RangeError(
      "Cannot set Rng state: the state must not be all zeros: current value is [0,0,0,0]",
    );
  }
  return [a!, b!, c!, d!];
}

/**
 * A seeded xoshiro128** generator.
 *
 * Every method is deterministic across platforms; `normal()` also uses
 * `Math.log`, `Math.sqrt` and `Math.cos`, which are deterministic within one
 * JavaScript engine (V8 in Deno) on every operating system and CPU.
 *
 * @example Reproducible draws
 * ```ts
 * import assert from "node:assert/strict";
 * import { Rng } from "./rng.ts";
 *
 * const a = new Rng(42);
 * const b = new Rng(42);
 * assert.equal(a.int(1, 6), b.int(1, 6));
 * const saved = a.getState();
 * const x = a.next();
 * a.setState(saved);
 * assert.equal(a.next(), x);
 * ```
 */
export class Rng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  /**
   * Creates a generator from an integer seed.
   *
   * @param seed Any safe integer (negative values and values above 2^32 are
   * allowed; all 53 bits are mixed into the state).
   */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(
        `Cannot create Rng: seed must be a safe integer: current value is ${seed}`,
      );
    }
    const lo = seed | 0;
    const hi = Math.floor(seed / TWO_POW_32) | 0;
    [this.#s0, this.#s1, this.#s2, this.#s3] = seedState(lo, hi);
  }

  /** Creates a generator that continues from a state saved with {@linkcode Rng.getState}. */
  static fromState(state: RngState): Rng {
    const rng = new Rng(0);
    rng.setState(state);
    return rng;
  }

  /** Returns the next raw output, an unsigned 32-bit integer. */
  nextUint32(): number {
    const s0 = this.#s0, s1 = this.#s1;
    let s2 = this.#s2, s3 = this.#s3;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    this.#s1 = s1 ^ s2;
    this.#s0 = s0 ^ s3;
    this.#s2 = s2 ^ t;
    this.#s3 = rotl(s3, 11);
    return result;
  }

  /** Returns a float in [0, 1) with 32 bits of randomness. */
  next(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /**
   * Returns an integer uniformly drawn from `lo` to `hi`, both inclusive,
   * without modulo bias.
   */
  int(lo: number, hi: number): number {
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || lo > hi) {
      throw new RangeError(
        `Cannot draw Rng.int(lo, hi): lo and hi must be integers with lo <= hi: current value is (${lo}, ${hi})`,
      );
    }
    const range = hi - lo + 1;
    if (range > TWO_POW_32) {
      throw new RangeError(
        `Cannot draw Rng.int(lo, hi): the range must hold at most 2^32 values: current value is ${range}`,
      );
    }
    if (range === TWO_POW_32) return lo + this.nextUint32();
    const limit = TWO_POW_32 - (TWO_POW_32 % range);
    let u = this.nextUint32();
    while (u >= limit) u = this.nextUint32();
    return lo + (u % range);
  }

  /** Returns a uniformly chosen element of a non-empty array. */
  pick<T>(array: readonly T[]): T {
    if (array.length === 0) {
      throw new RangeError(
        "Cannot pick from an array: the array must not be empty: current length is 0",
      );
    }
    return array[this.int(0, array.length - 1)] as T;
  }

  /** Shuffles an array in place (Fisher–Yates) and returns it. */
  shuffle<T>(array: T[]): T[] {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const tmp = array[i] as T;
      array[i] = array[j] as T;
      array[j] = tmp;
    }
    return array;
  }

  /**
   * Returns a standard normal sample (Box–Muller). Consumes two outputs per
   * call and keeps no cached spare, so the state alone determines the stream.
   */
  normal(mean = 0, std = 1): number {
    const u1 = 1 - this.next(); // (0, 1], so log is finite
    const u2 = this.next();
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /**
   * Derives an independent generator from the current state and a label,
   * without advancing this one: forking the same state with the same label
   * always gives the same stream; different labels give unrelated streams.
   */
  fork(label: string): Rng {
    const h = fnv1a32(label);
    const lo = (this.#s0 ^ Math.imul(this.#s2, 0x9e3779b1) ^ h) | 0;
    const hi = (this.#s1 ^ Math.imul(this.#s3, 0x85ebca77) ^ Math.imul(h, 0xc2b2ae3d)) | 0;
    const child = new Rng(0);
    child.setState(seedState(lo, hi));
    // Mix the label in once more through the generator itself.
    for (let i = 0; i < 4; i++) child.nextUint32();
    return child;
  }

  /** Returns an independent copy with the same state. */
  clone(): Rng {
    return Rng.fromState(this.getState());
  }

  /** Returns the full state; JSON-serialisable. */
  getState(): RngState {
    return [this.#s0 >>> 0, this.#s1 >>> 0, this.#s2 >>> 0, this.#s3 >>> 0];
  }

  /** Restores a state returned by {@linkcode Rng.getState}. */
  setState(state: RngState): void {
    const [a, b, c, d] = validateState(state);
    this.#s0 = a | 0;
    this.#s1 = b | 0;
    this.#s2 = c | 0;
    this.#s3 = d | 0;
  }
}
