/**
 * The training loop's side of live control: what the loop asks at each step boundary
 * ({@linkcode LoopControl}), the in-process {@linkcode LocalLoopControl} (no server), and the
 * files a run's control server writes (`control.json`, `control-token`).
 *
 * @module
 */
import type { z } from "zod";
import type { TrainConfig } from "../algorithms/builtins.ts";
import {
  type ActorLoad,
  type BoundaryAction,
  type ConfigChange,
  RunControl,
  type RunControlOptions,
  type RunSample,
} from "./run_control.ts";

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
  /** The fields `PATCH /config` may change. @default liveFieldsFor(config.algorithm) */
  liveFields?: readonly string[];
  /**
   * The section schemas a patch is validated with (a plug-in's included); in-process only: the
   * control server's Worker imports the config's `plugins` for theirs.
   * @default the built-in algorithms' and the shared sections
   */
  sectionSchemas?: Record<string, z.ZodType>;
}

/**
 * Why a patch raising β is refused in a run without a reference policy, or `undefined`. Only a
 * patch that changes `grpo.beta` is checked: a run whose algorithm has no KL term (RLOO on a
 * config with β > 0) may change its other fields.
 */
function betaConflict(
  noReference: boolean,
  next: TrainConfig,
  changes: readonly ConfigChange[],
): string | undefined {
  return noReference && changes.some((c) => c.field === "grpo.beta") && next.grpo.beta > 0
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
    checkPatch: (next, changes) => betaConflict(options.noReference, next, changes),
    ...(options.liveFields ? { liveFields: options.liveFields } : {}),
    ...(options.sectionSchemas ? { sectionSchemas: options.sectionSchemas } : {}),
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
