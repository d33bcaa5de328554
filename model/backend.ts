/**
 * Chooses and starts the TensorFlow.js backend the Learner and the Sampler compute on.
 *
 * tfjs' backend is global to a JS realm (one process, or one Worker): every tensor of the
 * process lives on the backend {@link initBackend} selected.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { registerFastWasmKernels } from "./wasm_kernels.ts";
import { enableWasmThreads, removeWasmThreadScripts } from "./wasm_threads.ts";

/** Names accepted by `model.backend`, `learner.backend` and `sampler.backend`. */
export type BackendName = "auto" | "wasm" | "cpu" | "webgpu" | "tensorflow";

/** Every {@link BackendName}, in the order the README's table lists them. */
export const BACKEND_NAMES: readonly BackendName[] = [
  "auto",
  "wasm",
  "cpu",
  "webgpu",
  "tensorflow",
];

/**
 * Whether `name` is a tensor backend {@link initBackend} accepts. A `sampler.backend` that is
 * not one (a remote inference server) runs no tfjs tensors in this process.
 *
 * @example
 * ```ts
 * import { isTensorBackend } from "./backend.ts";
 * if (!isTensorBackend("webgpu") || isTensorBackend("openai")) throw new Error("wrong");
 * ```
 */
export function isTensorBackend(name: string): name is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(name);
}

/**
 * The packages the `tensorflow` backend loads, fastest first, by the bare names `deno add`
 * puts in `deno.json`'s import map. An import of a bare name that is not there fails at
 * once, without downloading anything.
 */
const TFJS_NODE_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"] as const;

/** How to install the `tensorflow` backend under Deno, for error messages and the README. */
export const TFJS_NODE_INSTALL = "`npx -y deno@2.9.6 add npm:@tensorflow/tfjs-node@4.22.0` then " +
  "`npx -y deno@2.9.6 approve-scripts npm:@tensorflow/tfjs-node` " +
  "(or @tensorflow/tfjs-node-gpu for CUDA; its install script downloads libtensorflow, " +
  "so it needs network access)";

/** What {@link probeWebGpu} found. */
export interface WebGpuProbe {
  /** `navigator.gpu.requestAdapter()` returned an adapter. */
  available: boolean;
  /**
   * The adapter is a software rasteriser (Mesa llvmpipe or lavapipe, SwiftShader, or any
   * adapter that reports `isFallbackAdapter`): slower than the cpu backend.
   */
  software: boolean;
  /** The adapter's description (`llvmpipe (LLVM 15.0.6, 256 bits)`), or why there is none. */
  description: string;
}

/** Vulkan's vendor id for Mesa's software drivers (`VK_VENDOR_ID_MESA`, 0x10005). */
const MESA_SOFTWARE_VENDOR = "65541";

/**
 * Asks Deno's WebGPU for an adapter and tells whether it is a real GPU. Needs no permission;
 * about 0.5 s on Mesa's llvmpipe. A host without Vulkan drivers has no adapter.
 *
 * @example
 * ```ts
 * import { probeWebGpu } from "./backend.ts";
 * const gpu = await probeWebGpu();
 * if (gpu.software && !gpu.available) throw new Error("a software adapter is an adapter");
 * ```
 */
export async function probeWebGpu(): Promise<WebGpuProbe> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) return { available: false, software: false, description: "no navigator.gpu" };
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return { available: false, software: false, description: (e as Error).message };
  }
  if (!adapter) return { available: false, software: false, description: "no adapter" };
  // `isFallbackAdapter` moved from the adapter to its info in the spec; Deno 2.9 has the latter.
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const legacy = adapter as GPUAdapter & { isFallbackAdapter?: boolean };
  const description = [info.description, info.device].filter((s) => s && s !== "0").join(" ") ||
    `vendor ${info.vendor}`;
  const software = info.isFallbackAdapter === true || legacy.isFallbackAdapter === true ||
    info.vendor === MESA_SOFTWARE_VENDOR ||
    /llvmpipe|lavapipe|softpipe|swiftshader|software/i.test(description);
  return { available: true, software, description };
}

