/**
 * The actor contract, after xstate v5 and Ray: plain, transport-agnostic logic
 * (`init`, `handle`, `close`) whose only effects go through
 * {@linkcode ActorContext.send}. The graph (in-process today, Workers or NATS
 * later) implements the context; the logic never sees channels.
 *
 * @module
 */

/** Options for {@linkcode ActorContext.send}. */
export interface SendOptions {
  /**
   * Cancels a send that is waiting on a full mailbox; the promise rejects with
   * `signal.reason` and the message is not delivered.
   * @default undefined
   */
  signal?: AbortSignal;
}

/** What the runtime gives an actor: its name, a way to send, a stop signal. */
export interface ActorContext {
  /** This actor's name in the graph. */
  readonly name: string;
  /**
   * Sends `message` to the actor or sink named `to`. Resolves once the
   * message is accepted by the recipient's mailbox (backpressure: waits while
   * it is full). Rejects with a `RangeError` for an unknown name.
   */
  send<M extends { type: string }>(to: string, message: M, options?: SendOptions): Promise<void>;
  /** Aborted when the graph stops; pass it to long-running work. */
  readonly signal: AbortSignal;
}

/**
 * The behaviour of one actor.
 *
 * Messages are handled one at a time. `handle` returns the next state, or
 * nothing to keep the current one. A throw (or rejection) from `init` or
 * `handle` fails the actor; with `maxRestarts` left, the runtime restarts it
 * instead: it calls `close` on the old state, re-runs `init` and delivers the
 * message whose handler threw again, to the new state (each failure of the
 * redelivered message consumes another restart). No message is lost, but a
 * handler that sent some messages before throwing may send them again; actors
 * on the rollout path send only at the end of a handler, so a redelivered
 * message is counted once.
 *
 * @typeParam State What `init` builds and `handle` threads through.
 * @typeParam Msg The messages this actor accepts.
 * @typeParam Input What `init` is called with.
 *
 * @example A counter, tested without any channel
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ActorContext, ActorLogic } from "./actor.ts";
 *
 * type Msg = { type: "Add"; n: number };
 * const counter: ActorLogic<number, Msg, number> = {
 *   init: (start) => start,
 *   handle(state, message) {
 *     switch (message.type) {
 *       case "Add":
 *         return state + message.n;
 *       default:
 *         throw new TypeError(`Unknown message type "${message.type}"`);
 *     }
 *   },
 * };
 * const ctx: ActorContext = {
 *   name: "counter",
 *   send: () => Promise.resolve(),
 *   signal: new AbortController().signal,
 * };
 * const state = await counter.init(2, ctx);
 * assert.equal(await counter.handle(state, { type: "Add", n: 3 }, ctx), 5);
 * ```
 */
export interface ActorLogic<State, Msg extends { type: string }, Input = void> {
  /** Builds the initial state; runs on start and on each restart. */
  init(input: Input, ctx: ActorContext): State | Promise<State>;
  /** Handles one message; returns the next state or `undefined` to keep it. */
  handle(state: State, message: Msg, ctx: ActorContext): State | void | Promise<State | void>;
  /** Releases the state's resources when the graph stops or before a restart. */
  close?(state: State): void | Promise<void>;
  /**
   * The message types the actor handles, declared so that a built graph can say which
   * actors take a message (`Graph.accepting("Configure")`, `"Snapshot"`): the training loop
   * sends live settings and snapshot requests to those, whatever the algorithm.
   * @default undefined (not declared: the actor is sent only what its graph routes to it)
   */
  readonly accepts?: readonly Msg["type"][];
  /**
   * How many times the actor may be restarted after a failure before the
   * failure stops the graph. A restart re-runs `init` and redelivers the
   * message that failed (see above). `GraphOptions.maxRestarts` overrides it
   * by actor name.
   * @default 0
   */
  maxRestarts?: number;
}

/**
 * The supervisor's report of a failed actor, as a message: `message` is the
 * `type` of the message that was being handled (`"init"` or `"close"` for the
 * lifecycle hooks).
 */
export type ActorFailed = {
  type: "ActorFailed";
  actor: string;
  message: string;
  cause: unknown;
};

/**
 * Raised (through `Graph.done`) when an actor's `init`, `handle` or `close`
 * threw and its restarts were exhausted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ActorFailedError } from "./actor.ts";
 *
 * const error = new ActorFailedError("verifier", "Rollouts", new Error("bad reward"));
 * assert.equal(error.message, 'Actor "verifier" failed while handling "Rollouts": bad reward');
 * assert.deepEqual(error.toReport(), {
 *   type: "ActorFailed",
 *   actor: "verifier",
 *   message: "Rollouts",
 *   cause: error.cause,
 * });
 * ```
 */
export class ActorFailedError extends Error {
  /** Name of the actor that failed. */
  readonly actor: string;
  /** `type` of the message being handled, or `"init"` / `"close"`. */
  readonly messageType: string;
  /** What the actor threw. */
  override readonly cause: unknown;

  /**
   * @param actor Name of the actor that failed.
   * @param messageType `type` of the message being handled, or `"init"`.
   * @param cause What the actor threw.
   */
  constructor(actor: string, messageType: string, cause: unknown) {
    super(`Actor "${actor}" failed while handling "${messageType}": ${causeMessage(cause)}`, {
      cause,
    });
    this.name = "ActorFailedError";
    this.actor = actor;
    this.messageType = messageType;
    this.cause = cause;
  }

  /** The failure as an {@linkcode ActorFailed} message. */
  toReport(): ActorFailed {
    return { type: "ActorFailed", actor: this.actor, message: this.messageType, cause: this.cause };
  }
}

function causeMessage(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  if (typeof cause === "string") return cause;
  try {
    return JSON.stringify(cause) ?? String(cause);
  } catch {
    return String(cause);
  }
}
