/**
 * RL algorithms as actor graphs plus their losses, and policy evaluation.
 *
 * @module
 */
export * from "./grpo.ts";
export * from "./evaluate.ts";
export * from "./mgrpo.ts";
export * from "./ppo.ts";
