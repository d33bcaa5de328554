import * as tf from "@tensorflow/tfjs";
import { registerFastWasmKernels } from "./wasm_kernels.ts";
import { enableWasmThreads, removeWasmThreadScripts } from "./wasm_threads.ts";

/** Names accepted by `learner.backend` / `model.backend`. */
export type BackendName = "auto" | "wasm" | "cpu" | "webgpu" | "tensorflow";

/** The tfjs-node package loaded for the optional `tensorflow` backend. */
const TFJS_NODE = "npm:@tensorflow/tfjs-node@4.22.0";

/**
 * Selects and initialises a TensorFlow.js backend.
 *
 * - `wasm` (default; XNNPACK with SIMD, needs `--allow-read` for its `.wasm` file),
 * - `cpu` (plain JS, needs no permission, 15-40x slower on matmul),
 * - `webgpu` (Deno's WebGPU: a real GPU, or Mesa's software Vulkan),
 * - `tensorflow` (`@tensorflow/tfjs-node`, loaded only when chosen),
 * - `auto`: `wasm` when it loads, else `cpu`.
 *
 * `options.wasmThreads` above 1 runs the wasm backend's threaded build with that many
 * threads, 0 with one per core (`model/wasm_threads.ts`; the process then needs `Deno.exit`
 * to end). The default, 1, is tfjs' single-threaded build.
 *
 * Also calls `tf.enableProdMode()`, which silences tfjs' Node banner and skips debug checks.
 *
 * @example
 * ```ts
 * import { initBackend } from "./backend.ts";
 * const name = await initBackend("cpu");
 * if (name !== "cpu") throw new Error(name);
 * ```
 */
export async function initBackend(
  name: BackendName,
  options: { wasmThreads?: number } = {},
): Promise<string> {
  tf.enableProdMode();
  const threads = options.wasmThreads === 0
    ? navigator.hardwareConcurrency
    : options.wasmThreads ?? 1;
  if (threads > 1 && (name === "wasm" || name === "auto")) await enableWasmThreads(threads);
  switch (name) {
    case "cpu":
      await setOrThrow("cpu");
      break;
    case "wasm":
      await import("@tensorflow/tfjs-backend-wasm");
      registerFastWasmKernels();
      await setOrThrow("wasm");
      break;
    case "webgpu":
      await import("@tensorflow/tfjs-backend-webgpu");
      await setOrThrow("webgpu");
      break;
    case "tensorflow": {
      try {
        // A non-literal specifier keeps the optional package out of the module graph.
        const specifier: string = TFJS_NODE;
        await import(specifier);
      } catch (cause) {
        throw new Error(
          `Cannot load backend "tensorflow": ${TFJS_NODE} is not installed or failed to load ` +
            `(its install script downloads libtensorflow; install it where that is possible, ` +
            `or pick "wasm" or "cpu"): ${(cause as Error).message}`,
          { cause },
        );
      }
      await setOrThrow("tensorflow");
      break;
    }
    case "auto":
      try {
        await import("@tensorflow/tfjs-backend-wasm");
        registerFastWasmKernels();
        if (await tf.setBackend("wasm")) break;
      } catch {
        // Fall through to cpu: wasm needs --allow-read.
      }
      await setOrThrow("cpu");
      break;
    default:
      throw new RangeError(`Unknown backend: "${name as string}"`);
  }
  await tf.ready();
  await removeWasmThreadScripts();
  return tf.getBackend();
}

async function setOrThrow(name: string): Promise<void> {
  let ok = false;
  let cause: unknown;
  try {
    ok = await tf.setBackend(name);
  } catch (e) {
    cause = e;
  }
  if (!ok) {
    throw new Error(
      `Cannot initialise backend "${name}"` +
        (cause ? `: ${(cause as Error).message}` : ": tf.setBackend() returned false"),
      { cause },
    );
  }
}
