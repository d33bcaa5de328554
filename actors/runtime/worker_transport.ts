/**
 * The Web Worker transport: an actor's host runs in a Worker of the coordinator's process.
 * Frames are structured-cloned by `postMessage` (no JSON); the `Float32Array`s of a
 * `Weights` message travel in the transfer list, so new policy weights move to the Sampler's
 * Worker without a copy. See `remote.ts` for the protocol.
 *
 * @module
 */
import { type Frame, HostLostError, type Port } from "./remote.ts";

/** Options of {@linkcode workerConnect}. */
export interface WorkerConnectOptions {
  /**
   * Sent to the Worker as its first message: what it needs to build the actor (for the CLI,
   * the config path and overrides).
   */
  boot: unknown;
  /**
   * How long the Worker may take to build the actor, in milliseconds.
   * @default 120000
   */
  bootTimeoutMs?: number;
}

/** Every actor Worker's `name` starts with this (its entry module can tell it runs in one). */
export const WORKER_NAME_PREFIX = "mgrpo-actor:";

/** The boot handshake: coordinator → Worker `{ k: "boot", boot }`, Worker → `{ k: "booted" }`. */
type BootReply = { k: "booted" } | { k: "boot_failed"; error: string };

/**
 * The buffers of a frame's `Weights` tensors that can be moved rather than copied: whole,
 * unshared `ArrayBuffer`s, each once.
 */
export function transferList(frame: Frame): ArrayBuffer[] {
  if (frame.k !== "handle" && frame.k !== "send") return [];
  const message = frame.message as { type?: string; tensors?: Record<string, unknown> };
  if (message?.type !== "Weights" || typeof message.tensors !== "object") return [];
  const buffers = new Set<ArrayBuffer>();
  for (const t of Object.values(message.tensors)) {
    if (!(t instanceof Float32Array)) continue;
    const buffer = t.buffer;
    if (!(buffer instanceof ArrayBuffer)) continue; // a SharedArrayBuffer cannot move
    if (t.byteOffset !== 0 || t.byteLength !== buffer.byteLength) continue; // a view: copy it
    buffers.add(buffer);
  }
  return [...buffers];
}

/**
 * A `connect` for `remoteActor()` that starts the module `entry` as a Worker, sends it
 * `options.boot` and, once it answers that the actor is built, returns the port to it.
 */
export function workerConnect(
  actor: string,
  entry: URL,
  options: WorkerConnectOptions,
): (signal: AbortSignal) => Promise<Port> {
  return async (signal) => {
    const worker = new Worker(entry, { type: "module", name: `${WORKER_NAME_PREFIX}${actor}` });
    const lost = Promise.withResolvers<Error>();
    let handler: ((frame: unknown) => void) | undefined;
    const booted = Promise.withResolvers<void>();
    let isBooted = false;
    worker.onerror = (event) => {
      event.preventDefault();
      const error = new HostLostError(actor, `its Worker crashed: ${event.message}`);
      lost.resolve(error);
      booted.reject(error);
    };
    worker.onmessage = (event: MessageEvent) => {
      if (!isBooted) {
        const reply = event.data as BootReply;
        if (reply.k === "booted") {
          isBooted = true;
          booted.resolve();
        } else booted.reject(new Error(reply.error));
        return;
      }
      handler?.(event.data);
    };
    const onAbort = () => booted.reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(
      () => booted.reject(new Error(`The Worker of actor "${actor}" did not start in time`)),
      options.bootTimeoutMs ?? 120_000,
    );
    worker.postMessage({ k: "boot", boot: options.boot });
    try {
      await booted.promise;
    } catch (error) {
      worker.terminate();
      throw error;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
    let closed = false;
    return {
      post(frame) {
        if (closed) return Promise.reject(new HostLostError(actor, "its Worker was terminated"));
        worker.postMessage(frame, transferList(frame));
        return Promise.resolve();
      },
      onFrame(h) {
        handler = h;
      },
      lost: lost.promise,
      close() {
        closed = true;
        worker.terminate();
        return Promise.resolve();
      },
    };
  };
}

/**
 * Inside a Worker started by {@linkcode workerConnect}: waits for the boot message, calls
 * `build(boot)` (which builds the actor and serves it with the port it is given, see
 * `serveActor()`), and answers the coordinator once the actor is built.
 */
export function serveWorker(
  build: (boot: unknown, port: Port, ready: () => void) => Promise<void>,
): void {
  const scope = globalThis as unknown as {
    postMessage(message: unknown, transfer?: Transferable[]): void;
    onmessage: ((event: MessageEvent) => void) | null;
    close(): void;
  };
  let handler: ((frame: unknown) => void) | undefined;
  const lost = Promise.withResolvers<Error>();
  const port: Port = {
    post(frame) {
      scope.postMessage(frame, transferList(frame));
      return Promise.resolve();
    },
    onFrame(h) {
      handler = h;
    },
    lost: lost.promise,
    close() {
      lost.resolve(new Error("closed"));
      return Promise.resolve();
    },
  };
  scope.onmessage = (event) => {
    const data = event.data as { k?: string; boot?: unknown };
    if (data?.k !== "boot") return handler?.(event.data);
    build(data.boot, port, () => scope.postMessage({ k: "booted" })).catch((e) => {
      scope.postMessage({ k: "boot_failed", error: e instanceof Error ? e.message : String(e) });
    }).finally(() => scope.close());
  };
}
