/**
 * `deno task actor <name> --config X --nats URL`: runs one actor of a training graph in a
 * process of its own, for a coordinator (`deno task train` with `placement: { <name>: nats }`)
 * that reaches it through nats-server. The coordinator starts the actors placed on NATS
 * that nobody started by hand, with this same command.
 *
 * The actor is built from the config exactly as the coordinator builds its own actors (the
 * same code: `setupRun` and `buildGraphInput` of `training/graph_input.ts`): its own model
 * copy, tokenizer and verifier pool.
 * This module is also the entry of the Web Worker of an actor placed on `worker`.
 *
 * Exit codes: 0 the coordinator closed the actor (or went away), 1 it failed, 2 bad command
 * line or config.
 *
 * @module
 */
import {
  ArgsError,
  COMMON_FLAGS,
  type FlagSpec,
  formatHelp,
  parseFlags,
  TRAIN_FLAGS,
} from "./args.ts";
import { ConfigError } from "../config/load.ts";
import { natsUrl, tensorBackends } from "../config/schema.ts";
import { type TrainConfig } from "../algorithms/builtins.ts";
import { runMain } from "./common.ts";
import { parseTrainArgs } from "./args.ts";
import { loadRunConfig } from "../training/plugins.ts";
import { setupGraphInput, setupRun } from "../training/graph_input.ts";
import { type PlacedActor, type Port, serveActor } from "../actors/runtime/mod.ts";
import { serveWorker, WORKER_NAME_PREFIX } from "../actors/runtime/worker_transport.ts";
import {
  closeNatsConnections,
  natsHostPort,
  natsSession,
} from "../actors/runtime/nats_transport.ts";

/** The flags of `deno task actor`: train's (they describe the run) and `--nats`. */
const ACTOR_FLAGS: Readonly<Record<string, FlagSpec>> = {
  ...COMMON_FLAGS,
  ...TRAIN_FLAGS,
  nats: {
    type: "string",
    placeholder: "URL",
    help:
      "nats-server address (default: nats.url of the config, else $NATS_URL, else nats://127.0.0.1:4222)",
  },
};

/** `deno task actor --help`. */
export const ACTOR_HELP: string = formatHelp(ACTOR_FLAGS, {
  usage: "deno task actor <name> [--config FILE] [--nats URL] [--set KEY=VALUE]...",
  summary:
    "Runs the actor <name> (sampler, verifier, learner, ref_policy, ...) of the config's graph in\n" +
    "this process, for a coordinator that places it on NATS (placement: { <name>: nats }). The\n" +
    "run is described by train's flags, as the coordinator was started.",
});

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
  const args = parseTrainArgs(argv);
  const { config, registry, resume } = await loadRunConfig({
    ...(args.config ? { config: args.config } : {}),
    ...(args.resume ? { resume: args.resume } : {}),
    overrides: args.overrides,
  });
  // The host writes nothing of the run: its copy of the run folder is a temporary one.
  const runDir = await Deno.makeTempDir({ prefix: `mgrpo-actor-${name}-` });
  const backends = tensorBackends(config);
  const setup = await setupRun(config, {
    runDir,
    registry,
    write: false,
    ...(resume ? { resume } : {}),
    ...(args.config ? { configPath: args.config } : {}),
    // A Sampler placed apart computes on its own backend (sampler.backend).
    backend: name === "sampler" ? backends.sampler ?? backends.learner : backends.learner,
  });
  try {
    const graphInput = setupGraphInput(setup, { runDir });
    let found: PlacedActor | undefined;
    try {
      setup.plugin.buildGraph({
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
  } finally {
    await setup.scorer.close();
    await Deno.remove(runDir, { recursive: true }).catch(() => {});
  }
}

/** `deno task actor` with `argv` as its command line; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  // Checked here so a mistyped flag gets the same one-line answer as every other task.
  const { values } = parseFlags(argv, ACTOR_FLAGS, { allowPositionals: true });
  if (values.help === true) {
    console.log(ACTOR_HELP);
    return 0;
  }
  const name = argv[0];
  if (name === undefined || name.startsWith("-")) {
    throw new ArgsError(
      "Missing the actor name: deno task actor <name> ... (sampler, verifier, learner, ...; see --help)",
    );
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
