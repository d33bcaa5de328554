/**
 * Bounded mailboxes with backpressure, after Deno std `async/channel.ts` and
 * Effect's `Queue`.
 *
 * A {@linkcode Channel} holds at most `capacity` values. `send()` resolves only
 * once the value is accepted (buffered or handed to a waiting receiver), so a
 * full mailbox makes the sender wait; `trySend()` returns `false` instead of
 * dropping anything. Actors only ever see the send-only {@linkcode Outbox} or
 * the receive-only {@linkcode Inbox} capability.
 *
 * @module
 */

/** Options for {@linkcode Channel.send} and {@linkcode Channel.receive}. */
export interface ChannelOptions {
  /**
   * Cancels the pending operation: the returned promise rejects with
   * `signal.reason` and a pending value is not enqueued.
   * @default undefined
   */
  signal?: AbortSignal;
}

/** Options for {@linkcode Channel.close}. */
export interface CloseOptions {
  /**
   * Discard the buffered values instead of letting receivers drain them.
   * The discarded values are returned by `close()`.
   * @default false
   */
  discard?: boolean;
}

/**
 * Send-only view of a channel: what an actor gets for a downstream mailbox.
 *
 * @typeParam T The type of the values carried.
 */
export interface Outbox<T> {
  /** Waits until `value` is accepted; see {@linkcode Channel.send}. */
  send(value: T, options?: ChannelOptions): Promise<void>;
  /** Enqueues `value` if there is room now; see {@linkcode Channel.trySend}. */
  trySend(value: T): boolean;
}

/**
 * Receive-only view of a channel: what an actor (or the caller reading a sink)
 * gets for its own mailbox.
 *
 * @typeParam T The type of the values carried.
 */
export interface Inbox<T> {
  /** Waits for the next value; see {@linkcode Channel.receive}. */
  receive(options?: ChannelOptions): Promise<T>;
  /** Iterates values until the channel is closed and drained. */
  [Symbol.asyncIterator](): AsyncIterator<T>;
}

/**
 * Raised by a channel operation that cannot complete because the channel is
 * closed. For a send, `value` is the value that was not delivered; for a
 * receive it is `undefined`. `reason` is what was passed to `close()`.
 *
 * @example Recover the undelivered value
 * ```ts
 * import assert from "node:assert/strict";
 * import { Channel, ChannelClosedError } from "./channel.ts";
 *
 * const channel = new Channel<number>(1);
 * channel.close("shutdown");
 * const error = await channel.send(7).catch((e) => e);
 * assert.ok(error instanceof ChannelClosedError);
 * assert.equal(error.value, 7);
 * assert.equal(error.reason, "shutdown");
 * ```
 */
export class ChannelClosedError extends Error {
  /** The value that was not delivered (`undefined` for a receive). */
  readonly value: unknown;
  /** The reason given to `close()`, if any. */
  readonly reason: unknown;

  /**
   * @param message What failed.
   * @param value The value that was not delivered.
   * @param reason The reason the channel was closed.
   */
  constructor(message: string, value: unknown, reason: unknown) {
    super(reason === undefined ? message : `${message}: ${describeReason(reason)}`, {
      cause: reason,
    });
    this.name = "ChannelClosedError";
    this.value = value;
    this.reason = reason;
  }
}

interface PendingSender<T> {
  value: T;
  resolve(): void;
  reject(error: unknown): void;
}

interface PendingReceiver<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

/**
 * A bounded multi-producer, multi-consumer FIFO channel with backpressure.
 *
 * @typeParam T The type of the values carried.
 *
 * @example Backpressure with capacity 1
 * ```ts
 * import assert from "node:assert/strict";
 * import { Channel } from "./channel.ts";
 *
 * const channel = new Channel<string>(1);
 * await channel.send("a"); // accepted into the buffer
 * const second = channel.send("b"); // waits: the mailbox is full
 * assert.equal(channel.trySend("c"), false);
 * assert.equal(await channel.receive(), "a"); // frees room, "b" moves in
 * await second;
 * channel.close();
 * const rest: string[] = [];
 * for await (const value of channel) rest.push(value);
 * assert.deepEqual(rest, ["b"]);
 * ```
 */
export class Channel<T> implements Outbox<T>, Inbox<T> {
  readonly #capacity: number;
  readonly #buffer: T[] = [];
  readonly #senders: PendingSender<T>[] = [];
  readonly #receivers: PendingReceiver<T>[] = [];
  #closed = false;
  #reason: unknown = undefined;

