/**
 * The Worker behind {@linkcode watchSignals} (`cli/signals.ts`): its event loop is idle, so its
 * SIGINT and SIGTERM listeners run at once even while the training thread computes. It counts
 * signals in a shared `Int32Array` the loop reads at step boundaries, tells the loop by message
 * too (for when it waits, e.g. paused), and on the second signal asks the loop to exit and
 * kills the process if the loop is too busy to answer within `exitGraceMs`.
 *
 * @module
 */

/** The init message the Worker expects. */
export interface SignalWorkerInit {
  buffer: SharedArrayBuffer;
  exitGraceMs: number;
}

let counter: Int32Array | undefined;
let grace = 500;
/** Files to remove before the process is killed (`SignalWatch.removeOnExit`). */
let cleanup: string[] = [];

self.onmessage = (event: MessageEvent<SignalWorkerInit | { type: "cleanup"; paths: string[] }>) => {
  if ("type" in event.data) {
    cleanup = event.data.paths;
    return;
  }
  counter = new Int32Array(event.data.buffer);
  grace = event.data.exitGraceMs;
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, onSignal);
  self.postMessage({ type: "ready" });
};

function onSignal(): void {
  if (!counter) return;
  const n = Atomics.add(counter, 0, 1) + 1;
  self.postMessage({ type: "signal", count: n });
  if (n < 2) return;
  // The loop exits with 130 if it gets the message; a loop inside a long synchronous step
  // does not, so the process is killed: checkpoints are atomic, nothing is corrupted.
  setTimeout(() => {
    console.error("second signal: exiting at once");
    for (const path of cleanup) {
      try {
        Deno.removeSync(path);
      } catch {
        // gone already
      }
    }
    try {
      Deno.kill(Deno.pid, "SIGKILL");
    } catch {
      // without --allow-run the loop exits at its next turn instead
    }
  }, grace);
}
