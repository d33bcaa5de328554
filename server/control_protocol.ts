/**
 * The messages between a run's loop and the Web Worker that serves its control HTTP API
 * (`serve.ts` ↔ `control_worker.ts`).
 *
 * @module
 */
import { type ActorLoad, type RunSample } from "./run_control.ts";
import type { TrainConfig } from "../algorithms/builtins.ts";
import type { LoopBoundary } from "./loop_control.ts";

/** Main → worker: start the control and the server. */
export interface InitMessage {
  type: "init";
  config: TrainConfig;
  startStep: number;
  totalSteps: number;
  policyVersion: number;
  eventsPath: string;
  /** The run has no reference policy: refuse raising `grpo.beta` above 0. */
  noReference: boolean;
  /** The fields `PATCH /config` may change. */
  liveFields?: readonly string[];
  host: string;
  port: number;
  token: string;
  runDir: string;
  tokenForReads: boolean;
}

/** Main → worker messages. */
export type ToWorker =
  | InitMessage
  | { type: "boundary"; id: number }
  | {
    type: "step";
    step: number;
    metrics: Record<string, number>;
    actors: Record<string, ActorLoad>;
    policyVersion: number;
  }
  | { type: "samples"; samples: RunSample[] }
  | { type: "eval"; step: number; metrics: Record<string, number> }
  | { type: "stopped" }
  | { type: "failed"; message: string }
  | { type: "requestStop" }
  | { type: "close"; graceMs: number };

/** Worker → main messages. */
export type FromWorker =
  | { type: "listening"; url: string }
  | { type: "error"; message: string }
  | {
    type: "boundary";
    id: number;
    /** What the loop must do, with the config after live changes since the last boundary. */
    boundary: LoopBoundary;
  }
  | { type: "closed" };
