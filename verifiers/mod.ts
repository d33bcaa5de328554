/**
 * Rule-based verifiers and rewards: the exact-integer checker of the synthetic task, the
 * math answer verifier (and its pool of isolated verifiers), the format reward and the
 * reward-function API.
 *
 * @module
 */

export * from "./integer_answer.ts";
export * from "./format_reward.ts";
export * from "./reward.ts";
export * from "./math/mod.ts";
