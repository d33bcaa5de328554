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
import { readProcFile } from "../util/proc.ts";

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
 * The packages the `tensorflow` backend loads, GPU build first. Both are pinned in `deno.json`;
 * `deno task setup:tensorflow [--gpu]` builds their Node-API addon against PyPI's TensorFlow
 * (their own install scripts, which download libtensorflow, never run).
 */
const TFJS_NODE_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"] as const;

/** How to set up the `tensorflow` backend, for error messages and the README. */
export const TFJS_NODE_INSTALL = "`npx -y deno@2.9.6 task setup:tensorflow` " +
  "(add --gpu for CUDA: tfjs-node-gpu with the CUDA 12 wheels)";

/**
 * The addon a package loads, where `deno task setup:tensorflow` builds it. Importing a package
 * whose addon is missing would register its kernels and then throw, so the backend looks first.
 */
function addonPath(pkg: string): URL {
  return new URL(`../node_modules/${pkg}/lib/napi-v8/tfjs_binding.node`, import.meta.url);
}

async function addonBuilt(pkg: string): Promise<boolean> {
  try {
    return (await Deno.stat(addonPath(pkg))).isFile;
  } catch {
    return false; // not built, or no read permission: either way not loadable
  }
}

/** Whether `deno task setup:tensorflow` has built a tfjs-node addon (the CPU or GPU package). */
export async function tensorflowSetUp(): Promise<boolean> {
  for (const pkg of TFJS_NODE_PACKAGES) if (await addonBuilt(pkg)) return true;
  return false;
}

/** Whether WebGPU started in this realm (a Worker's start shows in the process's maps). */
let webGpuStartedHere = false;

/**
 * Whether a WebGPU driver's LLVM is loaded in this process (by this realm or any Worker):
 * libtensorflow loaded after it crashes the process, because libtensorflow's static
 * initialisers bind to the LLVM symbols already there. Read from `/proc/self/maps` on Linux;
 * elsewhere, or without read permission, from this realm's own use of WebGPU.
 */
async function foreignLlvmLoaded(): Promise<boolean> {
  try {
    const maps = await Deno.readTextFile("/proc/self/maps");
    return /\/libLLVM[^/\s]*\.so/.test(maps);
  } catch {
    return webGpuStartedHere;
  }
}

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
 * The driver it loads stays in the process until it exits (the tests probe in a process of their
 * own), so this example is not run as a doc test.
 *
 * @example
 * ```ts ignore
 * import { probeWebGpu } from "./backend.ts";
 * const gpu = await probeWebGpu();
 * if (gpu.software && !gpu.available) throw new Error("a software adapter is an adapter");
 * ```
 */
export async function probeWebGpu(): Promise<WebGpuProbe> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) return { available: false, software: false, description: "no navigator.gpu" };
  let adapter: GPUAdapter | null;
  webGpuStartedHere = true;
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
 * - `tensorflow`: libtensorflow through `@tensorflow/tfjs-node-gpu` (CUDA, when its addon is
 *   built) or `@tensorflow/tfjs-node`; each is imported only here, and when neither addon is
 *   built this rejects with an `Error` that gives the set-up command
 *   ({@link TFJS_NODE_INSTALL}). It refuses to start in a process where WebGPU has started:
 *   libtensorflow loaded after Mesa's Vulkan driver crashes the process.
 * - `auto`, the fastest available, in this order: `tensorflow` when one of its packages
 *   loads (native, multi-threaded kernels for every op; the GPU build first); then `webgpu`
 *   when {@link probeWebGpu} finds a real GPU (a software adapter is skipped: llvmpipe is
 *   slower than `cpu`, TFJS-NOTES §1c); then `wasm`; then `cpu` (wasm fails without
 *   `--allow-read`).
 *
 * `options.wasmThreads` above 1 runs the wasm backend's threaded build with that many
 * threads, 0 with one per free core ({@linkcode autoWasmThreads}: one per core on a quiet
 * machine, the single-threaded build on a busy one, measured over 200 ms at start;
 * `model/wasm_threads.ts`). The default, 1,
 * is tfjs' single-threaded build. Other backends ignore it; {@linkcode wasmThreadCount} says
 * what was started.
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
  const auto = options.wasmThreads === 0 && (name === "wasm" || name === "auto");
  const threads = auto
    ? autoWasmThreads(navigator.hardwareConcurrency, await measureLoad())
    : options.wasmThreads === 0
    ? navigator.hardwareConcurrency
    : options.wasmThreads ?? 1;
  startedWasmThreads = threads;
  switch (name) {
    case "cpu":
      await setOrThrow("cpu");
      break;
    case "wasm":
      await startWasm(threads);
      break;
    case "webgpu":
      webGpuStartedHere = true;
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

/** The wasm threads {@linkcode initBackend} last started with (1: the single-threaded build). */
let startedWasmThreads = 1;

/** The wasm threads the backend was started with (`model.wasm_threads: 0` resolved). */
export function wasmThreadCount(): number {
  return startedWasmThreads;
}

/** How busy the cores are with other processes, measured over a short window. */
export interface MachineLoad {
  /** CPU seconds per second that other processes used (2.0: two cores' worth). */
  readonly others: number;
}

/** Total busy and idle jiffies of all cores (`/proc/stat`), and this process's own. */
async function cpuTimes(): Promise<{ busy: number; total: number; self: number } | undefined> {
  const [all, own] = await Promise.all([
    readProcFile("/proc/stat"),
    readProcFile(`/proc/${Deno.pid}/stat`),
  ]);
  if (all === undefined || own === undefined) return undefined;
  const line = all.split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = line[3]! + (line[4] ?? 0); // idle + iowait
  const total = line.slice(0, 8).reduce((a, b) => a + b, 0);
  const fields = own.slice(own.lastIndexOf(")") + 2).split(" ");
  const self = Number(fields[11]) + Number(fields[12]); // utime + stime
  return { busy: total - idle, total, self };
}

/**
 * What other processes use of the cores, over `ms` milliseconds: all cores' busy time from
 * `/proc/stat` minus this process's own (`/proc/<pid>/stat`); `undefined` where those cannot be
 * read (not Linux, or neither read nor run permission for them).
 */
export async function measureLoad(ms = 200): Promise<MachineLoad | undefined> {
  const a = await cpuTimes();
  if (a === undefined) return undefined;
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = await cpuTimes();
  if (b === undefined) return undefined;
  const window = (b.total - a.total) / navigator.hardwareConcurrency; // one core's jiffies
  if (!(window > 0)) return undefined;
  return { others: Math.max(0, (b.busy - a.busy) - (b.self - a.self)) / window };
}

/**
 * The wasm threads of `model.wasm_threads: 0`: one per core on a quiet machine, but the
 * single-threaded build when other processes already keep the cores busy. XNNPACK's threads
 * wait for each other at every kernel: with a core taken by another process, a thread that is
 * descheduled stalls the others, and more threads than free cores are slower than one
 * (`deno task bench:load`, docs/performance.md). The free cores are the cores less what other
 * processes used over a short window at start ({@linkcode measureLoad}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { autoWasmThreads } from "./backend.ts";
 *
 * assert.equal(autoWasmThreads(2, { others: 0.1 }), 2);
 * assert.equal(autoWasmThreads(2, { others: 1.9 }), 1);
 * assert.equal(autoWasmThreads(2, { others: 0.9 }), 1);
 * assert.equal(autoWasmThreads(8, { others: 2.2 }), 6);
 * assert.equal(autoWasmThreads(2, undefined), 2);
 * ```
 */
export function autoWasmThreads(cores: number, load: MachineLoad | undefined): number {
  if (load === undefined || !Number.isFinite(load.others)) return cores;
  const free = Math.floor(cores - load.others + 0.5);
  return free >= 2 ? Math.min(cores, free) : 1;
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
    throw new Error(
      `Cannot load backend "tensorflow": ${failures.join("; ")}; set it up with ` +
        `${TFJS_NODE_INSTALL}, or pick "wasm" or "cpu"`,
    );
  }
  await setOrThrow("tensorflow");
}

