/**
 * Faster kernels for tfjs-backend-wasm 4.22, registered over the stock ones.
 *
 * **BatchMatMul.** The stock kernel sends a matmul to XNNPACK only when it is one plain 2-D
 * product (batch 1, no transpose flag); everything else — the attention products
 * `[B·H, T, d] × [B·H, d, T]`, and every transpose flag tfjs' own gradients use — runs a
 * naive C loop at about 1.4 GFLOP/s (`../shared/TFJS-NOTES.md`). This kernel splits a batched
 * product into its batch items and runs each as the stock kernel's fast case: an item of a
 * non-transposed operand is a zero-copy view into the operand's heap memory, registered under
 * a fresh tensor id for the call; a transposed operand is transposed once into a scratch
 * tensor first. Each item's result is written straight into its slice of the output. Items
 * too small to pay for a call (fewer than {@linkcode MIN_ITEM_FLOPS} multiply-adds) keep the
 * stock path.
 *
 * **Identity.** The stock kernel copies its input, and `tf.clone` — which the gradient tape
 * calls on every tensor it saves for the backward — is Identity: under a tape every weight a
 * product reads and every saved activation was copied (a second copy of a 494M-parameter
 * model's weights, 2 GB, in the first forward). This kernel shares the input's memory and
 * counts a reference, as tfjs' cpu backend and the wasm backend's own Reshape do; tensors are
 * never written in place, so a shared buffer reads as the copy would.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Below this many multiply-adds per batch item the stock loop is faster than a call per item. */
export const MIN_ITEM_FLOPS = 4096;

interface TensorData {
  id: number;
  memoryOffset: number;
  shape: number[];
  dtype: string;
  refCount: number;
}

/** The parts of tfjs-backend-wasm's `BackendWasm` this module uses. */
interface WasmBackend {
  wasm: {
    cwrap(name: string, ret: null, args: string[]): (...args: unknown[]) => void;
    HEAPU8: Uint8Array;
    tfjs: {
      registerTensor(id: number, size: number, offset: number): void;
      disposeData(id: number): void;
    };
  };
  dataIdMap: { get(dataId: object): TensorData };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: string): tf.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

type BatchMatMulFn = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: boolean,
  transposeB: boolean,
  outId: number,
) => void;

/**
 * Models above this many bytes of f32 parameters run with the packed-weights cache off
 * ({@linkcode fitPackedWeightCache}).
 */
export const PACKED_CACHE_MAX_MODEL_BYTES = 512 * 1024 * 1024;

let stock: tf.KernelConfig | undefined;
let packedCache = true;
let wasmBatchMatMul: BatchMatMulFn | undefined;
let enabled = true;

/**
 * Registers the fast kernels over tfjs-backend-wasm's (once; later calls do nothing). Call
 * after the wasm backend is registered and before it is used; `initBackend("wasm")` does.
 */
export function registerFastWasmKernels(): void {
  if (stock) return;
  stock = tf.getKernel("BatchMatMul", "wasm");
  if (!stock) {
    throw new Error("Cannot register the fast wasm kernels: the wasm backend has no BatchMatMul");
  }
  tf.unregisterKernel("Identity", "wasm");
  tf.registerKernel({
    kernelName: "Identity",
    backendName: "wasm",
    kernelFunc: (({ inputs: { x }, backend }: {
      inputs: { x: tf.TensorInfo };
      backend: { incRef(dataId: object): void };
    }) => {
      backend.incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    }) as unknown as tf.KernelFunc,
  });
  tf.unregisterKernel("BatchMatMul", "wasm");
  tf.registerKernel({
    kernelName: "BatchMatMul",
    backendName: "wasm",
    setupFunc: (backend) => {
      stock!.setupFunc?.(backend);
      wasmBatchMatMul = (backend as unknown as WasmBackend).wasm.cwrap("BatchMatMul", null, [
        "number",
        "array",
        "number",
        "number",
        "array",
        "number",
        "number",
        "number",
        "number",
      ]) as unknown as BatchMatMulFn;
    },
    kernelFunc: batchMatMul as unknown as tf.KernelFunc,
  });
}

/**
 * Switches the per-item BatchMatMul on or off (for benchmarks and equivalence tests); off
 * runs the stock kernel.
 */
export function setFastBatchMatMul(on: boolean): void {
  enabled = on;
}

/**
 * Turns XNNPACK's packed-weights cache on or off. On (the default), a plain product's right
 * operand — a weight — is packed into XNNPACK's layout once and the packed copy is kept as
 * long as the tensor lives: fast, but every weight is held twice. Off, each product packs its
 * right operand for the call and frees the copy after it: one weight's copy at a time, at the
 * cost of packing on every call. The wasm backend's heap is at most 4 GB, so a model near
 * 1 GB of f32 weights (Qwen2.5-0.5B: 1.98 GB) only fits with the cache off.
 */
export function setPackedWeightCache(on: boolean): void {
  packedCache = on;
}

/** Whether XNNPACK's packed-weights cache is on ({@linkcode setPackedWeightCache}). */
export function packedWeightCache(): boolean {
  return packedCache;
}

