import * as tf from "@tensorflow/tfjs";
import { registerFastWasmKernels } from "./wasm_kernels.ts";

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
 * Also calls `tf.enableProdMode()`, which silences tfjs' Node banner and skips debug checks.
 *
 * @example
 * ```ts
 * import { initBackend } from "./backend.ts";
 * const name = await initBackend("cpu");
 * if (name !== "cpu") throw new Error(name);
 * ```
 */
export async function initBackend(name: BackendName): Promise<string> {
  tf.enableProdMode();
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
