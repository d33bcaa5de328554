/**
 * mgrpo: reinforcement learning of language models on verifiable reasoning tasks, as graphs
 * of actors exchanging typed messages, with TensorFlow.js for the tensor math.
 *
 * @module
 */
export * from "./actors/mod.ts";
export * from "./algorithms/mod.ts";
export * from "./model/mod.ts";
export * from "./prompts/mod.ts";
export * from "./data/mod.ts";
export * from "./verifiers/mod.ts";
export { ConfigError, configToYaml, loadConfig } from "./config/load.ts";
export { type TrainConfig, TrainConfigSchema } from "./config/schema.ts";
