/**
 * Actors in another thread or process, behind one transport-agnostic mechanism.
 *
 * On the coordinator, {@linkcode remoteActor} returns a proxy that stands in the graph under
 * the actor's name (a `GraphOptions.placement`): its `handle` forwards the message to the
 * host and awaits `done`, relaying every `ctx.send(to, message)` the real actor makes into
 * the coordinator's own `ctx.send`, acknowledged, so backpressure holds and the order of
 * messages is the one an in-process run has. On the host, {@linkcode serveActor} runs the
 * real actor logic. A {@linkcode Port} carries the frames between them: `worker_transport.ts`
 * (postMessage, structured clone, transferred weight buffers) and `nats_transport.ts`
 * (subjects per actor, request/reply, weights in the object store).
 *
 * Every message that crosses the boundary is validated on receipt with
 * {@linkcode MessageSchema}; a bad one is rejected with the schema's error before any of it
 * is applied. A lost host (killed process, crashed Worker) fails the proxy with the actor's
 * name; with restarts left the graph restarts the proxy, which connects a fresh host, gives it
 * the plain fields of the last input (the Sampler's RNG state and version) and the last
 * `Weights`, and then gets the failed message again, whose sends that already went through
 * are not forwarded twice: no rollout is lost or duplicated.
 *
 * @module
 */
import { z } from "zod";
import { MessageSchema } from "../messages.ts";
import type { ActorContext, ActorLogic } from "./actor.ts";
import type { PlacedActor } from "./graph.ts";

/** What the proxy and the host say to each other. */
export const FrameSchema = z.discriminatedUnion("k", [
  z.object({ k: z.literal("init"), patch: z.record(z.string(), z.unknown()).optional() }),
  z.object({ k: z.literal("ready") }),
  z.object({ k: z.literal("failed"), error: z.string() }),
  z.object({ k: z.literal("handle"), id: z.number().int(), message: z.unknown() }),
  z.object({
    k: z.literal("send"),
    id: z.number().int(),
    seq: z.number().int().min(0),
    to: z.string(),
    message: z.unknown(),
  }),
  z.object({
    k: z.literal("sent"),
    id: z.number().int(),
    seq: z.number().int().min(0),
    error: z.string().optional(),
  }),
  z.object({
    k: z.literal("done"),
    id: z.number().int(),
    patch: z.record(z.string(), z.unknown()),
    error: z.string().optional(),
  }),
  z.object({ k: z.literal("close"), exit: z.boolean() }),
  z.object({ k: z.literal("closed") }),
]);

/** One frame between a proxy and its host. */
export type Frame = z.infer<typeof FrameSchema>;

/**
 * One end of the link between a proxy and its host. Transports implement it; the protocol
 * on top of it is this module's.
 */
export interface Port {
  /** Delivers `frame` to the other end; rejects when that end is gone. */
  post(frame: Frame): Promise<void>;
  /** Sets the handler of the frames that arrive (already decoded, not yet validated). */
  onFrame(handler: (frame: unknown) => void): void;
  /** Resolves, with the reason, once the other end is gone (process killed, Worker crashed). */
  readonly lost: Promise<Error>;
  /** Releases this end; on the proxy side it also ends the host it started. */
  close(): Promise<void>;
}

/** Options of {@linkcode remoteActor}. */
export interface RemoteActorOptions {
  /**
   * Starts a host for the actor (or attaches to one already running) and returns the port to
   * it. Called on the first `init` and again after the host was lost.
   */
  connect(signal: AbortSignal): Promise<Port>;
  /**
   * Told at once when the host is lost, before the failure reaches the supervisor (which
   * reports it, or restarts the proxy when the actor has restarts left).
   * @default undefined
   */
  onLost?: (actor: string, cause: Error) => void;
  /**
   * How long `close` waits for the host to confirm, in milliseconds.
   * @default 2000
   */
  closeTimeoutMs?: number;
}

/** The `type` of the message a proxy sends itself when its host is lost while idle. */
export const HOST_LOST = "HostLost";

/** Raised for a lost host: names the actor and what was seen. */
export class HostLostError extends Error {
  /** Name of the actor whose host was lost. */
  readonly actor: string;

  /**
   * @param actor Name of the actor whose host was lost.
   * @param detail What was seen (exit code, missing responders, Worker error).
   */
  constructor(actor: string, detail: string) {
    super(`The host of actor "${actor}" was lost: ${detail}`);
    this.name = "HostLostError";
    this.actor = actor;
  }
}

type AnyMessage = { type: string };