  /**
   * @param capacity How many values the channel buffers before `send()`
   *   waits; an integer >= 1.
   */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(
        `Cannot create channel: capacity must be an integer >= 1: current value is ${capacity}`,
      );
    }
    this.#capacity = capacity;
  }

  /** Maximum number of buffered values. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Number of values buffered now (the queue depth). */
  get size(): number {
    return this.#buffer.length;
  }

  /** Whether `close()` was called. Buffered values may still be receivable. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The reason given to `close()`, or `undefined`. */
  get reason(): unknown {
    return this.#reason;
  }

  /**
   * Sends `value`, resolving once it is accepted into the buffer or handed to
   * a waiting receiver. While the buffer is full the promise stays pending.
   *
   * Rejects with {@linkcode ChannelClosedError} (carrying `value`) when the
   * channel is or becomes closed before the value is accepted, and with
   * `signal.reason` when `options.signal` aborts first; in both cases the
   * value is not enqueued.
   */
  send(value: T, options: ChannelOptions = {}): Promise<void> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#closed) return Promise.reject(this.#sendError(value));
    if (this.#offer(value)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const index = this.#senders.indexOf(pending);
        if (index !== -1) this.#senders.splice(index, 1);
        reject(signal?.reason);
      };
      const pending: PendingSender<T> = {
        value,
        resolve() {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject(error) {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#senders.push(pending);
    });
  }

  /**
   * Enqueues `value` if a receiver is waiting or the buffer has room, and
   * returns `true`; returns `false` (and keeps nothing) when the buffer is
   * full. Throws {@linkcode ChannelClosedError} when the channel is closed.
   */
  trySend(value: T): boolean {
    if (this.#closed) throw this.#sendError(value);
    return this.#offer(value);
  }

  /**
   * Receives the next value, waiting while the channel is empty. Rejects with
   * {@linkcode ChannelClosedError} once the channel is closed and drained, and
   * with `signal.reason` when `options.signal` aborts first.
   */
  receive(options: ChannelOptions = {}): Promise<T> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#buffer.length > 0) {
      const value = this.#buffer.shift() as T;
      this.#refill();
      return Promise.resolve(value);
    }
    if (this.#closed) return Promise.reject(this.#receiveError());
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        const index = this.#receivers.indexOf(pending);
        if (index !== -1) this.#receivers.splice(index, 1);
        reject(signal?.reason);
      };
      const pending: PendingReceiver<T> = {
        resolve(value) {
          signal?.removeEventListener("abort", onAbort);
          resolve(value);
        },
        reject(error) {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#receivers.push(pending);
    });
  }

  /**
   * Closes the channel. Pending and later sends reject with
   * {@linkcode ChannelClosedError} carrying their value and `reason`. Buffered
   * values can still be received (unless `options.discard`); once drained,
   * receivers reject with {@linkcode ChannelClosedError}. Closing twice is a
   * no-op (the first reason is kept).
   *
   * @returns The values discarded from the buffer (empty unless `discard`).
   */
  close(reason?: unknown, options: CloseOptions = {}): T[] {
    if (this.#closed) {
      return options.discard ? this.#buffer.splice(0) : [];
    }
    this.#closed = true;
    this.#reason = reason;
    for (const sender of this.#senders.splice(0)) {
      sender.reject(this.#sendError(sender.value));
    }
    const discarded = options.discard ? this.#buffer.splice(0) : [];
    if (this.#buffer.length === 0) {
      for (const receiver of this.#receivers.splice(0)) {
        receiver.reject(this.#receiveError());
      }
    }
    return discarded;
  }

  /** Iterates received values; ends when the channel is closed and drained. */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    while (true) {
      let value: T;
      try {
        value = await this.receive();
      } catch (error) {
        if (error instanceof ChannelClosedError) return;
        throw error;
      }
      yield value;
    }
  }

  /** Hands `value` to a receiver or the buffer; false when full. */
  #offer(value: T): boolean {
    const receiver = this.#receivers.shift();
    if (receiver !== undefined) {
      receiver.resolve(value);
      return true;
    }
    if (this.#buffer.length < this.#capacity) {
      this.#buffer.push(value);
      return true;
    }
    return false;
  }

  /** Moves waiting senders' values into freed buffer slots. */
  #refill(): void {
    while (this.#buffer.length < this.#capacity) {
      const sender = this.#senders.shift();
      if (sender === undefined) break;
      this.#buffer.push(sender.value);
      sender.resolve();
    }
    if (this.#closed && this.#buffer.length === 0) {
      for (const receiver of this.#receivers.splice(0)) {
        receiver.reject(this.#receiveError());
      }
    }
  }

  #sendError(value: T): ChannelClosedError {
    return new ChannelClosedError("Cannot send value: channel is closed", value, this.#reason);
  }

  #receiveError(): ChannelClosedError {
    return new ChannelClosedError(
      "Cannot receive value: channel is closed and drained",
      undefined,
      this.#reason,
    );
  }
}

function describeReason(reason: unknown): string {
  if (reason instanceof Error) return `reason is "${reason.message}"`;
  if (typeof reason === "string") return `reason is "${reason}"`;
  return `reason is ${String(reason)}`;
}
