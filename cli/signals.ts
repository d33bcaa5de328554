/**
 * SIGINT and SIGTERM for a training loop whose thread is busy: listeners in the loop's own
 * thread run only when its event loop turns, which a loop of synchronous tensor math and
 * microtask hand-offs rarely lets happen (measured: often not within 30 s). A Worker listens
 * instead (`cli/signal_worker.ts`) and counts signals in shared memory.
 *
 * @module
 */
import type { SignalWorkerInit } from "./signal_worker.ts";

// Captured before TensorFlow.js' wasm build replaces `globalThis.Worker` with Node's.
const WebWorker = globalThis.Worker;

/** Signals seen so far, readable without a turn of the event loop. */
export interface SignalWatch {
  /** SIGINT and SIGTERM received so far. */
  readonly count: number;
  /**
   * Files removed when a second signal ends the process at once (the control server's token
   * file and `control.json`, which the normal close removes).
   */
  removeOnExit(paths: readonly string[]): void;
  /** Removes those files now, synchronously: before an exit that skips the normal close. */
  cleanUp(): void;
  /** Stops listening. */
  close(): void;
}

/** Options of {@linkcode watchSignals}. */
export interface WatchSignalsOptions {
  /** Called (in the loop's thread, when it is free) with the count of each signal. */
  onSignal?: (count: number) => void;
  /**
   * After a second signal, how long the loop has to exit by itself (130) before the process
   * is killed. @default 500
   */
  exitGraceMs?: number;
}

/**
 * Starts the signal Worker; from then on SIGINT and SIGTERM no longer end the process
 * by default (the first only counts, the second exits at once).
 */
export async function watchSignals(options: WatchSignalsOptions = {}): Promise<SignalWatch> {
  const buffer = new SharedArrayBuffer(4);
  const counter = new Int32Array(buffer);
  const worker = new WebWorker(new URL("./signal_worker.ts", import.meta.url), {
    type: "module",
  });
  const ready = new Promise<void>((resolve, reject) => {
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`Cannot watch signals: the signal worker failed: ${e.message}`));
    };
    worker.onmessage = (event: MessageEvent<{ type: string; count?: number }>) => {
      if (event.data.type === "ready") resolve();
      else if (event.data.type === "signal") options.onSignal?.(event.data.count ?? 0);
    };
  });
  const init: SignalWorkerInit = { buffer, exitGraceMs: options.exitGraceMs ?? 500 };
  worker.postMessage(init);
  await ready;
  let files: readonly string[] = [];
  return {
    get count() {
      return Atomics.load(counter, 0);
    },
    removeOnExit(paths) {
      files = [...paths];
      worker.postMessage({ type: "cleanup", paths: files });
    },
    cleanUp() {
      removeAll(files);
    },
    close: () => worker.terminate(),
  };
}

/** Removes each file that exists, ignoring any that is already gone. */
export function removeAll(paths: readonly string[]): void {
  for (const path of paths) {
    try {
      Deno.removeSync(path);
    } catch {
      // gone already, or not ours to remove
    }
  }
}
