/**
 * The NATS transport: an actor's host is an OS process of its own (on this machine or
 * another) that talks to the coordinator through a real `nats-server`.
 *
 * Subjects per actor, under `mgrpo.<session>.<actor>`: `.host` (frames to the host) and
 * `.coord` (frames to the coordinator) are request/reply, the reply acknowledging receipt,
 * so a peer that is gone answers at once with "no responders"; `.alive` and `.calive` answer
 * liveness pings. New policy weights go into the NATS object store (bucket
 * `mgrpo_<session>`, chunked, one object per version, the last two kept) and the frame
 * carries only the object's name; so does any other message too big for one NATS message. With `durable`, rollouts go through a JetStream stream
 * (the server stores them until they are read) and the frame carries their sequence number.
 * Frames are a binary encoding (JSON for the structure, raw bytes for typed arrays): see
 * {@linkcode encodeFrame}. The protocol on top is `remote.ts`'s.
 *
 * @module
 */
import {
  connect,
  type JetStreamClient,
  type JetStreamManager,
  type Msg,
  type NatsConnection,
  type ObjectStore,
  RetentionPolicy,
  StorageType,
  type Subscription,
} from "nats";
import { type Frame, HostLostError, type Port } from "./remote.ts";

const TYPED = {
  f32: Float32Array,
  f64: Float64Array,
  u8: Uint8Array,
  u32: Uint32Array,
  i32: Int32Array,
} as const;
type TypedKind = keyof typeof TYPED;

function typedKind(value: unknown): TypedKind | undefined {
  if (value instanceof Float32Array) return "f32";
  if (value instanceof Float64Array) return "f64";
  if (value instanceof Uint8Array) return "u8";
  if (value instanceof Uint32Array) return "u32";
  if (value instanceof Int32Array) return "i32";
  return undefined;
}

function encodeValue(value: unknown, blobs: Uint8Array[]): unknown {
  if (typeof value === "number") {
    if (Number.isFinite(value) && !Object.is(value, -0)) return value;
    return { $num: Object.is(value, -0) ? "-0" : String(value) };
  }
  if (value === null || typeof value !== "object") return value;
  const kind = typedKind(value);
  if (kind) {
    const view = value as ArrayBufferView;
    blobs.push(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    return { $bin: blobs.length - 1, $t: kind };
  }
  if (Array.isArray(value)) return value.map((v) => encodeValue(v, blobs));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) out[k] = encodeValue(v, blobs);
  }
  return out;
}

function decodeValue(value: unknown, blobs: Uint8Array[]): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => decodeValue(v, blobs));
  const record = value as Record<string, unknown>;
  if (typeof record.$num === "string" && Object.keys(record).length === 1) {
    return record.$num === "-0" ? -0 : Number(record.$num);
  }
  if (typeof record.$bin === "number" && typeof record.$t === "string") {
    const Ctor = TYPED[record.$t as TypedKind];
    const bytes = blobs[record.$bin];
    if (!Ctor || !bytes) throw new SyntaxError(`Cannot decode frame: bad binary reference`);
    const copy = bytes.slice(); // aligned, owned
    return new Ctor(copy.buffer, 0, copy.byteLength / Ctor.BYTES_PER_ELEMENT);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) out[k] = decodeValue(v, blobs);
  return out;
}

/**
 * Encodes a value (a frame, a message) as bytes: a little-endian u32 length, the JSON of the
 * structure, then the bytes of every typed array it holds. Numbers round-trip exactly, NaN,
 * ±Infinity and -0 included.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeFrame, encodeFrame } from "./nats_transport.ts";
 *
 * const value = { type: "Weights", version: 3, tensors: { w: new Float32Array([1.5, NaN]) } };
 * const back = decodeFrame(encodeFrame(value)) as typeof value;
 * assert.equal(back.version, 3);
 * assert.ok(back.tensors.w instanceof Float32Array);
 * assert.deepEqual([...back.tensors.w], [1.5, NaN]);
 * ```
 */
