/**
 * In-process actor graphs: a {@linkcode GraphBuilder} wires actors and sinks
 * by name, each with a bounded mailbox; the built {@linkcode Graph} runs one
 * loop per actor and supervises them. A failure (after the actor's restarts)
 * stops the whole graph: every channel closes with the failure as reason and
 * {@linkcode Graph.done} rejects with an {@linkcode ActorFailedError}.
 *
 * An actor with restarts left (`ActorLogic.maxRestarts`, or `GraphOptions.maxRestarts` by
 * name) is restarted instead: its state is closed, `init` runs again and the message whose
 * handler failed is delivered again to the new state, so no message is lost.
 * `GraphOptions.faults` injects faults by actor name, for tests of exactly that.
 *
 * @module
 */

import { type ActorContext, type ActorFailed, ActorFailedError, type ActorLogic } from "./actor.ts";
import type { SendOptions } from "./actor.ts";
import { Channel, type Inbox } from "./channel.ts";
import { type FaultSpecInput, parseFaults, withFaults } from "./faults.ts";

/** Options for {@linkcode GraphBuilder}. */
export interface GraphOptions {
  /**
   * Default mailbox capacity for actors and sinks that do not set their own.
   * @default 16
   */
  capacity?: number;
  /**
   * Called once with the report of the first actor failure, before the graph
   * stops. Errors it throws are ignored.
   * @default undefined
   */
  onFailure?: (report: ActorFailed) => void;
  /**
   * How long `stop()` waits for actor loops and `close` hooks to finish
   * before giving up on them (they are still closed once their handler
   * returns).
   * @default 500
   */
  stopTimeoutMs?: number;
  /**
   * Per-actor restart budgets by actor name; each overrides that actor's
   * `ActorLogic.maxRestarts`. A name that is not an actor of the graph makes
   * `build()` throw a `RangeError` listing the actors.
   * @default {}
   */
  maxRestarts?: Readonly<Record<string, number>>;
  /**
   * How long a failed actor waits before each restart (before `init` runs
   * again), in milliseconds; a stop cuts the wait short.
   * @default 0
   */
  restartDelayMs?: number;
  /**
   * Faults to inject, for tests of supervision (see `faults.ts`): each actor
   * named by a fault is wrapped with `withFaults` when the graph is built. An
   * invalid fault makes `build()` throw a `TypeError`, a fault naming no actor
   * of the graph a `RangeError` listing the actors.
   * @default []
   */
  faults?: readonly FaultSpecInput[];
  /**
   * How an `exit_worker` fault drops a worker process of the actor named
   * `actor` (e.g. `() => pool.killWorker()` for the Verifier's pool); without
   * it the fault calls `killWorker()` on the actor's state.
   * @default undefined
   */
  exitWorker?: (actor: string) => void | Promise<void>;
  /**
   * Where actors run, by name (see `remote.ts`): when the graph is built, each named actor's
   * logic and input are replaced by what its function returns, e.g. a proxy that forwards
   * every message to a Worker or a NATS process. A name that is not an actor of the graph
   * makes `build()` throw a `RangeError` listing the actors.
   * @default {}
   */
  placement?: Readonly<Record<string, Placement>>;
}

/** An actor as {@linkcode GraphOptions.placement} sees it and replaces it. */
export interface PlacedActor {
  /** The actor's name in the graph. */
  name: string;
  /** Its logic, type-erased. */
  logic: ActorLogic<unknown, { type: string }, unknown>;
  /** What its `init` is called with. */
  input: unknown;
}

/** Replaces an actor's logic and input when the graph is built. */
export type Placement = (actor: PlacedActor) => Pick<PlacedActor, "logic" | "input">;

/** The supervision settings of {@linkcode GraphOptions} a run's config sets. */
export type Supervision = Pick<
  GraphOptions,
  "maxRestarts" | "restartDelayMs" | "faults" | "exitWorker" | "placement"
>;

/** Options for {@linkcode GraphBuilder.actor} and {@linkcode GraphBuilder.sink}. */
export interface MailboxOptions {
  /**
   * Mailbox capacity; a full mailbox makes senders wait.
   * @default GraphOptions.capacity
   */
  capacity?: number;
}

