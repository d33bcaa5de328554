/**
 * Multi-threaded tfjs-backend-wasm under Deno (opt-in: `model.wasm_threads`).
 *
 * tfjs 4.22 turns wasm threads off whenever it thinks it runs in Node (`IS_NODE`, which
 * Deno's npm compatibility makes true), and its threaded build cannot start there as is:
 * emscripten starts its pthread workers from `blob:` URLs, which Deno's `node:worker_threads`
 * refuses. This module bridges that, as `../shared/TFJS-NOTES.md` §4 describes:
 *
 * 1. string `Blob`s are remembered, and `URL.createObjectURL` of one writes it to a temporary
 *    `.cjs` file and returns its path, which `node:worker_threads` accepts;
 * 2. the worker file starts with the globals the emscripten glue expects from the bundle
 *    (`require$$0..4`, `commonjsGlobal`, `_scriptDir`) and makes the worker globals it
 *    reassigns (`self`, `location`, `performance`) writable;
 * 3. `mainScriptUrlOrBlob`, the main script the workers load, is turned into such a path when
 *    tfjs assigns it (a one-shot setter on `Object.prototype`);
 * 4. the multithread flag is set and the thread count given to the backend.
 *
 * It relies on tfjs' and emscripten's internals (pinned at 4.22.0). The pthread workers keep
 * the process alive while they are referenced: the workers node:worker_threads starts are
 * recorded, and {@linkcode releaseWasmThreads} (which `Trainer.close()` calls) unrefs them, so a
 * script ends when its work does; the threads keep serving the backend until then.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { createRequire } from "node:module";

/** Bundle-level names the emscripten glue refers to; `_scriptDir` is the file's own path. */
function globalsPrefix(path: string): string {
  return [
    "var require$$0 = require('fs'), require$$1 = require('path'),",
    "  require$$3 = require('perf_hooks'), require$$4 = require('os');",
    "var commonjsGlobal = globalThis;",
    `var _scriptDir = ${JSON.stringify(path)};`,
  ].join("\n") + "\n";
}

/**
 * Makes the worker globals the emscripten worker reassigns writable, and doubles `os.cpus()`
 * there as in the main thread.
 */
const WORKER_PREFIX = [
  "{ const n = 2 * navigator.hardwareConcurrency; require('os').cpus = () => Array.from({ length: n }, () => ({})); }",
  "for (const k of ['self', 'location', 'performance']) {",
  "  let v; try { v = globalThis[k]; } catch { v = undefined; }",
  "  try { Object.defineProperty(globalThis, k, { value: v, writable: true, configurable: true }); } catch {}",
  "}",
].join("\n") + "\n";

let enabledThreads = 0;

/** How many threads the wasm backend was set up with (0 = the shim is off). */
export function wasmThreads(): number {
  return enabledThreads;
}

/**
 * Sets up the threaded wasm build with `threads` threads. Call before the wasm backend is
 * initialised (`initBackend` does when `threads > 1`).
 */
export async function enableWasmThreads(threads: number): Promise<void> {
  if (!Number.isInteger(threads) || threads < 2) {
    throw new RangeError(
      `Cannot enable wasm threads: threads must be an integer >= 2: current value is ${threads}`,
    );
  }
  if (enabledThreads) return;
  const dir = await Deno.makeTempDir({ prefix: "mgrpo_wasm_threads_" });
  const strings = new WeakMap<Blob, string>();
  const NativeBlob = globalThis.Blob;
  class CapturingBlob extends NativeBlob {
    constructor(parts?: BlobPart[], options?: BlobPropertyBag) {
      super(parts, options);
      if (parts && parts.every((p) => typeof p === "string")) strings.set(this, parts.join(""));
    }
  }
  globalThis.Blob = CapturingBlob as typeof Blob;
  let files = 0;
  const toFile = (text: string, worker: boolean) => {
    const path = `${dir}/script-${files++}.cjs`;
    Deno.writeTextFileSync(path, (worker ? WORKER_PREFIX : "") + globalsPrefix(path) + text);
    return path;
  };
  const nativeCreate = URL.createObjectURL.bind(URL);
  URL.createObjectURL = (object: Blob) => {
    const text = object instanceof NativeBlob ? strings.get(object) : undefined;
    // The pthread worker script: a file node:worker_threads can start.
    return text === undefined ? nativeCreate(object) : toFile(text, true);
  };
  Object.defineProperty(Object.prototype, "mainScriptUrlOrBlob", {
    configurable: true,
    set(value: unknown) {
      const text = value instanceof NativeBlob ? strings.get(value) : undefined;
      Object.defineProperty(this, "mainScriptUrlOrBlob", {
        value: text === undefined ? value : toFile(text, false),
        writable: true,
        enumerable: true,
        configurable: true,
      });
    },
  });
  // tfjs sizes its pool as half the logical cores (assuming SMT): report twice as many.
  // navigator.hardwareConcurrency needs no --allow-sys, unlike os.cpus().
  const os = (await import("node:os")).default;
  const cores = 2 * navigator.hardwareConcurrency;
  os.cpus = () =>
    Array.from({ length: cores }, () => ({
      model: "",
      speed: 0,
      times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 },
    }));
  // Record the pthread workers (emscripten takes node:worker_threads' Worker when it starts).
  const workerThreads = createRequire(import.meta.url)("node:worker_threads") as {
    Worker: new (...args: unknown[]) => { unref(): void };
  };
  const NativeWorker = workerThreads.Worker;
  workerThreads.Worker = class extends NativeWorker {
    constructor(...args: unknown[]) {
      super(...args);
      pthreadWorkers.add(this);
    }
  };
  const wasm = await import("@tensorflow/tfjs-backend-wasm"); // registers the flag
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
  wasm.setThreadsCount(threads);
  enabledThreads = threads;
  scriptDir = dir;
}

let scriptDir: string | undefined;

/** The pthread workers started so far. */
const pthreadWorkers = new Set<{ unref(): void }>();

/**
 * Lets the process end while the wasm backend's pthread workers live: unrefs them (they keep
 * working for the backend as long as the process runs). Harmless when threads are off.
 */
export function releaseWasmThreads(): void {
  for (const worker of pthreadWorkers) worker.unref();
}

/**
 * Removes the temporary script files once the backend is up (its workers have loaded them);
 * `initBackend` calls it after `tf.ready()`.
 */
export async function removeWasmThreadScripts(): Promise<void> {
  if (scriptDir === undefined) return;
  const dir = scriptDir;
  scriptDir = undefined;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