export function encodeFrame(value: unknown): Uint8Array {
  const blobs: Uint8Array[] = [];
  const structure = encodeValue(value, blobs);
  const json = new TextEncoder().encode(
    JSON.stringify({ v: structure, b: blobs.map((b) => b.byteLength) }),
  );
  const total = 4 + json.byteLength + blobs.reduce((a, b) => a + b.byteLength, 0);
  const out = new Uint8Array(total);
  new DataView(out.buffer).setUint32(0, json.byteLength, true);
  out.set(json, 4);
  let offset = 4 + json.byteLength;
  for (const b of blobs) {
    out.set(b, offset);
    offset += b.byteLength;
  }
  return out;
}

/** Decodes what {@linkcode encodeFrame} wrote; a `SyntaxError` for anything else. */
export function decodeFrame(bytes: Uint8Array): unknown {
  if (bytes.byteLength < 4) throw new SyntaxError("Cannot decode frame: too short");
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (4 + length > bytes.byteLength) throw new SyntaxError("Cannot decode frame: truncated");
  const head = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + length))) as {
    v: unknown;
    b: number[];
  };
  const blobs: Uint8Array[] = [];
  let offset = 4 + length;
  for (const n of head.b) {
    blobs.push(bytes.subarray(offset, offset + n));
    offset += n;
  }
  return decodeValue(head.v, blobs);
}

/** Options shared by both ends of a NATS link. */
export interface NatsLinkOptions {
  /** Server address, e.g. `nats://127.0.0.1:4222`. */
  url: string;
  /** Names this run's subjects, bucket and stream; letters, digits, `_` and `-`. */
  session: string;
  /**
   * Send rollouts through a JetStream stream (stored by the server until read).
   * @default false
   */
  durable?: boolean;
  /**
   * How often each end pings the other, in milliseconds.
   * @default 1000
   */
  pingMs?: number;
}

/** The subjects, bucket and stream of one actor of a session. */
export function natsNames(session: string, actor: string) {
  const base = `mgrpo.${session}.${actor}`;
  return {
    host: `${base}.host`,
    coord: `${base}.coord`,
    alive: `${base}.alive`,
    calive: `${base}.calive`,
    rollouts: `${base}.rollouts`,
    bucket: `mgrpo_${session}`,
    stream: `MGRPO_${session}`,
    streamSubjects: `mgrpo.${session}.*.rollouts`,
  };
}

/** A session name from free text (a run name): only letters, digits, `_` and `-`. */
export function natsSession(text: string): string {
  return text.replace(/[^A-Za-z0-9_-]/g, "_") || "run";
}

function isNoResponders(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === "503" || /no responders/i.test(String((error as Error)?.message));
}

/** One end: subscribes to `inbox`, posts to `outbox`, pings `peerAlive`. */
class NatsPort implements Port {
  readonly #nc: NatsConnection;
  readonly #actor: string;
  readonly #outbox: string;
  readonly #names: ReturnType<typeof natsNames>;
  readonly #options: NatsLinkOptions;
  readonly #subs: Subscription[] = [];
  readonly #lost = Promise.withResolvers<Error>();
  readonly #js: JetStreamClient;
  #store: Promise<ObjectStore> | undefined;
  #handler: ((frame: unknown) => void) | undefined;
  #incoming: Promise<void> = Promise.resolve();
  #pinger: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #isLost = false;
  #weightNames: string[] = [];
  /** The host pings the coordinator only once it has heard from one. */
  #peerSeen: boolean;

  constructor(
    nc: NatsConnection,
    actor: string,
    side: "host" | "coord",
    options: NatsLinkOptions,
  ) {
    this.#nc = nc;
    this.#actor = actor;
    this.#options = options;
    this.#names = natsNames(options.session, actor);
    this.#js = nc.jetstream();
    this.#peerSeen = side === "coord";
    const inbox = side === "host" ? this.#names.host : this.#names.coord;
    this.#outbox = side === "host" ? this.#names.coord : this.#names.host;
    const myAlive = side === "host" ? this.#names.alive : this.#names.calive;
    const peerAlive = side === "host" ? this.#names.calive : this.#names.alive;
    this.#subs.push(nc.subscribe(inbox, { callback: (_e, msg) => this.#receive(msg) }));
    this.#subs.push(nc.subscribe(myAlive, { callback: (_e, msg) => msg.respond() }));
    this.#pinger = setInterval(() => {
      if (!this.#peerSeen) return;
      nc.request(peerAlive, undefined, { timeout: 2000 }).catch((error) => {
        // A timeout means a busy peer (or a busy us); only a missing subscriber is a loss.
        if (isNoResponders(error)) {
          this.#markLost(`nothing answers on "${peerAlive}" (its process is gone)`);
        }
      });
    }, options.pingMs ?? 1000);
    void nc.closed().then(() => this.#markLost("the NATS connection closed"));
  }

