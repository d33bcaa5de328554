/**
 * Rule-based verifiers and rewards.
 *
 * @module
 */

export * from "./integer_answer.ts";