/**
 * Sets the packed-weights cache for the models a process holds: off when their f32
 * parameters take more than {@linkcode PACKED_CACHE_MAX_MODEL_BYTES} bytes in all, else on.
 * Returns whether the cache is on.
 *
 * @example
 * ```ts
 * import { fitPackedWeightCache } from "./wasm_kernels.ts";
 * if (fitPackedWeightCache(1e9)) throw new Error("a 1 GB model packs per call");
 * fitPackedWeightCache(0);
 * ```
 */
export function fitPackedWeightCache(modelBytes: number): boolean {
  setPackedWeightCache(modelBytes <= PACKED_CACHE_MAX_MODEL_BYTES);
  return packedCache;
}

/** Registers `size` floats at `offset` (inside another tensor's memory) under a fresh id. */
function view(backend: WasmBackend, offset: number, size: number): number {
  const id = backend.dataIdNextNumber++;
  backend.wasm.tfjs.registerTensor(id, size, offset);
  return id;
}

const SHAPE_CACHE = new Map<string, Uint8Array>();
function shapeBytes(shape: readonly number[]): Uint8Array {
  const key = shape.join(",");
  let bytes = SHAPE_CACHE.get(key);
  if (!bytes) {
    bytes = new Uint8Array(new Int32Array(shape).buffer);
    SHAPE_CACHE.set(key, bytes);
  }
  return bytes;
}

/** Copies `[batch, rows, cols]` at `src` transposed to `[batch, cols, rows]` at `dst`. */
function transposeInto(
  heap: Float32Array,
  src: number,
  dst: number,
  batch: number,
  rows: number,
  cols: number,
): void {
  const size = rows * cols;
  for (let b = 0; b < batch; b++) {
    const s = src + b * size, d = dst + b * size;
    for (let r = 0; r < rows; r++) {
      const row = s + r * cols;
      for (let c = 0; c < cols; c++) heap[d + c * rows + r] = heap[row + c]!;
    }
  }
}

function batchMatMul(args: {
  inputs: { a: tf.TensorInfo; b: tf.TensorInfo };
  backend: WasmBackend;
  attrs: { transposeA: boolean; transposeB: boolean };
}): tf.TensorInfo {
  const { inputs: { a, b }, backend, attrs: { transposeA, transposeB } } = args;
  const aRank = a.shape.length, bRank = b.shape.length;
  const batchA = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  const batchB = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  const m = transposeA ? a.shape[aRank - 1]! : a.shape[aRank - 2]!;
  const k = transposeA ? a.shape[aRank - 2]! : a.shape[aRank - 1]!;
  const n = transposeB ? b.shape[bRank - 2]! : b.shape[bRank - 1]!;
  const batch = Math.max(batchA, batchB);
  // A plain product goes to the stock kernel, which caches b's packed copy under b's id —
  // unless that cache is off: then b is passed as a view under a fresh id, dropped after.
  const simple = batch === 1 && !transposeA && !transposeB && packedCache;
  const sameOuter = batchA === batchB || batchA === 1 || batchB === 1;
  if (
    !enabled || simple || !sameOuter || a.dtype !== "float32" || b.dtype !== "float32" ||
    m * n * k < MIN_ITEM_FLOPS
  ) {
    return stock!.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  }
  const outShape = tf.broadcast_util.assertAndGetBroadcastShape(
    a.shape.slice(0, -2),
    b.shape.slice(0, -2),
  ).concat([m, n]);
  const out = backend.makeOutput(outShape, "float32");
  // Transposed operands are laid out plainly in scratch tensors (allocated after the output:
  // allocation can grow the heap, so offsets are read afterwards and views taken last).
  const aT = transposeA ? backend.makeOutput([batchA, m, k], "float32") : undefined;
  const bT = transposeB ? backend.makeOutput([batchB, k, n], "float32") : undefined;
  const heap = new Float32Array(backend.wasm.HEAPU8.buffer);
  const offsetOf = (t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset / 4;
  if (aT) transposeInto(heap, offsetOf(a), offsetOf(aT), batchA, k, m);
  if (bT) transposeInto(heap, offsetOf(b), offsetOf(bT), batchB, n, k);
  const aBase = offsetOf(aT ?? a) * 4, bBase = offsetOf(bT ?? b) * 4, outBase = offsetOf(out) * 4;
  const aShape = shapeBytes([1, m, k]), bShape = shapeBytes([1, k, n]);
  const ids: number[] = [];
  try {
    for (let i = 0; i < batch; i++) {
      const aId = view(backend, aBase + (batchA === 1 ? 0 : i) * m * k * 4, m * k);
      const bId = view(backend, bBase + (batchB === 1 ? 0 : i) * k * n * 4, k * n);
      const outId = view(backend, outBase + i * m * n * 4, m * n);
      ids.push(aId, bId, outId);
      wasmBatchMatMul!(aId, aShape, 3, bId, bShape, 3, false, false, outId);
      // Unregistering also drops the packed-weights cache XNNPACK keyed on bId.
      backend.wasm.tfjs.disposeData(aId);
      backend.wasm.tfjs.disposeData(bId);
      backend.wasm.tfjs.disposeData(outId);
      ids.length = 0;
    }
  } finally {
    for (const id of ids) backend.wasm.tfjs.disposeData(id);
    if (aT) backend.disposeData(aT.dataId);
    if (bT) backend.disposeData(bT.dataId);
  }
  return out;
}