/** What the proxy keeps across restarts (its input object). */
interface Memory {
  port: Port | undefined;
  /** The plain fields of the host's input after its last handled message. */
  patch: Record<string, unknown> | undefined;
  /** The last `Weights` forwarded: a fresh host gets it before anything else. */
  lastWeights: AnyMessage | undefined;
  /** The message being handled and how many of its sends went through. */
  current: { message: AnyMessage; forwarded: number } | undefined;
  state: ProxyState | undefined;
}

interface Pending<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

interface ProxyState {
  memory: Memory;
  port: Port;
  ctx: ActorContext;
  lost: Error | undefined;
  nextId: number;
  control: Pending<Frame> | undefined;
  call: (Pending<Frame & { k: "done" }> & { id: number; skip: number }) | undefined;
}

/**
 * A proxy for the actor `name` whose logic runs in a host reached through
 * `options.connect`: use it as that actor's `GraphOptions.placement`.
 *
 * @example A Verifier-like doubler in a host on the other end of an in-memory port pair
 * ```ts
 * import assert from "node:assert/strict";
 * import { GraphBuilder } from "./graph.ts";
 * import { memoryPorts, remoteActor, serveActor } from "./remote.ts";
 * import type { ActorLogic } from "./actor.ts";
 *
 * const forward: ActorLogic<void, { type: string }> = {
 *   init() {},
 *   async handle(_state, message, ctx) {
 *     await ctx.send("out", message);
 *   },
 * };
 * const [proxySide, hostSide] = memoryPorts();
 * const served = serveActor({ name: "forward", logic: forward, input: undefined }, hostSide);
 * const graph = new GraphBuilder({
 *   placement: { forward: remoteActor("forward", { connect: () => Promise.resolve(proxySide) }) },
 * }).actor("forward", forward, undefined).sink("out").build();
 * await graph.start();
 * await graph.send("forward", { type: "Next", step: 1 });
 * assert.deepEqual(await graph.sink("out").receive(), { type: "Next", step: 1 });
 * await graph.stop();
 * await served;
 * ```
 */
export function remoteActor(
  name: string,
  options: RemoteActorOptions,
): (actor: PlacedActor) => Pick<PlacedActor, "logic" | "input"> {
  return () => {
    const memory: Memory = {
      port: undefined,
      patch: undefined,
      lastWeights: undefined,
      current: undefined,
      state: undefined,
    };
    return { logic: proxyLogic(name, options) as PlacedActor["logic"], input: memory };
  };
}

function proxyLogic(
  name: string,
  options: RemoteActorOptions,
): ActorLogic<ProxyState, AnyMessage, Memory> {
  return {
    async init(memory, ctx) {
      let fresh = false;
      if (memory.port === undefined) {
        const port = await options.connect(ctx.signal);
        memory.port = port;
        fresh = true;
        void port.lost.then((cause) => {
          if (memory.port !== port) return;
          memory.port = undefined;
          // Its subscriptions go: a replacement host's frames must reach only the new state.
          void port.close().catch(() => {});
          const state = memory.state;
          options.onLost?.(name, cause);
          if (state === undefined || state.port !== port) return;
          state.lost = cause;
          state.control?.reject(cause);
          if (state.call) state.call.reject(cause);
          else if (!ctx.signal.aborted) {
            // Idle: wake the supervisor through our own mailbox.
            void ctx.send(ctx.name, { type: HOST_LOST }).catch(() => {});
          }
        });
      }
      const state: ProxyState = {
        memory,
        port: memory.port,
        ctx,
        lost: undefined,
        nextId: 1,
        control: undefined,
        call: undefined,
      };
      memory.state = state;
      state.port.onFrame((raw) => onProxyFrame(name, state, raw));
      const reply = await control(
        state,
        fresh ? { k: "init", patch: memory.patch ?? {} } : {
          k: "init",
        },
      );
      if (reply.k === "failed") throw new Error(reply.error);
      if (fresh && memory.lastWeights !== undefined) await call(state, memory.lastWeights);
      return state;
    },
    async handle(state, message) {
      if (message.type === HOST_LOST) {
        if (state.lost) throw state.lost;
        return; // a stale wake-up: the host was replaced meanwhile
      }
      if (state.lost) throw state.lost;
      const { memory } = state;
      const skip = memory.current?.message === message ? memory.current.forwarded : 0;
      memory.current = { message, forwarded: skip };
      if (message.type === "Weights") memory.lastWeights = message;
      await call(state, message, skip);
      memory.current = undefined;
    },
    async close(state) {
      const { memory } = state;
      const stopping = state.ctx.signal.aborted;
      const live = !state.lost && memory.port === state.port;
      // A host that ends because we asked it to is not lost.
      if (live && stopping) memory.port = undefined;
      if (live) {
        try {
          await withTimeout(
            control(state, { k: "close", exit: stopping }),
            options.closeTimeoutMs ?? 2000,
          );
        } catch {
          // A host that does not confirm is ended below.
        }
        if (stopping) await state.port.close();
      }
      if (memory.state === state) memory.state = undefined;
    },
  };
}

