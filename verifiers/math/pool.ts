/**
 * A pool of isolated math verifiers with a hard wall-clock limit per verification, so that
 * a pathological answer (a huge power tower, catastrophic backtracking, runaway
 * recursion) can never hang or crash the caller.
 *
 * Each verifier runs {@linkcode verifyMath} in `worker.ts`, either in a child
 * `deno run` process (the default) or in a Web Worker. On a timeout the pool kills that
 * verifier, starts a fresh one and resolves the call with reason `"timeout"`. When a
 * verifier dies while verifying (it crashed, ran out of memory, or was killed from outside,
 * e.g. by {@linkcode VerifierPool.killWorker}), the pool notices, starts a fresh one and
 * runs the lost call once more on another verifier; only a call whose verifier dies twice is
 * answered with reason `"verifier error: <message>"`, so a lost worker never turns into a
 * wrong verdict. Calls never reject except when the pool is closed or no verifier can be
 * started at all.
 *
 * Why processes by default: in Deno 2.9 `Worker.terminate()` does not stop a worker that
 * is busy in JavaScript (an endless loop keeps running on its thread, at 100% of a core,
 * until the process exits; the process cannot even exit on its own), and a worker that
 * runs out of memory aborts the whole process. A child process is killed for real
 * (`SIGKILL`) and has its own heap limit (`memoryLimitMb`). Use `isolation: "worker"`
 * where `--allow-run` is not available; it still bounds the time of every call.
 *
 * @module
 */
import type { MathVerdict, MathVerifyOptions } from "./types.ts";
import type { VerifierReply, VerifyItem, VerifyRequest } from "./worker.ts";

/**
 * Deno's web `Worker`, taken when this module loads: tfjs' threaded wasm build (emscripten)
 * replaces `globalThis.Worker` with `node:worker_threads`' when it starts.
 */
const WebWorker = globalThis.Worker;

/** How each verifier is isolated from the caller. */
export type Isolation = "process" | "worker";

/** Options of {@linkcode VerifierPool}. */
export interface VerifierPoolOptions {
  /**
   * Number of verifiers running at once.
   * @default Math.min(2, navigator.hardwareConcurrency)
   */
  size?: number;
  /**
   * Wall-clock limit of one verification in milliseconds, counted from when its verifier
   * starts on it (time spent queued or starting a verifier does not count).
   * @default 1000
   */
  timeoutMs?: number;
  /**
   * `"process"`: each verifier is a child `deno run` process (needs `--allow-run`); it is
   * killed for real on a timeout and has its own heap limit. `"worker"`: a Web Worker
   * (no extra permission); a timed-out worker is abandoned but, in Deno 2.9, keeps running
   * until its computation ends, and running out of memory aborts the whole process.
   * @default "process"
   */
  isolation?: Isolation;
  /**
   * Most pairs sent to a verifier in one message; a verifier gets its next batch as soon
   * as fewer than `batchSize` of its pairs are left, so up to `2 * batchSize - 1` wait on
   * it. Each pair still gets its own time limit and its own reply; when one times out, the
   * pairs after it go back to the front of the queue. `1` sends one pair at a time.
   * @default 16
   */
  batchSize?: number;
  /**
   * V8 heap limit of each verifier process in MiB (`--max-old-space-size`); a verifier that
   * exceeds it dies and its pair gets a `"verifier error: …"` verdict. Ignored for workers.
   * @default 512
   */
  memoryLimitMb?: number;
  /**
   * How long a verifier may take to start (load its modules) before the pool gives up.
   * @default 30000
   */
  startupTimeoutMs?: number;
  /**
   * Verifier options used for every call; a call's own options override them field by field.
   * @default {}
   */
  verifyOptions?: MathVerifyOptions;
  /**
   * The module each verifier runs: one that calls `serveVerifier()` from `worker.ts`. Tests
   * pass a stand-in that hangs or crashes on purpose.
   * @default new URL("./worker.ts", import.meta.url)
   */
  workerUrl?: URL | string;
}