/** Lifecycle state of one actor, as reported by {@linkcode Graph.stats}. */
export type ActorStatus = "starting" | "running" | "idle" | "stopped" | "failed";

/** Per-actor counters returned by {@linkcode Graph.stats}. */
export interface ActorStats {
  /** Where the actor is in its lifecycle. */
  state: ActorStatus;
  /** Messages waiting in the actor's mailbox. */
  queueDepth: number;
  /** Messages handled successfully. */
  handled: number;
  /** Total milliseconds spent inside `handle`, not counting time awaiting `ctx.send`. */
  busyMs: number;
  /** How many times the actor was restarted. */
  restarts: number;
}

/**
 * A running set of actors exchanging messages by name. Built by
 * {@linkcode GraphBuilder.build}; transports other than in-process implement
 * the same interface.
 */
export interface Graph {
  /**
   * Runs every actor's `init`, then starts one message loop per actor.
   * Resolves once every `init` has completed; rejects with
   * {@linkcode ActorFailedError} when an `init` failed (the graph is then
   * stopping and `done` rejects with the same error).
   */
  start(): Promise<void>;
  /**
   * Sends `message` from outside (e.g. the training driver) to the actor or
   * sink named `to`; waits while its mailbox is full. Rejects with a
   * `RangeError` for an unknown name and with `ChannelClosedError` once the
   * graph has stopped.
   */
  send<M extends { type: string }>(to: string, message: M, options?: SendOptions): Promise<void>;
  /**
   * The receive end of the sink named `name`. Throws a `RangeError` for an
   * unknown sink.
   */
  sink<T extends { type: string } = { type: string }>(name: string): Inbox<T>;
  /**
   * Aborts `ctx.signal`, closes every channel with `reason` (actor mailboxes
   * discard what they hold; sinks can still be drained), waits (bounded by
   * `stopTimeoutMs`) for every actor loop to end and runs the `close` hooks.
   * Idempotent; never rejects: inspect `done` for the outcome.
   */
  stop(reason?: unknown): Promise<void>;
  /**
   * Settles when the graph has stopped: resolves on a clean stop, rejects
   * with {@linkcode ActorFailedError} when an actor failed.
   */
  readonly done: Promise<void>;
  /** The report of the first actor failure, if any. */
  readonly failure: ActorFailed | undefined;
  /** Per-actor state, queue depth, handled count and busy time. */
  stats(): Record<string, ActorStats>;
  /**
   * The actors that declare they accept messages of `type` (`ActorLogic.accepts`), in the
   * order they were added; an actor placed in a Worker or on NATS answers for its logic.
   */
  accepting(type: string): string[];
  /** Whether every mailbox and sink channel is closed (for tests and diagnostics). */
  channelsClosed(): boolean;
}

type AnyMessage = { type: string };
// Logic is type-erased once stored: the graph routes messages by name and does
// not know each actor's message union (in-process messages are not re-validated).
type ErasedLogic = ActorLogic<unknown, AnyMessage, unknown>;

interface ActorSpec {
  name: string;
  /** The message types its logic declares (`ActorLogic.accepts`), kept when it is placed. */
  accepts?: readonly string[];
  logic: ErasedLogic;
  input: unknown;
  capacity: number;
  maxRestarts: number;
}

interface SinkSpec {
  name: string;
  capacity: number;
}

/**
 * Declares actors and sinks by name and builds a {@linkcode Graph}.
 *
 * @example A two-stage pipeline
 * ```ts
 * import assert from "node:assert/strict";
 * import { GraphBuilder } from "./graph.ts";
 * import type { ActorLogic } from "./actor.ts";
 *
 * type Num = { type: "Num"; n: number };
 * const doubler: ActorLogic<void, Num> = {
 *   init() {},
 *   async handle(_state, message, ctx) {
 *     await ctx.send("out", { type: "Num", n: message.n * 2 });
 *   },
 * };
 * const graph = new GraphBuilder({ capacity: 4 })
 *   .actor("doubler", doubler, undefined)
 *   .sink("out")
 *   .build();
 * await graph.start();
 * await graph.send("doubler", { type: "Num", n: 21 });
 * const out = graph.sink<Num>("out");
 * assert.equal((await out.receive()).n, 42);
 * await graph.stop();
 * await graph.done;
 * ```
 */
