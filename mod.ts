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
export { ConfigError, configToYaml, loadConfigWith } from "./config/load.ts";
export {
  type BaseConfig,
  BaseConfigSchema,
  configSchema,
  type ConfigSection,
} from "./config/schema.ts";
export { type TrainConfig, TrainConfigSchema } from "./algorithms/builtins.ts";
export { deriveConfig, loadConfig } from "./training/config.ts";
export { loadConfigWithPlugins } from "./training/plugins.ts";
export {
  type EvalResult,
  Trainer,
  type TrainerOptions,
  type TrainSummary,
} from "./training/trainer.ts";
export {
  buildGraphInput,
  type GraphInputOptions,
  type Policy,
  type ResumePoint,
  type RunSetup,
  type SetupOptions,
  setupRun,
} from "./training/graph_input.ts";
export { resumePoint } from "./training/resume.ts";