function control(state: ProxyState, frame: Frame): Promise<Frame> {
  if (state.lost) return Promise.reject(state.lost);
  const reply = Promise.withResolvers<Frame>();
  state.control = reply;
  state.port.post(frame).catch((error) => reply.reject(error));
  return reply.promise.finally(() => {
    if (state.control === reply) state.control = undefined;
  });
}

async function call(state: ProxyState, message: AnyMessage, skip = 0): Promise<void> {
  const id = state.nextId++;
  const done = Promise.withResolvers<Frame & { k: "done" }>();
  state.call = { ...done, id, skip };
  try {
    await state.port.post({ k: "handle", id, message });
    const reply = await done.promise;
    state.memory.patch = reply.patch;
    if (reply.error !== undefined) throw new Error(reply.error);
  } finally {
    state.call = undefined;
  }
}

function onProxyFrame(name: string, state: ProxyState, raw: unknown): void {
  if (state.lost || state.memory.state !== state) return; // a replaced host's late frames
  const parsed = FrameSchema.safeParse(raw);
  if (!parsed.success) {
    const error = new TypeError(
      `Cannot accept a frame from the host of actor "${name}": ${z.prettifyError(parsed.error)}`,
    );
    state.control?.reject(error);
    state.call?.reject(error);
    return;
  }
  const frame = parsed.data;
  switch (frame.k) {
    case "ready":
    case "failed":
    case "closed":
      state.control?.resolve(frame);
      return;
    case "done":
      if (state.call?.id === frame.id) state.call.resolve(frame);
      return;
    case "send":
      void relay(name, state, frame);
      return;
    default:
      state.call?.reject(new TypeError(`Unexpected frame "${frame.k}" from actor "${name}"`));
  }
}