export class GraphBuilder {
  readonly #options: GraphOptions;
  readonly #capacity: number;
  readonly #actors: ActorSpec[] = [];
  readonly #sinks: SinkSpec[] = [];

  /** @param options Defaults for the graph; see {@linkcode GraphOptions}. */
  constructor(options: GraphOptions = {}) {
    this.#capacity = checkCapacity("graph", options.capacity ?? 16);
    for (const field of ["stopTimeoutMs", "restartDelayMs"] as const) {
      const value = options[field] ?? 0;
      if (!(value >= 0) || !Number.isFinite(value)) {
        throw new RangeError(
          `Cannot create graph: ${field} must be a finite number >= 0: current value is ${value}`,
        );
      }
    }
    this.#options = options;
  }

  /**
   * Adds an actor named `name` running `logic`, initialised with `input`.
   * Throws an `Error` when the name is empty or already taken, and a
   * `RangeError` for an invalid capacity.
   */
  actor<State, Msg extends { type: string }, Input>(
    name: string,
    logic: ActorLogic<State, Msg, Input>,
    input: Input,
    options: MailboxOptions = {},
  ): this {
    this.#checkName(name);
    this.#actors.push({
      name,
      logic: logic as unknown as ErasedLogic,
      input,
      capacity: checkCapacity(`actor "${name}"`, options.capacity ?? this.#capacity),
      maxRestarts: checkRestarts(`Cannot add actor "${name}"`, logic.maxRestarts ?? 0),
    });
    return this;
  }

  /**
   * Declares an external output named `name`: actors send to it like to an
   * actor, the caller reads it with {@linkcode Graph.sink}.
   */
  sink(name: string, options: MailboxOptions = {}): this {
    this.#checkName(name);
    this.#sinks.push({
      name,
      capacity: checkCapacity(`sink "${name}"`, options.capacity ?? this.#capacity),
    });
    return this;
  }

  /**
   * Creates the mailboxes and returns a graph ready to `start()`, with the
   * `maxRestarts` overrides and `faults` of {@linkcode GraphOptions} applied.
   *
   * @throws {RangeError} When `maxRestarts` or a fault names no actor of the
   * graph, or an override is not an integer >= 0.
   * @throws {TypeError} When a fault does not match `FaultSpecSchema`.
   *
   * @example Restart an actor named in the options and inject a fault into it
   * ```ts
   * import assert from "node:assert/strict";
   * import { GraphBuilder } from "./graph.ts";
   * import type { ActorLogic } from "./actor.ts";
   *
   * type Item = { type: "Item"; step: number };
   * const forward: ActorLogic<void, Item> = {
   *   init() {},
   *   async handle(_state, message, ctx) {
   *     await ctx.send("out", message);
   *   },
   * };
   * const graph = new GraphBuilder({
   *   maxRestarts: { forward: 1 },
   *   faults: [{ actor: "forward", step: 2, kind: "throw" }],
   * }).actor("forward", forward, undefined).sink("out").build();
   * await graph.start();
   * for (const step of [1, 2, 3]) await graph.send("forward", { type: "Item", step });
   * const out = graph.sink<Item>("out");
   * const steps = [];
   * for (let i = 0; i < 3; i++) steps.push((await out.receive()).step);
   * assert.deepEqual(steps, [1, 2, 3]); // step 2 was redelivered after the restart
   * assert.equal(graph.stats().forward?.restarts, 1);
   * await graph.stop();
   * await graph.done;
   * ```
   */
  build(): Graph {
    const names = this.#actors.map((actor) => actor.name);
    const known = `known actors are ${quoteList(names)}`;
    const overrides = this.#options.maxRestarts ?? {};
    for (const name of Object.keys(overrides)) {
      if (!names.includes(name)) {
        throw new RangeError(
          `Cannot build graph: field "maxRestarts.${name}" names no actor: current value is "${name}": ${known}`,
        );
      }
    }
    const placement = this.#options.placement ?? {};
    for (const name of Object.keys(placement)) {
      if (!names.includes(name)) {
        throw new RangeError(
          `Cannot build graph: field "placement.${name}" names no actor: current value is "${name}": ${known}`,
        );
      }
    }
    const faults = parseFaults(this.#options.faults ?? []);
    for (const [i, fault] of faults.entries()) {
      if (!names.includes(fault.actor)) {
        throw new RangeError(
          `Cannot build graph: field "faults[${i}].actor" names no actor: current value is "${fault.actor}": ${known}`,
        );
      }
    }
    const exitWorker = this.#options.exitWorker;
    const actors = this.#actors.map((original): ActorSpec => {
      const override = overrides[original.name];
      const place = placement[original.name];
      const spec = place ? { ...original, ...place(original) } : original;
      return {
        ...spec,
        ...(original.logic.accepts ? { accepts: original.logic.accepts } : {}),
        logic: withFaults(spec.logic, faults, {
          name: spec.name,
          ...(exitWorker ? { exitWorker } : {}),
        }),
        maxRestarts: override === undefined
          ? spec.maxRestarts
          : checkRestarts(`Cannot build graph: field "maxRestarts.${spec.name}"`, override),
      };
    });
    return new InProcessGraph(actors, [...this.#sinks], this.#options);
  }

  #checkName(name: string): void {
    if (typeof name !== "string" || name.length === 0) {
      throw new TypeError(
        `Cannot add to graph: name must be a non-empty string: current value is ${
          JSON.stringify(name)
        }`,
      );
    }
    if (this.#actors.some((a) => a.name === name) || this.#sinks.some((s) => s.name === name)) {
      throw new Error(`Cannot add "${name}" to graph: the name is already taken`);
    }
  }
}

