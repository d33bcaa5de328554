/**
 * Loads a training config together with the algorithm plug-ins it lists under `plugins:`:
 * each module is imported and its `algorithm` export registered before the config is
 * validated, so the plug-in's section is checked (with file, line and field in errors) like
 * a built-in one, and `algorithm:` may name it.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parse as parseYaml } from "yaml";
import {
  ConfigError,
  type LoadConfigOptions,
  loadConfigWith,
  parseOverride,
} from "../config/load.ts";
import { DEFAULT_CONFIG_PATH } from "../config/schema.ts";
import { type AlgorithmRegistry, asAlgorithmPlugin } from "../algorithms/registry.ts";
import { builtinAlgorithms, type TrainConfig } from "../algorithms/builtins.ts";
import { resumePoint } from "./resume.ts";
import type { ResumePoint } from "./resume.ts";

/** Options of {@linkcode loadConfigWithPlugins}. */
export interface LoadWithPluginsOptions extends Omit<LoadConfigOptions, "sections"> {
  /** Registry to add the plug-ins to (e.g. with algorithms registered in TypeScript). @default the built-ins */
  registry?: AlgorithmRegistry;
}

/**
 * `loadConfig` after importing and registering the config's `plugins`: every algorithm of
 * the registry (built-ins, those registered in TypeScript, the plug-ins) gets its section.
 *
 * @throws {ConfigError} When a plug-in cannot be imported or does not export an algorithm
 * plug-in (the field is `plugins.<i>`), or the config is invalid.
 */
export async function loadConfigWithPlugins(
  path: string | undefined,
  options: LoadWithPluginsOptions = {},
): Promise<{ config: TrainConfig & Record<string, unknown>; registry: AlgorithmRegistry }> {
  const registry = options.registry ?? builtinAlgorithms();
  const displayPath = path ?? "configs/tiny-mgrpo.yaml";
  for (const [i, pluginPath] of (await pluginPaths(path, options)).entries()) {
    const field = `plugins.${i}`;
    const module = await importConfigModule(pluginPath, field, displayPath);
    try {
      const plugin = asAlgorithmPlugin(module.algorithm, `"${pluginPath}"`);
      if (!registry.has(plugin.name)) registry.register(plugin);
    } catch (cause) {
      throw new ConfigError(displayPath, [{
        field,
        message: `field "${field}" ${(cause as Error).message}: current value is "${pluginPath}"`,
      }], { cause });
    }
  }
  const config = loadConfigWith(path, { ...options, sections: registry.sections() });
  return { config: config as TrainConfig & Record<string, unknown>, registry };
}

/**
 * Imports a module named by a config field (a path relative to the working directory).
 *
 * @throws {ConfigError} When it cannot be imported; the message names the field and path.
 */
export async function importConfigModule(
  path: string,
  field: string,
  configPath: string,
): Promise<Record<string, unknown>> {
  const url = pathToFileURL(isAbsolute(path) ? path : resolve(Deno.cwd(), path));
  try {
    return await import(url.href);
  } catch (cause) {
    throw new ConfigError(configPath, [{
      field,
      message: `field "${field}" cannot be imported: ${
        (cause as Error).message?.split("\n")[0]
      }: current value is "${path}"`,
    }], { cause });
  }
}

/** The `plugins` list of the file and the overrides, read leniently (validation comes later). */
async function pluginPaths(
  path: string | undefined,
  options: LoadConfigOptions,
): Promise<string[]> {
  let paths: unknown;
  try {
    const text = options.text ?? await Deno.readTextFile(path ?? DEFAULT_CONFIG_PATH);
    paths = (parseYaml(text) as Record<string, unknown> | null)?.plugins;
  } catch {
    return []; // loadConfig reports the file's problem
  }
  for (const o of options.overrides ?? []) {
    try {
      const parsed = parseOverride(o);
      if (parsed.key === "plugins") paths = parsed.value;
    } catch {
      // loadConfig reports a malformed override
    }
  }
  return Array.isArray(paths) ? paths.filter((p): p is string => typeof p === "string") : [];
}

/** Options of {@linkcode loadRunConfig}: what `deno task train` reads from its command line. */
export interface RunConfigOptions {
  /** The config file (`--config`). @default the embedded default */
  readonly config?: string;
  /** A run folder to continue from its newest checkpoint (`--resume`). @default a new run */
  readonly resume?: string;
  /** `--set` overrides, in order. @default [] */
  readonly overrides?: readonly string[];
  /** Algorithms registered in TypeScript. @default the built-ins */
  readonly registry?: AlgorithmRegistry;
}

/**
 * The config of a run as `deno task train` and `deno task actor` load it: the file with its
 * plug-ins, or, to resume, the run folder's `config.yaml` with the live settings of its newest
 * checkpoint applied as values; then the overrides.
 *
 * @throws {ConfigError} When the config is invalid; an `Error` when `resume` holds no
 * checkpoint.
 */
export async function loadRunConfig(options: RunConfigOptions): Promise<{
  config: TrainConfig & Record<string, unknown>;
  registry: AlgorithmRegistry;
  resume: ResumePoint | undefined;
}> {
  const resume = options.resume ? await resumePoint(options.resume) : undefined;
  const { config, registry } = await loadConfigWithPlugins(
    options.resume ? `${options.resume}/config.yaml` : options.config,
    {
      overrides: options.overrides ?? [],
      values: resume?.saved.live_config ?? {},
      ...(options.registry ? { registry: options.registry } : {}),
    },
  );
  return { config, registry, resume };
}
