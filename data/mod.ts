/**
 * Seeded randomness and the synthetic arithmetic task.
 *
 * @module
 */

export * from "../util/rng.ts";
export * from "./arithmetic.ts";
export * from "./benchmarks.ts";