/**
 * Imports the first of {@link TFJS_NODE_PACKAGES} whose addon is built (it registers the
 * `tensorflow` backend); resolves to `undefined` then, else to why none could load.
 */
async function importTfjsNode(): Promise<string[] | undefined> {
  if (tf.findBackend("tensorflow") !== null) return undefined;
  if (await foreignLlvmLoaded()) {
    return [
      "WebGPU has already started in this process, and libtensorflow loaded after Mesa's " +
      "Vulkan driver crashes it (their LLVM symbols collide): start tensorflow first, or run " +
      "the webgpu actor in another process",
    ];
  }
  const failures: string[] = [];
  for (const pkg of TFJS_NODE_PACKAGES) {
    if (!await addonBuilt(pkg)) {
      failures.push(`${pkg} is not set up (no ${addonPath(pkg).pathname})`);
      continue;
    }
    const restore = await quietTensorflow();
    try {
      // A non-literal specifier keeps the optional package out of the module graph.
      const specifier: string = pkg;
      await import(specifier);
      return undefined;
    } catch (e) {
      failures.push(`${pkg} failed to load: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      restore();
    }
  }
  return failures;
}

/**
 * Before libtensorflow loads: tfjs-node 4.22 calls `util.isNullOrUndefined`, which Deno's
 * `node:util` (and Node 23+) no longer has; TensorFlow's log level is raised to errors unless
 * `TF_CPP_MIN_LOG_LEVEL` says otherwise; and, with `--allow-ffi`, standard error is pointed at
 * `/dev/null` while the library loads, because the lines it writes before its logging starts
 * (oneDNN's notice, "Could not find cuda drivers" on a machine without a GPU) ignore the level.
 * Resolves to the function that gives standard error back; a failed load is still reported, as
 * the import's exception. `TF_CPP_MIN_LOG_LEVEL=0` keeps every line.
 */
async function quietTensorflow(): Promise<() => void> {
  const util = (await import("node:util")).default as {
    isNullOrUndefined?: (x: unknown) => boolean;
  };
  util.isNullOrUndefined ??= (x: unknown) => x === null || x === undefined;
  let level: string | undefined;
  try {
    level = Deno.env.get("TF_CPP_MIN_LOG_LEVEL");
    if (level === undefined) Deno.env.set("TF_CPP_MIN_LOG_LEVEL", "2");
  } catch {
    return () => {}; // Without --allow-env TensorFlow logs as it likes.
  }
  if (level === "0") return () => {};
  try {
    const libc = Deno.dlopen("libc.so.6", {
      dup: { parameters: ["i32"], result: "i32" },
      dup2: { parameters: ["i32", "i32"], result: "i32" },
      open: { parameters: ["buffer", "i32"], result: "i32" },
      close: { parameters: ["i32"], result: "i32" },
    });
    const saved = libc.symbols.dup(2);
    const devNull = libc.symbols.open(new TextEncoder().encode("/dev/null\0"), 1 /* O_WRONLY */);
    if (saved < 0 || devNull < 0) {
      libc.close();
      return () => {};
    }
    libc.symbols.dup2(devNull, 2);
    libc.symbols.close(devNull);
    return () => {
      libc.symbols.dup2(saved, 2);
      libc.symbols.close(saved);
      libc.close();
    };
  } catch {
    return () => {}; // No --allow-ffi, or not glibc: the lines stay.
  }
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