/** Options of one {@linkcode VerifierPool.verify} call: verifier options plus its time limit. */
export interface VerifyCallOptions extends MathVerifyOptions {
  /**
   * Wall-clock limit of this verification in milliseconds.
   * @default the pool's `timeoutMs`
   */
  timeoutMs?: number;
}

/** One (prediction, reference) pair for {@linkcode VerifierPool.verifyMany}. */
export interface VerifyPair {
  /** The model's response or answer. */
  pred: string;
  /** The reference answer. */
  gold: string;
}

/** Counters of a {@linkcode VerifierPool}, for metrics and tests. */
export interface VerifierPoolStats {
  /** Verifiers alive now (starting or ready). */
  workers: number;
  /** Calls waiting for a verifier. */
  queued: number;
  /** Calls sent to a verifier and not answered yet. */
  running: number;
  /** Verifiers started so far, replacements included. */
  started: number;
  /** Calls answered with reason `"timeout"`. */
  timeouts: number;
  /** Verifiers that died (crashed or were killed) after they started. */
  crashes: number;
  /**
   * Calls run again on another verifier because theirs died while verifying them (a call is
   * retried once; if that verifier dies too, it is answered with `"verifier error: …"`).
   */
  retries: number;
}

/** The `reason` of the verdict of a call that ran out of time. */
export const TIMEOUT_REASON = "timeout";

/** The message of the error that calls pending at {@linkcode VerifierPool.close} reject with. */
export const POOL_CLOSED_MESSAGE = "Cannot verify: the verifier pool is closed";

/** A timer callback that runs this late was held up by a busy caller, not by the verifier. */
const LATE_TIMER_MS = 50;
/** Extra time given once to a verifier whose timer ran late, so that replies already sent are read first. */
const GRACE_MS = 20;
/** After a verifier fails to start, the pool waits this long before starting another. */
const RESTART_DELAY_MS = 1000;

interface Job {
  id: number;
  pred: string;
  gold: string;
  options: MathVerifyOptions | undefined;
  timeoutMs: number;
  /** Whether the call already lost a verifier (it is then not retried again). */
  retried: boolean;
  resolve: (verdict: MathVerdict) => void;
  reject: (error: Error) => void;
}

interface Transport {
  send(request: VerifyRequest): void;
  kill(): void;
  /** Kills the verifier as a crash would: the pool learns of it through `fail`. */
  crash(): void;
  /** Settles once the verifier is gone and its resources are released. */
  readonly exited: Promise<void>;
}

interface TransportEvents {
  reply(reply: VerifierReply): void;
  /** The verifier failed or exited on its own. */
  fail(message: string): void;
}

/** One verifier: its transport, its state and the calls it is working on, in order. */
class Slot {
  transport: Transport | undefined;
  /** Settles when the verifier is ready, fails to start or is stopped first. */
  readonly started: PromiseWithResolvers<void> = Promise.withResolvers();

  constructor() {
    this.started.promise.catch(() => {}); // only warmUp() listens
  }
  ready = false;
  dead = false;
  /** Killed by `killWorker()`: gets no new work while the pool waits to hear it died. */
  dropping = false;
  running: Job[] = [];
  timer: ReturnType<typeof setTimeout> | undefined;
  headStart = 0;
  graceUsed = false;
}

/**
 * A pool of math verifiers with a wall-clock limit per verification; see the module
 * documentation. Calls queue first in, first out when every verifier is busy. Verifiers
 * start lazily, on the first calls, and a crashed or timed-out verifier is replaced at once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VerifierPool } from "./pool.ts";
 *
 * const pool = new VerifierPool({ size: 1 });
 * try {
 *   const verdict = await pool.verify("42", "42");
 *   assert.equal(verdict.equal, true);
 * } finally {
 *   await pool.close();
 * }
 * ```
 */
