/**
 * RL algorithms as actor graphs plus their losses, and policy evaluation.
 *
 * @module
 */
export * from "./registry.ts";
export * from "./builtins.ts";
export * from "./grpo/mod.ts";
export * from "./mgrpo/evaluate.ts";
export * from "./mgrpo/mod.ts";
export * from "./ppo/mod.ts";
