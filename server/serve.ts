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
import {
  type ActorLoad,
  type BoundaryAction,
  type ConfigChange,
  generateToken,
  RunControl,
  type RunControlOptions,
  type RunSample,
} from "./run_control.ts";
import type { FromWorker, ToWorker } from "./control_worker.ts";

/**
 * Deno's web `Worker`, taken when this module loads: tfjs' threaded wasm build (emscripten)
 * replaces `globalThis.Worker` with `node:worker_threads`' when it starts.
 */
const WebWorker = globalThis.Worker;

/** File in the run folder that holds the control server's URL while it listens. */
export const CONTROL_FILE = "control.json";
/** File in the run folder that holds the bearer token (mode 0600). */
export const TOKEN_FILE = "control-token";

/** What `control.json` holds. */
export interface ControlFile {
  /** Base URL of the control server, e.g. `http://127.0.0.1:40123`. */
  url: string;
  /** Process id of the run. */
  pid: number;
  /** Whether reads need the token (the server is bound off loopback). */
  tokenForReads: boolean;
}

/**
 * Waits until the run in `runDir` has written `control.json` (its server listens) and
 * returns it; polls every 50 ms.
 *
 * @throws {Error} after `timeoutMs` without the file
 */
export async function waitForControlFile(runDir: string, timeoutMs = 60_000): Promise<ControlFile> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return JSON.parse(await Deno.readTextFile(`${runDir}/${CONTROL_FILE}`));
    } catch (cause) {
      if (Date.now() > deadline) {
        throw new Error(
          `Cannot reach run "${runDir}": no ${CONTROL_FILE} after ${timeoutMs} ms`,
          { cause },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** What the loop learns at a step boundary. */
export interface LoopBoundary extends BoundaryAction {
  /** The config after live changes since the last boundary; absent when none. */
  config?: TrainConfig;
  /** Those changes. */
  changes?: ConfigChange[];
}

/** The run's control as the training loop drives it. */
export interface LoopControl {
  /**
   * Called before every step: resolves at once while running, waits while paused. Save a
   * checkpoint when `checkpoint`, pass `config` on to the actors when present, leave the loop
   * when `stop`.
   */
  atStepBoundary(): Promise<LoopBoundary>;
  /** Records a completed step (sends a `step` event). */
  recordStep(
    step: number,
    metrics: Record<string, number>,
    options: { actors: Record<string, ActorLoad>; policyVersion: number },
  ): void;
  /** Keeps recent samples for `GET /samples`. */
  recordSamples(samples: RunSample[]): void;
  /** Records a held-out evaluation after `step`. */
  recordEval(step: number, metrics: Record<string, number>): void;
  /** Asks the loop to stop at the next boundary (SIGINT, SIGTERM); ignored once stopping. */
  requestStop(): void;
  /** The run ended normally. */
  markStopped(): void;
  /** The run failed with `error`. */
  markFailed(error: unknown): void;
  /** Releases the control (stops the server); call after `markStopped` or `markFailed`. */
  close(): Promise<void>;
}

/** Options of both {@linkcode LoopControl} implementations. */
export interface LoopControlOptions {
  /** Step the run starts after. */
  startStep: number;
  /** Step the run ends at. */
  totalSteps: number;
  /** Policy version before the first step. */
  policyVersion: number;
  /** Where applied config changes are appended. */
  eventsPath: string;
  /** The run has no reference policy: `grpo.beta` cannot rise above 0. */
  noReference: boolean;
}

/** Why a patch raising β is refused in a run without a reference policy, or `undefined`. */
function betaConflict(noReference: boolean, next: TrainConfig): string | undefined {
  return noReference && next.grpo.beta > 0 && next.algorithm !== "ppo"
    ? `field "grpo.beta" can be above 0 only in a run that started with beta > 0 ` +
      `(this one has no reference policy): current value is ${next.grpo.beta}`
    : undefined;
}

/** The {@linkcode RunControl} options of a run. */
function runControlOptions(options: LoopControlOptions): RunControlOptions {
  return {
    startStep: options.startStep,
    totalSteps: options.totalSteps,
    policyVersion: options.policyVersion,
    eventsPath: options.eventsPath,
    checkPatch: (next) => betaConflict(options.noReference, next),
  };
}

/** A {@linkcode LoopControl} in the loop's own thread, without a server. */
export class LocalLoopControl implements LoopControl {
  /** The control (for tests and embedding). */
  readonly control: RunControl;
  #changes: ConfigChange[] = [];

  /** Creates the control of a run of `config`. */
  constructor(config: TrainConfig, options: LoopControlOptions) {
    this.control = new RunControl(config, runControlOptions(options));
    this.control.onConfigChange((changes) => this.#changes.push(...changes));
  }

  /** See {@linkcode LoopControl.atStepBoundary}. */
  async atStepBoundary(): Promise<LoopBoundary> {
    const action = await this.control.atStepBoundary();
    const changes = this.#changes;
    this.#changes = [];
    return changes.length ? { ...action, config: this.control.config, changes } : action;
  }

  /** See {@linkcode LoopControl.recordStep}. */
  recordStep(
    step: number,
    metrics: Record<string, number>,
    options: { actors: Record<string, ActorLoad>; policyVersion: number },
  ): void {
    this.control.recordStep(step, metrics, options);
  }

  /** See {@linkcode LoopControl.recordSamples}. */
  recordSamples(samples: RunSample[]): void {
    this.control.recordSamples(samples);
  }

  /** See {@linkcode LoopControl.recordEval}. */
  recordEval(step: number, metrics: Record<string, number>): void {
    this.control.recordEval(step, metrics);
  }

  /** See {@linkcode LoopControl.requestStop}. */
  requestStop(): void {
    const state = this.control.state;
    if (state !== "stopping" && state !== "stopped" && state !== "failed") {
      this.control.requestStop();
    }
  }

  /** See {@linkcode LoopControl.markStopped}. */
  markStopped(): void {
    this.control.markStopped();
  }

  /** See {@linkcode LoopControl.markFailed}. */
  markFailed(error: unknown): void {
    this.control.markFailed(error);
  }

  /** Nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

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

/**
 * Whether `host` is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLoopback } from "./serve.ts";
 *
 * assert.ok(isLoopback("127.0.0.1"));
 * assert.ok(isLoopback("::1"));
 * assert.ok(!isLoopback("0.0.0.0"));
 * ```
 */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

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
    host: options.host,
    port: options.port,
    token,
    runDir: options.runDir,
    tokenForReads: !isLoopback(options.host),
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