  get lost(): Promise<Error> {
    return this.#lost.promise;
  }

  /** Resolves once the subscriptions are registered with the server. */
  flush(): Promise<void> {
    return this.#nc.flush();
  }

  markLost(detail: string): void {
    this.#markLost(detail);
  }

  #markLost(detail: string): void {
    if (this.#isLost || this.#closed) return;
    this.#isLost = true;
    this.#lost.resolve(new HostLostError(this.#actor, detail));
  }

  onFrame(handler: (frame: unknown) => void): void {
    this.#handler = handler;
  }

  async post(frame: Frame): Promise<void> {
    if (this.#isLost) throw await this.#lost.promise;
    const payload = await this.#outgoing(frame);
    try {
      await this.#nc.request(this.#outbox, payload, { timeout: 3_600_000 });
    } catch (error) {
      if (isNoResponders(error)) {
        this.#markLost(`nothing answers on "${this.#outbox}" (its process is gone)`);
        throw await this.#lost.promise;
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#pinger);
    for (const sub of this.#subs) sub.unsubscribe();
    await this.#nc.flush().catch(() => {});
  }

  #receive(msg: Msg): void {
    msg.respond(); // receipt: the sender's request resolves
    this.#peerSeen = true;
    let bytes: Uint8Array;
    try {
      bytes = msg.data;
    } catch {
      return;
    }
    // Frames are handled in arrival order, also when one needs a fetch from the server.
    this.#incoming = this.#incoming.then(async () => {
      try {
        const frame = await this.#incomingFrame(decodeFrame(bytes));
        this.#handler?.(frame);
      } catch (error) {
        this.#handler?.({ k: "invalid", error: (error as Error).message });
      }
    });
  }

  #bucket(): Promise<ObjectStore> {
    this.#store ??= this.#js.views.os(this.#names.bucket, {
      storage: this.#options.durable ? StorageType.File : StorageType.Memory,
    });
    return this.#store;
  }

  /** Weights into the object store, rollouts (durable) into the stream; the frame names them. */
  async #outgoing(frame: Frame): Promise<Uint8Array> {
    if (frame.k !== "handle" && frame.k !== "send") return encodeFrame(frame);
    const message = frame.message as { type?: string; version?: number; tensors?: object };
    const weights = message?.type === "Weights" && Object.keys(message.tensors ?? {}).length > 0;
    const encoded = encodeFrame(message);
    // Weights, and anything else too big for one NATS message (a checkpoint's actor files):
    // an object of the store, in chunks; the frame names it.
    if (weights || encoded.byteLength > this.#nc.info!.max_payload / 2) {
      const store = await this.#bucket();
      const name = weights
        ? `${this.#actor}.weights.v${message.version}.${crypto.randomUUID()}`
        : `${this.#actor}.${message?.type}.${crypto.randomUUID()}`;
      await store.putBlob({ name, options: { max_chunk_size: 128 * 1024 } }, encoded);
      if (weights) {
        this.#weightNames.push(name);
        while (this.#weightNames.length > 2) {
          await store.delete(this.#weightNames.shift()!).catch(() => {});
        }
      }
      return encodeFrame({ ...frame, message: { $object: name, $keep: weights } });
    }
    if (this.#options.durable && message?.type === "Rollouts") {
      const ack = await this.#js.publish(this.#names.rollouts, encodeFrame(message));
      return encodeFrame({ ...frame, message: { $stream: ack.seq } });
    }
    return encodeFrame(frame);
  }

  async #incomingFrame(frame: unknown): Promise<unknown> {
    const f = frame as { k?: string; message?: Record<string, unknown> };
    if ((f?.k !== "handle" && f?.k !== "send") || typeof f.message !== "object") return frame;
    const ref = f.message;
    if (typeof ref?.$object === "string") {
      const store = await this.#bucket();
      const blob = await store.getBlob(ref.$object);
      if (blob === null) throw new Error(`Cannot read object "${ref.$object}": no such object`);
      // Weights are removed by their sender (it keeps the last two), the rest by the reader.
      if (ref.$keep !== true) await store.delete(ref.$object).catch(() => {});
      return { ...f, message: decodeFrame(blob) };
    }
    if (typeof ref?.$stream === "number") {
      const jsm: JetStreamManager = await this.#nc.jetstreamManager();
      const stored = await jsm.streams.getMessage(this.#names.stream, { seq: ref.$stream });
      const message = decodeFrame(stored.data);
      await jsm.streams.deleteMessage(this.#names.stream, ref.$stream).catch(() => {});
      return { ...f, message };
    }
    return frame;
  }
}

