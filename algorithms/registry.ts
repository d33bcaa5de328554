/**
 * Algorithms as plug-ins: an algorithm is one module that exports an {@linkcode AlgorithmPlugin}
 * — its name, the zod schema of its YAML section, whether it needs a reference policy, and the
 * actor graph it runs (whose Learner carries its loss). A registry maps the config's
 * `algorithm:` to the plug-in. GRPO, MGRPO and PPO are registered the same way a user's module
 * is (`builtins.ts`), and a module listed under `plugins:` in YAML is loaded and registered
 * before the config is validated: every registered algorithm's section is placed in the
 * config schema through {@linkcode AlgorithmRegistry.sections}, built-in or not.
 *
 * @example A registry and an unknown name
 * ```ts
 * import assert from "node:assert/strict";
 * import { builtinAlgorithms } from "./builtins.ts";
 *
 * const registry = builtinAlgorithms();
 * assert.deepEqual(registry.names(), ["grpo", "mgrpo", "ppo"]);
 * assert.throws(() => registry.get("sac"), {
 *   message: 'Unknown algorithm "sac": known algorithms are "grpo", "mgrpo", "ppo"',
 * });
 * ```
 *
 * @module
 */
import type { z } from "zod";
import type { ActorFailed, Graph, Supervision } from "../actors/runtime/mod.ts";
import type { PromptSourceInput } from "../actors/prompt_source.ts";
import type { SamplerInput } from "../actors/sampler.ts";
import type { VerifierInput } from "../actors/verifier.ts";
import type { RefPolicyInput } from "../actors/ref_policy.ts";
import type { LearnerInput } from "../actors/learner.ts";
import type { BaseConfig, ConfigSection } from "../config/schema.ts";

/**
 * A validated config as an algorithm sees it: the shared sections, and the algorithms'
 * sections it reads, typed `S` (e.g. `{ grpo: GrpoConfig }`).
 */
export type ConfigWith<S = Record<string, unknown>> = BaseConfig & S;

/**
 * The actors' inputs a plug-in wires into its graph; the driver (`training/graph_input.ts`)
 * builds them.
 */
export interface AlgorithmGraphInput<S = Record<string, unknown>> {
  /** The whole validated config, every algorithm's section included (`config[plugin.name]`). */
  config: ConfigWith<S>;
  promptSource: PromptSourceInput;
  sampler: SamplerInput;
  /** Present when {@linkcode AlgorithmPlugin.needsReference} said so. */
  refPolicy?: RefPolicyInput;
  /** Everything the Learner needs but the algorithm and μ. */
  learner: Omit<LearnerInput, "algorithm" | "numIterations">;
  /** The Verifier's scorer. */
  score?: VerifierInput["score"];
  mailboxCapacity: number;
  onFailure?: (report: ActorFailed) => void;
  /** Supervision and injected faults (`runtime.max_restarts`, `faults:`). @default {} */
  supervision?: Supervision;
}

/**
 * One algorithm. Its graph must have the sinks `stats` (one `StepStats` per `Next`), `eval`
 * (scored evaluation rollouts) and `events` (`CheckpointSaved`), and accept `Next`,
 * `Evaluate` at `prompt_source` and `Checkpoint` at `learner`, as the built-in graphs do.
 */
// deno-lint-ignore no-explicit-any
export interface AlgorithmPlugin<C = unknown, S = any> {
  /** The name `algorithm:` uses; also the name of its YAML section. */
  readonly name: string;
  /**
   * The schema of its YAML section (every field defaulted), added to the config schema under
   * its name (GRPO's is `grpo`).
   */
  readonly configSchema: z.ZodType<C>;
  /** One line on the section, shown with its fields. @default "The <name> algorithm" */
  readonly description?: string;
  /**
   * Other algorithms' sections this one reads (MGRPO and PPO read `grpo`), listed with its own
   * by `deno task config --algorithm <name>`.
   * @default []
   */
  readonly readsSections?: readonly string[];
  /**
   * Dotted config fields of its own section (or one it shares, like MGRPO's `grpo.beta`) that
   * may change while the run is live (`PATCH /config`), besides the shared ones
   * (`learner.lr`, `sampler.temperature`, ...). A change reaches every actor that accepts
   * `Configure` as `values[field]`; its `PolicyAlgorithm.configure` (or its own actor) applies
   * it. The new value is validated with the section's schema and survives a resume.
   * @default []
   */
  readonly liveFields?: readonly string[];
  /** Whether the graph needs a frozen reference policy (the driver then loads one). */
  needsReference(config: ConfigWith<S>): boolean;
  /** Builds the actor graph. */
  buildGraph(input: AlgorithmGraphInput<S>): Graph;
}

/** Maps algorithm names to plug-ins. */
export class AlgorithmRegistry {
  #plugins = new Map<string, AlgorithmPlugin>();

  /**
   * Adds a plug-in.
   *
   * @throws {RangeError} When its name is empty or taken.
   */
  register(plugin: AlgorithmPlugin): this {
    if (!/^[a-z][a-z0-9_]*$/.test(plugin.name)) {
      throw new RangeError(
        `Cannot register algorithm: the name must be lower_snake_case: current value is "${plugin.name}"`,
      );
    }
    if (this.#plugins.has(plugin.name)) {
      throw new RangeError(
        `Cannot register algorithm "${plugin.name}": the name is taken: known algorithms are ${this.#known()}`,
      );
    }
    this.#plugins.set(plugin.name, plugin);
    return this;
  }

  /**
   * The plug-in named `name`.
   *
   * @throws {RangeError} When none is registered; the message lists the known names.
   */
  get(name: string): AlgorithmPlugin {
    const plugin = this.#plugins.get(name);
    if (plugin === undefined) {
      throw new RangeError(`Unknown algorithm "${name}": known algorithms are ${this.#known()}`);
    }
    return plugin;
  }

  /** Whether `name` is registered. */
  has(name: string): boolean {
    return this.#plugins.has(name);
  }

  /** Registered names, in order. */
  names(): string[] {
    return [...this.#plugins.keys()];
  }

  /** Every registered algorithm's YAML section, in order, for the config schema. */
  sections(): Record<string, ConfigSection> {
    return Object.fromEntries(
      [...this.#plugins.values()].map((p) => [p.name, {
        schema: p.configSchema,
        ...(p.description === undefined ? {} : { description: p.description }),
      }]),
    );
  }

  #known(): string {
    return this.names().map((n) => `"${n}"`).join(", ");
  }
}

/**
 * Checks that a module's export is a plug-in; returns it typed.
 *
 * @throws {TypeError} Naming what is missing.
 */
export function asAlgorithmPlugin(value: unknown, where: string): AlgorithmPlugin {
  const v = value as Partial<AlgorithmPlugin> | undefined;
  const missing = [
    typeof v?.name === "string" ? undefined : "name (a string)",
    typeof (v?.configSchema as { safeParse?: unknown } | undefined)?.safeParse === "function"
      ? undefined
      : "configSchema (a zod schema)",
    typeof v?.needsReference === "function" ? undefined : "needsReference (a function)",
    typeof v?.buildGraph === "function" ? undefined : "buildGraph (a function)",
  ].filter((m) => m !== undefined);
  if (missing.length > 0) {
    throw new TypeError(
      `${where} does not export an algorithm plug-in as "algorithm": missing ${missing.join(", ")}`,
    );
  }
  return v as AlgorithmPlugin;
}