function checkRestarts(what: string, maxRestarts: number): number {
  if (!Number.isInteger(maxRestarts) || maxRestarts < 0) {
    throw new RangeError(
      `${what}: maxRestarts must be an integer >= 0: current value is ${maxRestarts}`,
    );
  }
  return maxRestarts;
}

function checkCapacity(what: string, capacity: number): number {
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new RangeError(
      `Cannot add ${what}: capacity must be an integer >= 1: current value is ${capacity}`,
    );
  }
  return capacity;
}

interface ActorRuntime {
  name: string;
  accepts: readonly string[];
  logic: ErasedLogic;
  input: unknown;
  maxRestarts: number;
  mailbox: Channel<AnyMessage>;
  ctx: ActorContext;
  status: ActorStatus;
  value: unknown;
  hasValue: boolean;
  handled: number;
  busyMs: number;
  /** Time spent awaiting `ctx.send` (backpressure, other actors running): not busy time. */
  sendWaitMs: number;
  restarts: number;
  /** The actor's whole life (init + loop); never rejects. */
  life: Promise<void> | undefined;
  ended: boolean;
  closed: boolean;
}

class InProcessGraph implements Graph {
  readonly #actors: ActorRuntime[];
  readonly #sinks = new Map<string, Channel<AnyMessage>>();
  readonly #routes = new Map<string, Channel<AnyMessage>>();
  readonly #controller = new AbortController();
  readonly #onFailure: ((report: ActorFailed) => void) | undefined;
  readonly #stopTimeoutMs: number;
  readonly #restartDelayMs: number;
  readonly #done: PromiseWithResolvers<void> = Promise.withResolvers<void>();
  #started = false;
  #stopping: Promise<void> | undefined;
  #failure: ActorFailedError | undefined;