/**
 * Selects and initialises a TensorFlow.js backend; resolves to the name tfjs reports.
 *
 * - `wasm` (XNNPACK with SIMD, needs `--allow-read` for its `.wasm` file): the fastest on a
 *   CPU-only host (TFJS-NOTES §1: 14-23 GFLOP/s on matmul, 1.3k training tokens/s on a tiny
 *   GPT).
 * - `cpu` (plain JS, needs no permission): 15-40x slower on matmul.
 * - `webgpu` (Deno's WebGPU): a real GPU, or Mesa's software Vulkan (llvmpipe), which is
 *   slower than `cpu`. Read tensors back with `await t.data()`: `dataSync()` throws there.
 * - `tensorflow`: libtensorflow through `@tensorflow/tfjs-node-gpu` (CUDA) or, when that is
 *   not installed, `@tensorflow/tfjs-node`. Neither is a dependency: each is imported only
 *   here, and when neither is installed this rejects with an `Error` that gives the install
 *   command ({@link TFJS_NODE_INSTALL}).
 * - `auto`, the fastest available, in this order: `tensorflow` when one of its packages
 *   loads (native, multi-threaded kernels for every op; the GPU build first); then `webgpu`
 *   when {@link probeWebGpu} finds a real GPU (a software adapter is skipped: llvmpipe is
 *   slower than `cpu`, TFJS-NOTES §1c); then `wasm`; then `cpu` (wasm fails without
 *   `--allow-read`).
 *
 * `options.wasmThreads` above 1 runs the wasm backend's threaded build with that many
 * threads, 0 with one per core (`model/wasm_threads.ts`; the process then needs `Deno.exit`
 * to end). The default, 1, is tfjs' single-threaded build. Other backends ignore it.
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
  switch (name) {
    case "cpu":
      await setOrThrow("cpu");
      break;
    case "wasm":
      await startWasm(threads);
      break;
    case "webgpu":
      await import("@tensorflow/tfjs-backend-webgpu");
      await setOrThrow("webgpu");
      break;
    case "tensorflow":
      await startTensorflow();
      break;
    case "auto":
      await startFastest(threads);
      break;
    default:
      throw new RangeError(`Unknown backend: "${name as string}"`);
  }
  await tf.ready();
  await removeWasmThreadScripts();
  return tf.getBackend();
}

/** `auto`: see {@link initBackend} for the order. */
async function startFastest(threads: number): Promise<void> {
  if (await importTfjsNode() === undefined && await tf.setBackend("tensorflow")) return;
  const gpu = await probeWebGpu();
  if (gpu.available && !gpu.software) {
    try {
      await import("@tensorflow/tfjs-backend-webgpu");
      if (await tf.setBackend("webgpu")) return;
    } catch {
      // Fall through to wasm.
    }
  }
  try {
    await startWasm(threads);
    return;
  } catch {
    // Fall through to cpu: wasm needs --allow-read.
  }
  await setOrThrow("cpu");
}

async function startWasm(threads: number): Promise<void> {
  if (threads > 1) await enableWasmThreads(threads);
  await import("@tensorflow/tfjs-backend-wasm");
  registerFastWasmKernels();
  await setOrThrow("wasm");
}

async function startTensorflow(): Promise<void> {
  const failures = await importTfjsNode();
  if (failures !== undefined) {
    // An import-map miss means "not installed"; anything else is a package that is there
    // but cannot start (its install script, which fetches libtensorflow, did not run).
    const missing = failures.every((e) => /not in import map|not a dependency/i.test(e.message));
    throw new Error(
      `Cannot load backend "tensorflow": @tensorflow/tfjs-node is not installed ` +
        `(nor @tensorflow/tfjs-node-gpu)${missing ? "" : " or failed to load"}; install it with ` +
        `${TFJS_NODE_INSTALL}, or pick "wasm" or "cpu": current value is ` +
        failures.map((e) => `"${e.message}"`).join(", "),
      { cause: failures[0] },
    );
  }
  await setOrThrow("tensorflow");
}

/**
 * Imports the first of {@link TFJS_NODE_PACKAGES} that loads (it registers the `tensorflow`
 * backend); resolves to `undefined` then, else to each package's import error.
 */
async function importTfjsNode(): Promise<Error[] | undefined> {
  const failures: Error[] = [];
  for (const pkg of TFJS_NODE_PACKAGES) {
    try {
      // A non-literal specifier keeps the optional package out of the module graph.
      const specifier: string = pkg;
      await import(specifier);
      return undefined;
    } catch (e) {
      failures.push(e instanceof Error ? e : new Error(String(e)));
    }
  }
  return failures;
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