const connections = new Map<string, Promise<NatsConnection>>();

/** One connection per server address and process. */
export function natsConnection(url: string): Promise<NatsConnection> {
  let nc = connections.get(url);
  if (!nc) {
    nc = connect({ servers: url, name: `mgrpo-${Deno.pid}` }).catch((error) => {
      connections.delete(url);
      throw new Error(`Cannot connect to nats-server at "${url}": ${(error as Error).message}`);
    });
    connections.set(url, nc);
  }
  return nc;
}

/** Closes the connections {@linkcode natsConnection} opened (at the end of a process). */
export async function closeNatsConnections(): Promise<void> {
  const all = [...connections.values()];
  connections.clear();
  for (const nc of all) await (await nc).drain().catch(() => {});
}

/** Host side: the port a `deno task actor` process serves its actor on. */
export async function natsHostPort(actor: string, options: NatsLinkOptions): Promise<Port> {
  const nc = await natsConnection(options.url);
  const port = new NatsPort(nc, actor, "host", options);
  await port.flush();
  return port;
}

/** Options of {@linkcode natsConnect}. */
export interface NatsConnectOptions extends NatsLinkOptions {
  /**
   * Starts a host process for the actor when none answers (the coordinator starts the
   * actors the user did not start with `deno task actor`).
   */
  spawn(): Deno.ChildProcess;
  /**
   * How long a host may take to answer, in milliseconds.
   * @default 300000
   */
  startTimeoutMs?: number;
}

/**
 * A `connect` for `remoteActor()`: attaches to the actor's host when one already answers on
 * its subjects, otherwise starts one with `options.spawn()` and waits for it. The port is
 * lost when the spawned process exits or nothing answers the actor's subjects any more.
 */
export function natsConnect(
  actor: string,
  options: NatsConnectOptions,
): (signal: AbortSignal) => Promise<Port> {
  return async (signal) => {
    const nc = await natsConnection(options.url);
    const names = natsNames(options.session, actor);
    if (options.durable) {
      const jsm = await nc.jetstreamManager();
      await jsm.streams.add({
        name: names.stream,
        subjects: [names.streamSubjects],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
      }).catch(() => {});
    }
    const answers = () =>
      nc.request(names.alive, undefined, { timeout: 500 }).then(() => true, () => false);
    let child: Deno.ChildProcess | undefined;
    if (!(await answers())) {
      child = options.spawn();
      const exited = child.status;
      const deadline = Date.now() + (options.startTimeoutMs ?? 300_000);
      let code: Deno.CommandStatus | undefined;
      void exited.then((s) => (code = s));
      while (!(await answers())) {
        if (code !== undefined) {
          throw new Error(`The process of actor "${actor}" exited with code ${code.code}`);
        }
        if (signal.aborted) {
          child.kill();
          throw signal.reason;
        }
        if (Date.now() > deadline) {
          child.kill();
          throw new Error(`The process of actor "${actor}" did not answer in time`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const port = new NatsPort(nc, actor, "coord", options);
    await port.flush();
    if (child) {
      const process = child;
      void process.status.then((s) =>
        port.markLost(
          `its process ${process.pid} exited${
            s.signal ? ` on ${s.signal}` : ` with code ${s.code}`
          }`,
        )
      );
      const close = port.close.bind(port);
      port.close = async () => {
        await close();
        const exited = await Promise.race([
          process.status.then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), 2000)),
        ]);
        if (!exited) {
          try {
            process.kill("SIGKILL");
          } catch {
            // already gone
          }
        }
      };
    }
    return port;
  };
}
