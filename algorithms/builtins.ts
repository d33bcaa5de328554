/**
 * The built-in algorithms, registered exactly as a plug-in is (`plugins:` in YAML), and the
 * config schema and type they give: the shared sections of `config/schema.ts` with the `grpo`,
 * `mgrpo` and `ppo` sections in between.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TrainConfigSchema } from "./builtins.ts";
 *
 * const config = TrainConfigSchema.parse({ learner: { lr: 3e-4 } });
 * assert.equal(config.learner.lr, 3e-4);
 * assert.equal(config.grpo.num_generations, 8);
 * assert.equal(config.algorithm, "mgrpo");
 * ```
 *
 * @module
 */
import type { z } from "zod";
import { type BaseConfig, type BaseConfigInput, configSchema } from "../config/schema.ts";
import { type AlgorithmPlugin, AlgorithmRegistry } from "./registry.ts";
import { type GrpoConfig, GrpoConfigSchema } from "./grpo/config.ts";
import { grpoPlugin } from "./grpo/mod.ts";
import { type MgrpoConfig, MgrpoConfigSchema, mgrpoPlugin } from "./mgrpo/mod.ts";
import { type PpoConfig, PpoConfigSchema, ppoPlugin } from "./ppo/mod.ts";

/** A registry with GRPO, MGRPO and PPO, in that order. */
export function builtinAlgorithms(): AlgorithmRegistry {
  return new AlgorithmRegistry()
    .register(grpoPlugin as AlgorithmPlugin)
    .register(mgrpoPlugin as AlgorithmPlugin)
    .register(ppoPlugin as AlgorithmPlugin);
}

/** A validated training config of the built-in algorithms, every default filled in. */
export type TrainConfig = BaseConfig & { grpo: GrpoConfig; mgrpo: MgrpoConfig; ppo: PpoConfig };

/** What a config file may contain: every section and field optional. */
export type TrainConfigInput = BaseConfigInput & {
  grpo?: z.input<typeof GrpoConfigSchema>;
  mgrpo?: z.input<typeof MgrpoConfigSchema>;
  ppo?: z.input<typeof PpoConfigSchema>;
};

/**
 * The whole training config schema of the built-in algorithms (what `configs/tiny-mgrpo.yaml`
 * spells out): `configSchema()` with the built-in registry's sections.
 */
export const TrainConfigSchema: z.ZodType<TrainConfig, TrainConfigInput> & {
  readonly shape: z.ZodObject["shape"];
} = configSchema(builtinAlgorithms().sections()) as never;