  constructor(actors: ActorSpec[], sinks: SinkSpec[], options: GraphOptions) {
    this.#onFailure = options.onFailure;
    this.#stopTimeoutMs = options.stopTimeoutMs ?? 500;
    this.#restartDelayMs = options.restartDelayMs ?? 0;
    // Mark `done` as handled so that a failure never becomes an unhandled
    // rejection when the caller does not await it; awaiting it still throws.
    this.#done.promise.catch(() => {});
    this.#actors = actors.map((spec) => {
      const mailbox = new Channel<AnyMessage>(spec.capacity);
      this.#routes.set(spec.name, mailbox);
      const name = spec.name;
      const ctx: ActorContext = {
        name,
        send: async (to, message, options) => {
          const channel = this.#route(to, message, name);
          const started = performance.now();
          try {
            await channel.send(message, options);
          } finally {
            runtime.sendWaitMs += performance.now() - started;
          }
        },
        signal: this.#controller.signal,
      };
      const runtime: ActorRuntime = {
        name,
        accepts: spec.accepts ?? [],
        logic: spec.logic,
        input: spec.input,
        maxRestarts: spec.maxRestarts,
        mailbox,
        ctx,
        status: "starting",
        value: undefined,
        hasValue: false,
        handled: 0,
        busyMs: 0,
        sendWaitMs: 0,
        restarts: 0,
        life: undefined,
        ended: false,
        closed: false,
      };
      return runtime;
    });
    for (const spec of sinks) {
      const channel = new Channel<AnyMessage>(spec.capacity);
      this.#sinks.set(spec.name, channel);
      this.#routes.set(spec.name, channel);
    }
  }

  get done(): Promise<void> {
    return this.#done.promise;
  }

  get failure(): ActorFailed | undefined {
    return this.#failure?.toReport();
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error("Cannot start graph: it was already started");
    if (this.#stopping !== undefined) throw new Error("Cannot start graph: it was already stopped");
    this.#started = true;
    const inits = this.#actors.map((actor) => {
      const initialised = Promise.withResolvers<boolean>();
      actor.life = this.#live(actor, initialised.resolve);
      return initialised.promise;
    });
    await Promise.all(inits);
    if (this.#failure !== undefined) throw this.#failure;
  }

  send<M extends AnyMessage>(to: string, message: M, options?: SendOptions): Promise<void> {
    try {
      return this.#route(to, message, undefined).send(message, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  sink<T extends AnyMessage = AnyMessage>(name: string): Inbox<T> {
    const channel = this.#sinks.get(name) as Channel<T> | undefined;
    if (channel === undefined) {
      throw new RangeError(
        `Cannot read sink "${name}": no sink has that name: known sinks are ${
          quoteList([...this.#sinks.keys()])
        }`,
      );
    }
    // A receive-only view: callers cannot send to or close the channel.
    return {
      receive: (options) => channel.receive(options),
      [Symbol.asyncIterator]: () => channel[Symbol.asyncIterator](),
    };
  }

  stop(reason?: unknown): Promise<void> {
    this.#stopping ??= this.#teardown(reason);
    return this.#stopping;
  }

  accepting(type: string): string[] {
    return this.#actors.filter((a) => a.accepts.includes(type)).map((a) => a.name);
  }

  stats(): Record<string, ActorStats> {
    const stats: Record<string, ActorStats> = {};
    for (const actor of this.#actors) {
      stats[actor.name] = {
        state: actor.status,
        queueDepth: actor.mailbox.size,
        handled: actor.handled,
        busyMs: actor.busyMs,
        restarts: actor.restarts,
      };
    }
    return stats;
  }

  channelsClosed(): boolean {
    return [...this.#routes.values()].every((channel) => channel.closed);
  }

  #route(to: string, message: AnyMessage, from: string | undefined): Channel<AnyMessage> {
    const channel = this.#routes.get(to);
    if (channel === undefined) {
      const source = from === undefined ? "" : ` from "${from}"`;
      throw new RangeError(
        `Cannot send "${message.type}"${source} to unknown actor "${to}": known names are ${
          quoteList([...this.#routes.keys()])
        }`,
      );
    }
    return channel;
  }

  /** Init (with restarts), then the message loop. Never rejects. */
  async #live(actor: ActorRuntime, initialised: (ok: boolean) => void): Promise<void> {
    try {
      const ok = await this.#init(actor);
      initialised(ok);
      if (ok) await this.#loop(actor);
    } catch (error) {
      // Only reachable through a bug in the runtime itself; still supervised.
      initialised(false);
      this.#fail(actor, "runtime", error);
    } finally {
      actor.ended = true;
    }
  }

  /** Runs `init`, retrying while restarts are left. False when it failed or the graph stopped. */
  async #init(actor: ActorRuntime): Promise<boolean> {
    while (true) {
      actor.status = "starting";
      try {
        actor.value = await actor.logic.init(actor.input, actor.ctx);
        actor.hasValue = true;
        actor.status = "idle";
        return true;
      } catch (cause) {
        if (this.#controller.signal.aborted) return false;
        if (actor.restarts < actor.maxRestarts) {
          actor.restarts++;
          if (!(await this.#backOff())) return false;
          continue;
        }
        this.#fail(actor, "init", cause);
        return false;
      }
    }
  }

  async #loop(actor: ActorRuntime): Promise<void> {
    const signal = this.#controller.signal;
    // The message whose handler failed, delivered again to the restarted state.
    let redeliver: AnyMessage | undefined;
    while (!signal.aborted) {
      let message: AnyMessage;
      if (redeliver !== undefined) {
        message = redeliver;
        redeliver = undefined;
      } else {
        try {
          message = await actor.mailbox.receive();
        } catch {
          return; // closed: the graph is stopping
        }
      }
      if (signal.aborted) return;
      actor.status = "running";
      const started = performance.now();
      const waitedBefore = actor.sendWaitMs;
      let failed = false;
      let cause: unknown;
      try {
        const next = await actor.logic.handle(actor.value, message, actor.ctx);
        if (next !== undefined) actor.value = next;
        actor.handled++;
      } catch (error) {
        failed = true;
        cause = error;
      }
      // Busy time excludes awaiting ctx.send: in one thread that wait includes the time the
      // receiving actors spend running, which is theirs.
      actor.busyMs += performance.now() - started - (actor.sendWaitMs - waitedBefore);
      actor.status = "idle";
      if (!failed) continue;
      // A handler interrupted by the stop (closed channel, aborted signal) is not a failure.
      if (signal.aborted) return;
      if (actor.restarts >= actor.maxRestarts) {
        this.#fail(actor, message.type, cause);
        return;
      }
      actor.restarts++;
      await this.#closeState(actor, false);
      actor.closed = false;
      if (!(await this.#backOff())) return;
      if (!(await this.#init(actor))) return;
      redeliver = message;
    }
  }

  /** Waits `restartDelayMs` before a restart; false when the graph stopped meanwhile. */
  async #backOff(): Promise<boolean> {
    const signal = this.#controller.signal;
    if (this.#restartDelayMs > 0 && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, this.#restartDelayMs);
        signal.addEventListener("abort", done, { once: true });
      });
    }
    return !signal.aborted;
  }

  /** Records the first failure, reports it and stops the graph. */
  #fail(actor: ActorRuntime, messageType: string, cause: unknown): void {
    actor.status = "failed";
    if (this.#failure !== undefined) return;
    const error = new ActorFailedError(actor.name, messageType, cause);
    this.#failure = error;
    try {
      this.#onFailure?.(error.toReport());
    } catch {
      // A failing callback must not prevent the stop.
    }
    void this.stop(error);
  }

  /** Runs the `close` hook once per state; reports its failure when `report`. */
  async #closeState(actor: ActorRuntime, report: boolean): Promise<void> {
    if (actor.closed || !actor.hasValue) return;
    actor.closed = true;
    actor.hasValue = false;
    const value = actor.value;
    actor.value = undefined;
    if (actor.logic.close === undefined) return;
    try {
      await actor.logic.close(value);
    } catch (cause) {
      if (report) this.#fail(actor, "close", cause);
    }
  }

  async #teardown(reason: unknown): Promise<void> {
    this.#controller.abort(reason);
    for (const actor of this.#actors) actor.mailbox.close(reason, { discard: true });
    for (const channel of this.#sinks.values()) channel.close(reason);

    const deadline = performance.now() + this.#stopTimeoutMs;
    const lives = this.#actors.flatMap((actor) => actor.life === undefined ? [] : [actor.life]);
    await waitBounded(Promise.all(lives), deadline);

    const closes: Promise<void>[] = [];
    for (const actor of this.#actors) {
      if (actor.life === undefined || actor.ended) {
        closes.push(this.#closeState(actor, true));
      } else {
        // Still inside a handler that ignored the signal: close its state when it returns.
        void actor.life.then(() => this.#closeState(actor, false));
      }
    }
    await waitBounded(Promise.all(closes), deadline);

    for (const actor of this.#actors) {
      if (actor.status !== "failed") actor.status = "stopped";
    }
    if (this.#failure !== undefined) this.#done.reject(this.#failure);
    else this.#done.resolve();
  }
}

/** Waits for `promise` (which must not reject) until `deadline`; clears its timer. */
async function waitBounded(promise: Promise<unknown>, deadline: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, deadline - performance.now()));
  });
  try {
    await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function quoteList(names: string[]): string {
  return names.length === 0 ? "none" : names.map((name) => `"${name}"`).join(", ");
}
