/**
 * Where a run's actors go (`placement:`): a proxy for every actor placed in a Web Worker or on
 * NATS, whose host (`cli/actor.ts`, started as the Worker's module or as a process) rebuilds
 * the graph's input from the same config and serves that one actor.
 *
 * @module
 */
import { ConfigError } from "../config/load.ts";
import { DEFAULT_CONFIG_PATH, natsUrl } from "../config/schema.ts";
import { type TrainConfig } from "../algorithms/builtins.ts";
import { type Placement, remoteActor } from "../actors/runtime/mod.ts";
import { workerConnect } from "../actors/runtime/worker_transport.ts";
import { natsConnect, natsSession } from "../actors/runtime/nats_transport.ts";
import { RUN_PERMISSIONS } from "./permissions.ts";

/**
 * The wasm backend's threads for a run: 1 when an actor is placed on `worker` (the threaded
 * build, started in this thread, makes a Worker's backend hang; each Worker is a thread of
 * its own instead), else `model.wasm_threads`.
 */
export function wasmThreadsFor(config: TrainConfig): number {
  return Object.values(config.placement).includes("worker") ? 1 : config.model.wasm_threads;
}

/** What a coordinator passes to the hosts it starts: how to rebuild the same config. */
export interface PlaceOptions {
  /** The config file; the embedded default when absent. */
  configPath: string | undefined;
  /** The `--set` overrides, in command-line order. */
  overrides: readonly string[];
  /**
   * The run folder a resumed run continues (`--resume`): hosts load the same checkpoint.
   * @default undefined
   */
  resume?: string;
  /**
   * Told when an actor's host is lost (before the supervisor reports or restarts it).
   * @default prints `actor "<name>": <cause>` on stderr
   */
  onLost?: (actor: string, cause: Error) => void;
}

/** The module that hosts one actor: a Worker's module, or a process's entry. */
const ACTOR_ENTRY = new URL("../cli/actor.ts", import.meta.url);

/** The command line a host rebuilds the coordinator's config from. */
function hostArgv(options: PlaceOptions): string[] {
  // A resumed run's config is the one in its folder, which --resume reads.
  const config = options.resume === undefined
    ? ["--config", options.configPath ?? DEFAULT_CONFIG_PATH]
    : ["--resume", options.resume];
  return [...config, ...options.overrides.flatMap((o) => ["--set", o])];
}

/**
 * The `GraphOptions.placement` of a config's `placement:` section: a proxy for every actor
 * placed on `worker` or `nats`. Throws a `ConfigError` for a placement the run cannot honour.
 */
export function placeActors(
  config: TrainConfig,
  options: PlaceOptions,
): Record<string, Placement> {
  const placement: Record<string, Placement> = {};
  const display = options.configPath ?? "configs/tiny-mgrpo.yaml";
  const onLost = options.onLost ??
    ((actor: string, cause: Error) => console.error(`actor "${actor}": ${cause.message}`));
  for (const [name, where] of Object.entries(config.placement)) {
    if (where === "inprocess") continue;
    if ((name === "sampler" || name === "learner") && config.sampler.share_weights) {
      throw new ConfigError(display, [{
        field: `placement.${name}`,
        message:
          `field "placement.${name}" cannot be "${where}" with sampler.share_weights: true (the Sampler and the Learner would need one model object): current value is "${where}"`,
      }]);
    }
    const argv = hostArgv(options);
    if (where === "worker") {
      placement[name] = remoteActor(name, {
        connect: workerConnect(name, ACTOR_ENTRY, { boot: { actor: name, argv } }),
        onLost,
      });
      continue;
    }
    const url = natsUrl(config);
    placement[name] = remoteActor(name, {
      connect: natsConnect(name, {
        url,
        session: natsSession(config.run.name),
        durable: config.nats.durable,
        spawn: () =>
          new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              // The permissions of train itself, no more.
              ...RUN_PERMISSIONS,
              ACTOR_ENTRY.pathname,
              name,
              "--nats",
              url,
              ...argv,
            ],
            stdin: "null",
            stdout: "inherit",
            stderr: "inherit",
          }).spawn(),
      }),
      onLost,
    });
  }
  return placement;
}
