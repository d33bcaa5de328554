/**
 * Builds the Verifier's scorer from the `reward` section of a config: the answer checker
 * (`integer`, or `math` in a Worker pool) and the weighted reward functions, resolved from
 * the built-ins, functions registered in TypeScript, and modules named by `path` in YAML.
 *
 * @module
 */
import type { TrainConfig } from "../algorithms/builtins.ts";
import { ConfigError } from "../config/load.ts";
import { importConfigModule } from "./plugins.ts";
import {
  type AnswerChecker,
  createScorer,
  defaultRewardRegistry,
  integerChecker,
  type RewardFunction,
  type RewardRegistry,
  type Scorer,
  type WeightedReward,
} from "../verifiers/reward.ts";
import { VerifierPool } from "../verifiers/math/pool.ts";

/** A scorer with the resources behind it. */
export interface RunScorer extends AsyncDisposable {
  /** The Verifier's scorer. */
  score: Scorer;
  /** The answer checker alone (evaluation uses it). */
  checker: AnswerChecker;
  /** Releases the Worker pool of the math checker, if any. */
  close(): Promise<void>;
  /**
   * Kills one verifier process of the math checker's pool (fault injection: `exit_worker`);
   * false when no worker was running. Absent for checkers without a pool.
   */
  killWorker?: () => boolean;
}

/** Options of {@linkcode buildScorer}. */
export interface BuildScorerOptions {
  /** Where names are looked up; functions loaded from `path` are added to it. @default the built-ins */
  registry?: RewardRegistry;
  /** The config's file name, for messages. @default "config" */
  configPath?: string;
}

/**
 * The answer checker named by `reward.checker`; `math` starts a {@linkcode VerifierPool}
 * that `close()` stops.
 */
export function buildChecker(
  reward: TrainConfig["reward"],
): { checker: AnswerChecker; close(): Promise<void>; killWorker?: () => boolean } {
  switch (reward.checker) {
    case "integer":
      return { checker: integerChecker, close: () => Promise.resolve() };
    case "math": {
      const pool = new VerifierPool({ size: reward.workers, timeoutMs: reward.timeout_ms });
      return {
        checker: async (completion, answer) => {
          const v = await pool.verify(completion, answer);
          return { correct: v.equal, parsed: v.predAnswer, reason: v.reason };
        },
        close: () => Promise.resolve(pool.close()),
        killWorker: () => pool.killWorker(),
      };
    }
    default:
      throw new RangeError(
        `Unknown answer checker: current value is "${(reward as { checker: string }).checker}"`,
      );
  }
}

/**
 * Resolves every function of `reward.functions` and builds the scorer.
 *
 * @throws {ConfigError} When a name is unknown, a module cannot be imported, or it lacks the
 * export; the message names the field (`reward.functions.1.path`).
 */
export async function buildScorer(
  config: TrainConfig,
  options: BuildScorerOptions = {},
): Promise<RunScorer> {
  const registry = options.registry ?? defaultRewardRegistry();
  const configPath = options.configPath ?? "config";
  const functions: WeightedReward[] = [];
  for (const [i, spec] of config.reward.functions.entries()) {
    const field = `reward.functions.${i}`;
    let fn: RewardFunction;
    if (spec.path !== undefined) {
      fn = await importReward(spec.path, spec.export ?? spec.name, configPath, field);
      if (!registry.has(spec.name)) registry.register(spec.name, fn);
    } else if (registry.has(spec.name)) {
      fn = registry.get(spec.name);
    } else {
      throw new ConfigError(configPath, [{
        field: `${field}.name`,
        message: `field "${field}.name" is not a known reward function (known: ${
          registry.names().map((n) => `"${n}"`).join(", ")
        }; or give a path): current value is "${spec.name}"`,
      }]);
    }
    functions.push({ name: spec.name, fn, weight: spec.weight });
  }
  const { checker, close, killWorker } = buildChecker(config.reward);
  return {
    score: createScorer(checker, functions),
    checker,
    close,
    ...(killWorker ? { killWorker } : {}),
    [Symbol.asyncDispose]: close,
  };
}

async function importReward(
  path: string,
  exportName: string,
  configPath: string,
  field: string,
): Promise<RewardFunction> {
  const module = await importConfigModule(path, `${field}.path`, configPath);
  const fn = module[exportName];
  if (typeof fn !== "function") {
    throw new ConfigError(configPath, [{
      field: `${field}.export`,
      message: `field "${field}.export" must name a function exported by "${path}" (exports: ${
        Object.keys(module).map((n) => `"${n}"`).join(", ") || "none"
      }): current value is "${exportName}"`,
    }]);
  }
  return fn as RewardFunction;
}