export class VerifierPool {
  readonly #size: number;
  readonly #timeoutMs: number;
  readonly #isolation: Isolation;
  readonly #batchSize: number;
  readonly #memoryLimitMb: number;
  readonly #startupTimeoutMs: number;
  readonly #verifyOptions: MathVerifyOptions;
  readonly #workerUrl: URL;
  readonly #slots = new Set<Slot>();
  readonly #exits = new Set<Promise<void>>();
  #queue: Job[] = [];
  #nextId = 0;
  #closed = false;
  #started = 0;
  #timeouts = 0;
  #crashes = 0;
  #retries = 0;
  #lastStartFailure = -Infinity;

  /** Creates the pool; no verifier starts before the first call (or {@linkcode warmUp}). */
  constructor(options: VerifierPoolOptions = {}) {
    this.#size = options.size ?? Math.max(1, Math.min(2, navigator.hardwareConcurrency));
    this.#timeoutMs = options.timeoutMs ?? 1000;
    this.#isolation = options.isolation ?? "process";
    this.#batchSize = options.batchSize ?? 16;
    this.#memoryLimitMb = options.memoryLimitMb ?? 512;
    this.#startupTimeoutMs = options.startupTimeoutMs ?? 30_000;
    this.#verifyOptions = options.verifyOptions ?? {};
    this.#workerUrl = new URL(options.workerUrl ?? new URL("./worker.ts", import.meta.url));
    checkInteger("size", this.#size, 1);
    checkPositive("timeoutMs", this.#timeoutMs);
    checkInteger("batchSize", this.#batchSize, 1);
    checkInteger("memoryLimitMb", this.#memoryLimitMb, 16);
    checkPositive("startupTimeoutMs", this.#startupTimeoutMs);
    if (this.#isolation !== "process" && this.#isolation !== "worker") {
      throw new RangeError(
        `Invalid verifier pool option "isolation": must be "process" or "worker": current value is ${
          JSON.stringify(this.#isolation)
        }`,
      );
    }
  }

  /** How the verifiers are isolated. */
  get isolation(): Isolation {
    return this.#isolation;
  }

  /** Number of verifiers running at once. */
  get size(): number {
    return this.#size;
  }

  /**
   * Verifies `pred` against `gold` in a verifier, within the time limit. Resolves with
   * reason `"timeout"` (and `equal: false`, no answers) when the limit is hit, and with
   * `"verifier error: <message>"` when the verifier throws or crashes.
   *
   * @throws {Error} (as a rejection) when the pool is closed before the call is answered,
   * or when no verifier can be started.
   */
  verify(pred: string, gold: string, options: VerifyCallOptions = {}): Promise<MathVerdict> {
    if (this.#closed) return Promise.reject(new Error(POOL_CLOSED_MESSAGE));
    if (typeof pred !== "string" || typeof gold !== "string") {
      const [name, value] = typeof pred !== "string" ? ["pred", pred] : ["gold", gold];
      return Promise.reject(
        new TypeError(
          `Cannot verify: "${name}" must be a string: current value is ${JSON.stringify(value)}`,
        ),
      );
    }
    const { timeoutMs = this.#timeoutMs, ...own } = options;
    try {
      checkPositive("timeoutMs", timeoutMs);
    } catch (e) {
      return Promise.reject(e);
    }
    const merged = { ...this.#verifyOptions, ...own };
    return new Promise((resolve, reject) => {
      this.#queue.push({
        id: this.#nextId++,
        pred,
        gold,
        options: Object.keys(merged).length === 0 ? undefined : merged,
        timeoutMs,
        retried: false,
        resolve,
        reject,
      });
      this.#pump();
    });
  }

  /** Verifies every pair (concurrently, through the queue); the verdicts keep the input order. */
  verifyMany(pairs: Iterable<VerifyPair>, options: VerifyCallOptions = {}): Promise<MathVerdict[]> {
    return Promise.all([...pairs].map((p) => this.verify(p.pred, p.gold, options)));
  }

  /**
   * Starts every verifier now and resolves when all of them are ready, so that the first
   * calls do not wait for startup (and benchmarks can leave it out).
   *
   * @throws {Error} (as a rejection) when a verifier cannot be started.
   */
  async warmUp(): Promise<void> {
    if (this.#closed) throw new Error(POOL_CLOSED_MESSAGE);
    while (this.#slots.size < this.#size) this.#spawn();
    await Promise.all([...this.#slots].map((slot) => slot.started.promise));
  }

  /** The pool's counters now. */
  stats(): VerifierPoolStats {
    let running = 0;
    for (const slot of this.#slots) running += slot.running.length;
    return {
      workers: this.#slots.size,
      queued: this.#queue.length,
      running,
      started: this.#started,
      timeouts: this.#timeouts,
      crashes: this.#crashes,
      retries: this.#retries,
    };
  }

  /**
   * Kills one verifier with `SIGKILL` (a Web Worker is terminated), as a crash would, for
   * tests and fault injection (`exit_worker`). The pool then handles it like any verifier
   * that died: it starts a replacement and runs the call that was in progress once more.
   *
   * @param index Position of the verifier among the ready ones, in the order they started.
   * @default the first ready verifier that is verifying, else the first ready one
   * @returns Whether a verifier was killed (false when none is ready at `index`).
   * @throws {RangeError} When `index` is not an integer >= 0.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { VerifierPool } from "./pool.ts";
   *
   * const pool = new VerifierPool({ size: 1 });
   * try {
   *   await pool.warmUp();
   *   const pending = pool.verify("6", "6");
   *   assert.equal(pool.killWorker(), true);
   *   assert.equal((await pending).equal, true); // run again on a fresh verifier
   *   assert.equal(pool.stats().started, 2);
   * } finally {
   *   await pool.close();
   * }
   * ```
   */
  killWorker(index?: number): boolean {
    if (index !== undefined && (!Number.isInteger(index) || index < 0)) {
      throw new RangeError(
        `Cannot kill a verifier: index must be an integer >= 0: current value is ${index}`,
      );
    }
    const ready = [...this.#slots].filter((slot) => slot.ready && !slot.dropping);
    const slot = index !== undefined
      ? ready[index]
      : ready.find((s) => s.running.length > 0) ?? ready[0];
    if (slot === undefined) return false;
    slot.dropping = true;
    slot.transport!.crash();
    return true;
  }

  /**
   * Stops every verifier; calls not answered yet reject with {@linkcode POOL_CLOSED_MESSAGE}.
   * Resolves once the verifier processes have exited. Calling it again is harmless.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      const error = new Error(POOL_CLOSED_MESSAGE);
      const pending = [...this.#queue];
      this.#queue = [];
      for (const slot of [...this.#slots]) {
        pending.push(...slot.running);
        this.#retire(slot);
      }
      for (const job of pending) job.reject(error);
    }
    await Promise.all(this.#exits);
  }

  /** Same as {@linkcode close}, for `await using pool = new VerifierPool()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // --- scheduling ---

  /** Hands queued calls to idle verifiers and starts verifiers while calls wait. */
  #pump(): void {
    if (this.#closed) return;
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) break;
      // A verifier takes the next batch while it still has fewer than a batch to do, so it
      // never waits for a round trip (with batchSize 1: one call at a time).
      if (!slot.ready || slot.dropping || slot.running.length >= this.#batchSize) continue;
      const batch = this.#queue.splice(0, this.#batchSize);
      const idle = slot.running.length === 0;
      slot.running.push(...batch);
      slot.transport!.send({ type: "verify", items: batch.map(toItem) });
      if (idle) this.#armTimer(slot);
    }
    let starting = 0;
    for (const slot of this.#slots) if (!slot.ready) starting++;
    // After a failed start, leave the work to the verifiers that run rather than retry at once.
    const holdOff = this.#slots.size > 0 &&
      performance.now() - this.#lastStartFailure < RESTART_DELAY_MS;
    while (
      !holdOff && this.#queue.length > starting * this.#batchSize && this.#slots.size < this.#size
    ) {
      this.#spawn();
      starting++;
    }
  }

  #spawn(): void {
    const slot = new Slot();
    this.#slots.add(slot);
    this.#started++;
    const events: TransportEvents = {
      reply: (reply) => this.#onReply(slot, reply),
      fail: (message) => this.#onFail(slot, message),
    };
    slot.timer = setTimeout(
      () => this.#onFail(slot, `it did not start within ${this.#startupTimeoutMs} ms`),
      this.#startupTimeoutMs,
    );
    try {
      slot.transport = this.#isolation === "process"
        ? startProcess(this.#workerUrl, this.#memoryLimitMb, events)
        : startWorker(this.#workerUrl, events);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      queueMicrotask(() => this.#onFail(slot, message));
    }
  }

  #armTimer(slot: Slot): void {
    clearTimeout(slot.timer);
    const head = slot.running[0];
    if (head === undefined) return;
    slot.headStart = performance.now();
    slot.graceUsed = false;
    slot.timer = setTimeout(() => this.#onTimeout(slot), head.timeoutMs);
  }

  #onReply(slot: Slot, reply: VerifierReply): void {
    if (slot.dead) return;
    if (reply.type === "ready") {
      clearTimeout(slot.timer);
      slot.ready = true;
      slot.started.resolve();
      this.#pump();
      return;
    }
    const head = slot.running[0];
    if (head === undefined || head.id !== reply.id) return; // not ours (a stray line)
    slot.running.shift();
    head.resolve(
      reply.type === "result" ? reply.verdict : failedVerdict(`verifier error: ${reply.message}`),
    );
    if (slot.running.length > 0) this.#armTimer(slot);
    else clearTimeout(slot.timer);
    if (this.#queue.length > 0) this.#pump();
  }

  #onTimeout(slot: Slot): void {
    if (slot.dead) return;
    const head = slot.running[0];
    if (head === undefined) return;
    const late = performance.now() - slot.headStart - head.timeoutMs;
    if (late > LATE_TIMER_MS && !slot.graceUsed) {
      // The caller's thread was busy: read the replies already waiting before judging.
      slot.graceUsed = true;
      slot.timer = setTimeout(() => this.#onTimeout(slot), GRACE_MS);
      return;
    }
    this.#timeouts++;
    this.#replace(slot, failedVerdict(TIMEOUT_REASON));
  }

  #onFail(slot: Slot, message: string): void {
    if (slot.dead) return;
    if (!slot.ready) {
      this.#lastStartFailure = performance.now();
      const error = new Error(`Cannot start a verifier ${this.#isolation}: ${message}`);
      slot.started.reject(error);
      this.#retire(slot);
      if (this.#slots.size === 0) {
        // No verifier left to serve the queue (others would, or would fail in turn).
        const waiting = this.#queue;
        this.#queue = [];
        for (const job of waiting) job.reject(error);
      }
      this.#pump();
      return;
    }
    this.#crashes++;
    const head = slot.running[0];
    if (head !== undefined && !head.retried) {
      // Its verifier died under it: run it once more rather than answer a wrong verdict.
      head.retried = true;
      this.#retries++;
      this.#replace(slot, undefined);
      return;
    }
    this.#replace(slot, failedVerdict(`verifier error: ${message}`));
  }

  /**
   * Retires `slot`, answers its current call with `verdict` (or requeues it too when
   * `verdict` is undefined), requeues the rest at the front and starts a new verifier.
   */
  #replace(slot: Slot, verdict: MathVerdict | undefined): void {
    const [head, ...rest] = slot.running;
    this.#retire(slot);
    this.#queue.unshift(...(verdict === undefined && head !== undefined ? [head, ...rest] : rest));
    if (!this.#closed) this.#spawn();
    if (verdict !== undefined) head?.resolve(verdict);
    this.#pump();
  }

  #retire(slot: Slot): void {
    slot.dead = true;
    slot.started.reject(new Error(POOL_CLOSED_MESSAGE)); // no-op once settled
    clearTimeout(slot.timer);
    this.#slots.delete(slot);
    const transport = slot.transport;
    if (transport === undefined) return;
    transport.kill();
    const exit = transport.exited.finally(() => this.#exits.delete(exit));
    this.#exits.add(exit);
  }
}

// --- transports ---

function startWorker(url: URL, events: TransportEvents): Transport {
  const worker = new WebWorker(url, { type: "module" });
  worker.onmessage = (event: MessageEvent<VerifierReply>) => events.reply(event.data);
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault(); // keep the error out of the caller's thread
    events.fail(event.message.replace(/^Uncaught /, ""));
  };
  worker.onmessageerror = () => events.fail("a reply could not be read");
  return {
    send: (request) => worker.postMessage(request),
    kill: () => worker.terminate(),
    crash() {
      worker.terminate();
      queueMicrotask(() => events.fail("the verifier worker was terminated"));
    },
    exited: Promise.resolve(),
  };
}

const encoder = new TextEncoder();

function startProcess(url: URL, memoryLimitMb: number, events: TransportEvents): Transport {
  // No permissions: the verifier reads nothing. Deno finds the repo's deno.json from the
  // module's own folder.
  const args = [
    "run",
    "--quiet",
    "--no-prompt",
    `--v8-flags=--max-old-space-size=${memoryLimitMb}`,
    url.href,
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  let killed = false;
  let stderr = "";
  const stdoutDone = readLines(child.stdout, (line) => {
    if (killed) return;
    let reply: unknown;
    try {
      reply = JSON.parse(line);
    } catch {
      return; // something the verifier printed, not a reply
    }
    if (isReply(reply)) events.reply(reply);
  });
  const stderrDone = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      if (stderr.length < 4000) stderr += chunk;
    }
  })();
  const exited = Promise.all([stdoutDone, stderrDone, child.status]).then(async ([, , status]) => {
    await writer.close().catch(() => {});
    if (!killed) events.fail(describeExit(status, stderr));
  });
  return {
    send(request) {
      writer.write(encoder.encode(JSON.stringify(request) + "\n")).catch(() => {});
    },
    kill() {
      if (killed) return;
      killed = true;
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
    },
    crash() {
      // Not marked as killed: the exit is reported through `fail`, like any unexpected one.
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
    },
    exited: exited.catch(() => {}),
  };
}

// --- helpers ---

function toItem(job: Job): VerifyItem {
  return job.options === undefined
    ? { id: job.id, pred: job.pred, gold: job.gold }
    : { id: job.id, pred: job.pred, gold: job.gold, options: job.options };
}

function failedVerdict(reason: string): MathVerdict {
  return { equal: false, predAnswer: null, goldAnswer: null, reason };
}

function isReply(value: unknown): value is VerifierReply {
  if (typeof value !== "object" || value === null) return false;
  const type = (value as { type?: unknown }).type;
  return type === "ready" || type === "result" || type === "error";
}

async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let start = 0;
    for (let newline = buffer.indexOf("\n"); newline >= 0; newline = buffer.indexOf("\n", start)) {
      onLine(buffer.slice(start, newline));
      start = newline + 1;
    }
    buffer = buffer.slice(start);
  }
  if (buffer !== "") onLine(buffer);
}

/** The first line of the verifier's stderr that names an error, or else its first line. */
function describeExit(status: Deno.CommandStatus, stderr: string): string {
  const how = status.signal === null ? `code ${status.code}` : `signal ${status.signal}`;
  const lines = stderr.split("\n").map((l) => l.replace(/^[#\s]+/, "").trim()).filter((l) =>
    l !== ""
  );
  const line = lines.find((l) => /error|fatal|uncaught|panic|out of memory/i.test(l)) ?? lines[0];
  return `the verifier process exited with ${how}${line === undefined ? "" : `: ${line}`}`;
}

function checkInteger(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(
      `Invalid verifier pool option "${name}": must be an integer >= ${min}: current value is ${value}`,
    );
  }
}

function checkPositive(name: string, value: number): void {
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(
      `Invalid verifier pool option "${name}": must be a finite number > 0: current value is ${value}`,
    );
  }
}
