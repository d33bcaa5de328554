/**
 * The control of a run as the training loop sees it: {@linkcode LoopControl}. Two
 * implementations: {@linkcode startControlServer} runs the run's {@linkcode RunControl} and
 * its HTTP server in a Worker (the loop blocks its own thread with tensor math for seconds;
 * the server must answer meanwhile) and {@linkcode LocalLoopControl} keeps the control in
 * the loop's thread with no server (`control.enabled: false`).
 *
 * The server generates the bearer token, writes it to `<run>/control-token` (mode 0600),
 * listens, and writes `<run>/control.json` with the URL once it listens.
 *
 * @module
 */
import type { TrainConfig } from "../algorithms/builtins.ts";
import { type ActorLoad, generateToken } from "./run_control.ts";
import type { FromWorker, ToWorker } from "./control_protocol.ts";
import {
  type LoopBoundary,
  type LoopControl,
  type LoopControlOptions,
  TOKEN_FILE,
} from "./loop_control.ts";
import { isLoopbackHost } from "./guard.ts";
export * from "./loop_control.ts";

/**
 * Deno's web `Worker`, taken when this module loads: tfjs' threaded wasm build (emscripten)
 * replaces `globalThis.Worker` with `node:worker_threads`' when it starts.
 */
const WebWorker = globalThis.Worker;

/** Options for {@linkcode startControlServer}. */
export interface ControlServerOptions extends LoopControlOptions {
  /** Address to bind, e.g. `"127.0.0.1"`; off loopback, reads need the token too. */
  host: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** The run folder: `control-token` and `control.json` are written there. */
  runDir: string;
  /**
   * The token; a fresh one from {@linkcode generateToken} when absent.
   * @default generateToken()
   */
  token?: string;
}

/** A listening control server, driven by the loop as a {@linkcode LoopControl}. */
export interface ControlServer extends LoopControl {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  /** The bearer token. */
  readonly token: string;
  /** Path of the token file. */
  readonly tokenPath: string;
  /**
   * Stops listening (open event streams are cut after `graceMs`), removes `control.json`
   * and ends the worker.
   */
  close(graceMs?: number): Promise<void>;
}

/** Whether `host` is a loopback address (`127.0.0.0/8`, `::1`, `localhost`): the guard's test. */
export { isLoopbackHost as isLoopback } from "./guard.ts";

/**
 * Starts the control server of a run of `config` in a Worker and resolves once it listens
 * (the token file and `control.json` are written by then).
 *
 * @throws {Error} when the worker cannot listen (the port is taken, no net permission)
 */
export async function startControlServer(
  config: TrainConfig,
  options: ControlServerOptions,
): Promise<ControlServer> {
  const token = options.token ?? generateToken();
  const worker = new WebWorker(new URL("./control_worker.ts", import.meta.url), {
    type: "module",
  });
  const boundaries = new Map<number, PromiseWithResolvers<LoopBoundary>>();
  let nextId = 0;
  let failure: Error | undefined;
  const listening = Promise.withResolvers<string>();
  const closed = Promise.withResolvers<void>();
  worker.onmessage = (event: MessageEvent<FromWorker>) => {
    const m = event.data;
    switch (m.type) {
      case "listening":
        listening.resolve(m.url);
        return;
      case "error":
        failure = new Error(`Cannot run the control server: ${m.message}`);
        listening.reject(failure);
        for (const b of boundaries.values()) b.reject(failure);
        boundaries.clear();
        return;
      case "boundary":
        boundaries.get(m.id)?.resolve(m.boundary);
        boundaries.delete(m.id);
        return;
      case "closed":
        closed.resolve();
        return;
    }
  };
  worker.onerror = (event) => {
    event.preventDefault();
    failure = new Error(`Cannot run the control server: ${event.message}`);
    listening.reject(failure);
    closed.resolve();
  };
  const send = (message: ToWorker) => worker.postMessage(message);
  send({
    type: "init",
    config,
    startStep: options.startStep,
    totalSteps: options.totalSteps,
    policyVersion: options.policyVersion,
    eventsPath: options.eventsPath,
    noReference: options.noReference,
    ...(options.liveFields ? { liveFields: options.liveFields } : {}),
    host: options.host,
    port: options.port,
    token,
    runDir: options.runDir,
    tokenForReads: !isLoopbackHost(options.host),
  });
  let url: string;
  try {
    url = await listening.promise;
  } catch (error) {
    worker.terminate();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    token,
    tokenPath: `${options.runDir}/${TOKEN_FILE}`,
    atStepBoundary() {
      if (failure) return Promise.reject(failure);
      const id = nextId++;
      const pending = Promise.withResolvers<LoopBoundary>();
      boundaries.set(id, pending);
      send({ type: "boundary", id });
      return pending.promise;
    },
    recordStep(step, metrics, { actors, policyVersion }) {
      const loads: Record<string, ActorLoad> = {};
      for (const [name, a] of Object.entries(actors)) {
        loads[name] = { busyMs: a.busyMs, queueDepth: a.queueDepth };
      }
      send({ type: "step", step, metrics, actors: loads, policyVersion });
    },
    recordSamples(samples) {
      send({ type: "samples", samples });
    },
    recordEval(step, metrics) {
      send({ type: "eval", step, metrics });
    },
    requestStop() {
      send({ type: "requestStop" });
    },
    markStopped() {
      send({ type: "stopped" });
    },
    markFailed(error) {
      send({ type: "failed", message: error instanceof Error ? error.message : String(error) });
    },
    close(graceMs = 1000) {
      closing ??= (async () => {
        send({ type: "close", graceMs });
        const timer = setTimeout(() => closed.resolve(), graceMs + 2000);
        await closed.promise;
        clearTimeout(timer);
        worker.terminate();
      })();
      return closing;
    },
  };
}