/** Forwards one of the host's sends into the graph, then acknowledges it. */
async function relay(name: string, state: ProxyState, frame: Frame & { k: "send" }) {
  let error: string | undefined;
  try {
    const message = parseMessage(frame.message, `actor "${name}"`);
    const current = state.memory.current;
    const skip = state.call?.id === frame.id ? state.call.skip : 0;
    // A redelivered message's sends that already went through the first time are not repeated.
    if (frame.seq >= skip) await state.ctx.send(frame.to, message);
    if (current) current.forwarded = Math.max(current.forwarded, frame.seq + 1);
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  if (state.lost) return;
  await state.port.post({
    k: "sent",
    id: frame.id,
    seq: frame.seq,
    ...(error === undefined ? {} : { error }),
  }).catch(() => {});
}

/**
 * Validates a message that crossed a boundary against {@linkcode MessageSchema}: returns the
 * parsed message, or throws a `TypeError` with the schema's error naming where it came from.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseMessage } from "./remote.ts";
 *
 * assert.deepEqual(parseMessage({ type: "Next", step: 2 }, "the coordinator"), {
 *   type: "Next",
 *   step: 2,
 * });
 * assert.throws(() => parseMessage({ type: "Next", step: 0 }, "the coordinator"), TypeError);
 * ```
 */
export function parseMessage(message: unknown, from: string): AnyMessage {
  const parsed = MessageSchema.safeParse(message);
  if (!parsed.success) {
    const type = (message as { type?: unknown } | null)?.type;
    throw new TypeError(
      `Cannot accept message "${String(type)}" from ${from}: ${z.prettifyError(parsed.error)}`,
    );
  }
  return parsed.data;
}

/** Options of {@linkcode serveActor}. */
export interface ServeOptions {
  /**
   * Aborted to end the host from outside; the returned promise then resolves.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Called with each valid message before it is handled (for tracing).
   * @default undefined
   */
  onHandle?: (message: AnyMessage) => void;
}

/**
 * Runs `actor` (its name, real logic and input) for a proxy on the other end of `port`.
 * Frames are handled one at a time; the actor's `ctx.send` calls are relayed to the proxy and
 * wait for its acknowledgement. Resolves when the proxy closes the host for good or the port
 * is lost.
 */
export function serveActor<State, Msg extends AnyMessage, Input>(
  actor: { name: string; logic: ActorLogic<State, Msg, Input>; input: Input },
  port: Port,
  options: ServeOptions = {},
): Promise<void> {
  const { name, logic, input } = actor;
  const finished = Promise.withResolvers<void>();
  const controller = new AbortController();
  const end = () => {
    controller.abort();
    finished.resolve();
  };
  options.signal?.addEventListener("abort", end, { once: true });
  void port.lost.then(end);
  const acks = new Map<string, Pending<void>>();
  const queue: Frame[] = [];
  let running = false;
  let state: State | undefined;
  let hasState = false;
  let callId = 0;
  let seq = 0;
  const ctx: ActorContext = {
    name,
    signal: controller.signal,
    send(to, message) {
      const key = `${callId}:${seq}`;
      const ack = Promise.withResolvers<void>();
      acks.set(key, ack);
      port.post({ k: "send", id: callId, seq: seq++, to, message }).catch((e) => ack.reject(e));
      return ack.promise.finally(() => acks.delete(key));
    },
  };
  const run = async (frame: Frame) => {
    switch (frame.k) {
      case "init":
        try {
          if (frame.patch && typeof input === "object" && input !== null) {
            Object.assign(input, frame.patch);
          }
          state = await logic.init(input, ctx);
          hasState = true;
          await port.post({ k: "ready" });
        } catch (e) {
          await port.post({ k: "failed", error: errorText(e) });
        }
        return;
      case "handle": {
        callId = frame.id;
        seq = 0;
        let error: string | undefined;
        try {
          const message = parseMessage(frame.message, "the coordinator") as Msg;
          if (!hasState) throw new Error(`Cannot handle "${message.type}": not initialised`);
          options.onHandle?.(message);
          const next = await logic.handle(state as State, message, ctx);
          if (next !== undefined) state = next;
        } catch (e) {
          error = errorText(e);
        }
        await port.post({
          k: "done",
          id: frame.id,
          patch: plainFields(input),
          ...(error === undefined ? {} : { error }),
        });
        return;
      }
      case "close":
        if (hasState) {
          hasState = false;
          try {
            await logic.close?.(state as State);
          } catch {
            // Reported by nobody: the state is gone either way.
          }
        }
        await port.post({ k: "closed" }).catch(() => {});
        if (frame.exit) end();
        return;
    }
  };
  const pump = async () => {
    if (running) return;
    running = true;
    while (queue.length > 0) await run(queue.shift()!).catch(() => {});
    running = false;
  };
  port.onFrame((raw) => {
    const parsed = FrameSchema.safeParse(raw);
    if (!parsed.success) {
      console.error(`actor ${name}: dropped a malformed frame: ${z.prettifyError(parsed.error)}`);
      return;
    }
    const frame = parsed.data;
    if (frame.k === "sent") {
      const ack = acks.get(`${frame.id}:${frame.seq}`);
      if (frame.error === undefined) ack?.resolve();
      else ack?.reject(new Error(frame.error));
      return;
    }
    queue.push(frame);
    void pump();
  });
  return finished.promise.then(async () => {
    if (hasState) await Promise.resolve(logic.close?.(state as State)).catch(() => {});
    await port.close().catch(() => {});
  });
}

/**
 * The fields of an actor's input that a fresh host gets back after a restart: numbers,
 * strings, booleans and arrays of numbers (the Sampler's `version` and `rngState`).
 */
export function plainFields(input: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof input !== "object" || input === null) return out;
  for (const [key, value] of Object.entries(input)) {
    const t = typeof value;
    if (t === "number" || t === "string" || t === "boolean") out[key] = value;
    else if (Array.isArray(value) && value.every((v) => typeof v === "number")) {
      out[key] = [...value];
    }
  }
  return out;
}

/**
 * Two connected in-memory ports (structured-cloned frames): for tests of the protocol and
 * for examples.
 */
export function memoryPorts(): [Port, Port] {
  const make = () => {
    let handler: ((frame: unknown) => void) | undefined;
    const lost = Promise.withResolvers<Error>();
    return { set: (h: (frame: unknown) => void) => (handler = h), get: () => handler, lost };
  };
  const a = make();
  const b = make();
  const port = (self: typeof a, other: typeof a): Port => ({
    post(frame) {
      const copy = structuredClone(frame);
      queueMicrotask(() => other.get()?.(copy));
      return Promise.resolve();
    },
    onFrame: self.set,
    lost: self.lost.promise,
    close() {
      self.lost.resolve(new Error("this end was closed"));
      other.lost.resolve(new Error("the other end closed the port"));
      return Promise.resolve();
    },
  });
  return [port(a, b), port(b, a)];
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
