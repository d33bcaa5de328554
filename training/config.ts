/**
 * The training config of the built-in algorithms: {@linkcode loadConfig} reads a YAML file
 * against the shared sections and the registered algorithms' sections, and
 * {@linkcode deriveConfig} computes the values that follow from it.
 *
 * @module
 */
import { join } from "node:path";
import { type LoadConfigOptions, loadConfigWith } from "../config/load.ts";
import { builtinAlgorithms, type TrainConfig } from "../algorithms/builtins.ts";

/**
 * Reads a YAML training config, applies `--set` overrides and validates it, with the built-in
 * algorithms' sections (and any in `options.sections`). `path` undefined reads the embedded
 * default `configs/tiny-mgrpo.yaml`.
 *
 * @throws {ConfigError} when the file is missing or not YAML, an override is malformed, or
 * any value fails validation (all such values are listed, with file, line and field).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig } from "./config.ts";
 *
 * const config = loadConfig("inline.yaml", {
 *   text: "grpo:\n  num_generations: 4\n",
 *   overrides: ["learner.lr=3e-4", "grpo.loss_type=bnpo"],
 * });
 * assert.equal(config.grpo.num_generations, 4);
 * assert.equal(config.grpo.loss_type, "bnpo");
 * assert.equal(config.learner.lr, 3e-4);
 * ```
 */
export function loadConfig(path: string | undefined, options: LoadConfigOptions = {}): TrainConfig {
  return loadConfigWith(path, {
    ...options,
    sections: { ...builtinAlgorithms().sections(), ...options.sections },
  }) as TrainConfig;
}

/** Values computed from a config, in one place. */
export interface DerivedConfig {
  /** Folder of the run: `<run.dir>/<run.name>`. */
  readonly runDir: string;
  /** Linear warm-up steps: `ceil(learner.warmup_ratio * run.steps)`, as TRL. */
  readonly warmupSteps: number;
  /** Completions per step: B * G = `sampler.prompts_per_step * grpo.num_generations`. */
  readonly completionsPerStep: number;
}

/**
 * Computes the values that follow from a config.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deriveConfig } from "./config.ts";
 * import { TrainConfigSchema } from "../algorithms/builtins.ts";
 *
 * const derived = deriveConfig(TrainConfigSchema.parse({}));
 * assert.equal(derived.warmupSteps, 1); // ceil(0.05 * 16)
 * assert.equal(derived.completionsPerStep, 64); // 8 prompts * 8 completions
 * ```
 */
export function deriveConfig(config: TrainConfig): DerivedConfig {
  // Round away float noise before the ceil: 0.07 * 100 is 7.000000000000001, which gives 7.
  const warmup = Math.round(config.learner.warmup_ratio * config.run.steps * 1e9) / 1e9;
  return {
    runDir: join(config.run.dir, config.run.name),
    warmupSteps: Math.ceil(warmup),
    completionsPerStep: config.sampler.prompts_per_step * config.grpo.num_generations,
  };
}
