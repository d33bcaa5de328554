/**
 * `deno task actor <name> --config X --nats URL`: runs one actor of a training graph in a
 * process of its own, for a coordinator (`deno task train` with `placement: { <name>: nats }`)
 * that reaches it through nats-server. The coordinator starts the actors placed on NATS
 * that nobody started by hand, with this same command.
 *
 * The actor is built from the config exactly as the coordinator builds its own actors (the
 * same code, `cli/train.ts` in host mode): its own model copy, tokenizer and verifier pool.
 * This module is also the entry of the Web Worker of an actor placed on `worker`.
 *
 * Exit codes: 0 the coordinator closed the actor (or went away), 1 it failed, 2 bad command
 * line or config.
 *
 * @module
 */
import { ArgsError } from "./args.ts";
import { ConfigError } from "../config/load.ts";
import { DEFAULT_CONFIG_PATH, natsUrl, tensorBackends } from "../config/schema.ts";
import { type TrainConfig } from "../algorithms/builtins.ts";
import { runMain } from "./common.ts";
import { REPO_ROOT } from "../training/setup.ts";
import { main as trainMain } from "./train.ts";
import {
  type PlacedActor,
  type Placement,
  type Port,
  remoteActor,
  serveActor,
} from "../actors/runtime/mod.ts";
import {
  serveWorker,
  WORKER_NAME_PREFIX,
  workerConnect,
} from "../actors/runtime/worker_transport.ts";
import {
  closeNatsConnections,
  natsConnect,
  natsHostPort,
  natsSession,
} from "../actors/runtime/nats_transport.ts";

/** `deno task actor --help`. */
export const ACTOR_HELP =
  `Usage: deno task actor <name> [--config FILE] [--nats URL] [--set KEY=VALUE]...

Runs the actor <name> (sampler, verifier, learner, ref_policy, ...) of the config's graph in
this process, for a coordinator that places it on NATS (placement: { <name>: nats }).

  --config FILE     the run's config (default: the embedded default)
  --nats URL        nats-server address (default: nats.url of the config, else $NATS_URL,
                    else nats://127.0.0.1:4222)
  --set KEY=VALUE   config override, as for deno task train (repeatable)
  --help            this text`;

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
        connect: workerConnect(name, new URL(import.meta.url), { boot: { actor: name, argv } }),
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
              "--allow-all",
              `${REPO_ROOT}cli/actor.ts`,
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

/** Options of {@linkcode hostActor}. */
export interface HostActorOptions {
  /** Train's command line that describes the run (`--config`, `--set`, `--resume`). */
  argv: readonly string[];
  /** The port to serve the actor on, once the config is known. */
  connect: (config: TrainConfig) => Promise<Port>;
  /**
   * Called once the actor is built and its port open.
   * @default does nothing
   */
  ready?: () => void;
}

/**
 * Builds the actor `name` of the graph that `options.argv` describes, exactly as the
 * coordinator builds its own actors, and serves it on the port `options.connect` returns.
 * Resolves to the exit code once the coordinator closes it or goes away.
 */
export async function hostActor(name: string, options: HostActorOptions): Promise<number> {
  const { argv, connect: connectPort, ready = () => {} } = options;
  // The host writes nothing of the run: its copy of the run folder is a temporary one.
  const runDir = await Deno.makeTempDir({ prefix: `mgrpo-actor-${name}-` });
  try {
    return await trainMain([...argv, "--run-dir", runDir], {
      // A Sampler placed apart computes on its own backend (sampler.backend).
      backend: (config) => {
        const backends = tensorBackends(config);
        return name === "sampler" ? backends.sampler ?? backends.learner : backends.learner;
      },
      host: async ({ config, plugin, graphInput }) => {
        let found: PlacedActor | undefined;
        try {
          plugin.buildGraph({
            ...graphInput,
            supervision: {
              // Faults and restarts are the coordinator's; here the actor runs as written.
              placement: { [name]: (actor) => (found = actor) },
            },
          });
        } catch (e) {
          if (!(e instanceof RangeError) || !e.message.includes(`"placement.${name}"`)) throw e;
          const known = e.message.split(": ").pop();
          throw new ArgsError(
            `Cannot serve actor "${name}": the ${config.algorithm} graph has none: ${known}`,
          );
        }
        if (!found) throw new Error(`Cannot serve actor "${name}": not built`);
        const port = await connectPort(config);
        ready();
        // MGRPO_ACTOR_TRACE=1 prints each message as it is handled (tests time a kill by it).
        const trace = Deno.env.get("MGRPO_ACTOR_TRACE") === "1";
        await serveActor(found, port, {
          ...(trace
            ? {
              onHandle: (m) => {
                const { step, purpose } = m as { step?: number; purpose?: string };
                console.error(`actor ${name}: handling ${m.type} ${purpose ?? ""} ${step ?? ""}`);
              },
            }
            : {}),
        });
        return 0;
      },
    });
  } finally {
    await Deno.remove(runDir, { recursive: true }).catch(() => {});
  }
}

/** `deno task actor` with `argv` as its command line; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(ACTOR_HELP);
    return 0;
  }
  const name = argv[0];
  if (name === undefined || name.startsWith("-")) {
    throw new ArgsError(`Missing the actor name: deno task actor <name> ...\n\n${ACTOR_HELP}`);
  }
  const rest = argv.slice(1);
  let url: string | undefined;
  const i = rest.indexOf("--nats");
  if (i >= 0) {
    url = rest[i + 1];
    if (url === undefined || url.startsWith("--")) {
      throw new ArgsError("Missing the value of --nats: e.g. --nats nats://127.0.0.1:4222");
    }
    rest.splice(i, 2);
  }
  const code = await hostActor(name, {
    argv: rest,
    connect: (config) =>
      natsHostPort(name, {
        url: url ?? natsUrl(config),
        session: natsSession(config.run.name),
        durable: config.nats.durable,
      }),
    ready: () => console.error(`actor ${name}: ready (pid ${Deno.pid})`),
  });
  await closeNatsConnections();
  return code;
}

// The Worker of an actor placed on `worker` is named after it (see worker_transport.ts).
const workerName = (globalThis as { name?: unknown }).name;
const inWorker = typeof workerName === "string" && workerName.startsWith(WORKER_NAME_PREFIX);
if (inWorker) {
  serveWorker(async (boot, port, ready) => {
    const { actor, argv } = boot as { actor: string; argv: string[] };
    // The threaded wasm build cannot start a second time in one process (it hangs): a Worker's
    // actor computes on its own thread, which is the point of placing it there.
    const single = [...argv, "--set", "model.wasm_threads=1"];
    await hostActor(actor, { argv: single, connect: () => Promise.resolve(port), ready });
  });
} else if (import.meta.main) {
  await runMain(main).catch((e) => {
    console.error(e instanceof ConfigError || e instanceof ArgsError ? e.message : e);
    Deno.exit(2);
  });
}
