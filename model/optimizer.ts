/**
 * The Learner's optimizer: AdamW with decoupled weight decay (torch.optim.AdamW), global-norm
 * gradient clipping (torch's `clip_grad_norm_`) and the Hugging Face learning-rate schedules.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Options of {@linkcode AdamW}. */
export interface AdamWOptions {
  /**
   * β1, decay of the first moment.
   * @default 0.9
   */
  beta1?: number;
  /**
   * β2, decay of the second moment.
   * @default 0.999
   */
  beta2?: number;
  /**
   * ε, added to the denominator.
   * @default 1e-8
   */
  eps?: number;
  /**
   * λ, decoupled weight decay (torch.optim.AdamW's default; Hugging Face TrainingArguments
   * default to 0).
   * @default 0.01
   */
  weightDecay?: number;
  /**
   * Parameters that get no weight decay (e.g. biases and norm gains, as Hugging Face
   * excludes them).
   * @default () => false
   */
  noDecay?: (name: string) => boolean;
}

/** A snapshot of {@linkcode AdamW}'s state: enough to resume bit for bit. */
export interface AdamWState {
  /** Optimizer steps taken so far. */
  step: number;
  /** First moments, one per parameter name, in the parameter's row-major layout. */
  m: Record<string, Float32Array>;
  /** Second moments, one per parameter name. */
  v: Record<string, Float32Array>;
}

/** Options of {@linkcode AdamW.step}. */
export interface AdamWStepOptions {
  /**
   * Factor applied to every gradient as it is used (gradient clipping's scale), so that a
   * clipped copy of all gradients is never made. @default 1
   */
  readonly gradScale?: number;
}

/**
 * AdamW over a named set of variables, as torch.optim.AdamW updates them (amsgrad off):
 *
 * ```
 * θ ← θ - lr·λ·θ                       // decoupled weight decay
 * m ← β1·m + (1 - β1)·g
 * v ← β2·v + (1 - β2)·g²
 * θ ← θ - lr/(1 - β1^t) · m / (sqrt(v)/sqrt(1 - β2^t) + ε)
 * ```
 *
 * The moments live in non-trainable variables; every update runs inside `tf.tidy`, so a
 * step leaves the tensor count unchanged. Call {@linkcode AdamW.dispose} to free the moments.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { AdamW } from "./optimizer.ts";
 * const w = tf.variable(tf.tensor1d([1]));
 * const opt = new AdamW({ w }, { weightDecay: 0 });
 * opt.step({ w: tf.tensor1d([0.5]) }, 0.1);
 * // first step of Adam moves every coordinate by lr (up to ε): 1 - 0.1 = 0.9
 * if (Math.abs(w.dataSync()[0]! - 0.9) > 1e-6) throw new Error("wrong step");
 * ```
 */
export class AdamW {
  /** β1 in use. */
  readonly beta1: number;
  /** β2 in use. */
  readonly beta2: number;
  /** ε in use. */
  readonly eps: number;
  /** λ in use. */
  readonly weightDecay: number;
  #params: Map<string, tf.Variable>;
  #m = new Map<string, tf.Variable>();
  #v = new Map<string, tf.Variable>();
  #noDecay: (name: string) => boolean;
  #step = 0;

  /**
   * @param params The trainable variables by name; gradients are matched by these names.
   * @param options β1, β2, ε, weight decay.
   * @throws {RangeError} When an option is out of range.
   */
  constructor(
    params: Record<string, tf.Variable> | Map<string, tf.Variable>,
    options: AdamWOptions = {},
  ) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.01;
    this.#noDecay = options.noDecay ?? (() => false);
    for (const [name, value] of [["beta1", this.beta1], ["beta2", this.beta2]] as const) {
      if (!(value >= 0 && value < 1)) {
        throw new RangeError(
          `Cannot create AdamW: "${name}" must be in [0, 1): current value is ${value}`,
        );
      }
    }
    if (!(this.eps > 0)) {
      throw new RangeError(`Cannot create AdamW: "eps" must be > 0: current value is ${this.eps}`);
    }
    if (!(Number.isFinite(this.weightDecay) && this.weightDecay >= 0)) {
      throw new RangeError(
        `Cannot create AdamW: "weightDecay" must be >= 0: current value is ${this.weightDecay}`,
      );
    }
    this.#params = new Map(params instanceof Map ? params : Object.entries(params));
    tf.tidy(() => {
      for (const [name, p] of this.#params) {
        this.#m.set(name, tf.variable(tf.zerosLike(p), false));
        this.#v.set(name, tf.variable(tf.zerosLike(p), false));
      }
    });
  }

  /** Optimizer steps taken so far (the `t` of the bias correction of the last step). */
  get stepCount(): number {
    return this.#step;
  }

  /**
   * Applies one update with learning rate `lr`. A parameter without a gradient in `grads` is
   * left untouched (no decay, no moment update), like a torch parameter whose `.grad` is
   * `None`; the bias correction still uses the shared step count. The caller keeps ownership
   * of `grads`.
   *
   * @param grads Gradients by parameter name, each of its parameter's shape.
   * @param lr Learning rate of this step.
   * @param options `gradScale`: a factor applied to every gradient (clipping's scale).
   * @throws {TypeError} When a gradient names no parameter or has the wrong shape.
   * @throws {RangeError} When `lr` or `gradScale` is negative or not finite.
   */
  step(grads: Record<string, tf.Tensor>, lr: number, options: AdamWStepOptions = {}): void {
    if (!(Number.isFinite(lr) && lr >= 0)) {
      throw new RangeError(`Cannot take an AdamW step: "lr" must be >= 0: current value is ${lr}`);
    }
    const gradScale = options.gradScale ?? 1;
    if (!(Number.isFinite(gradScale) && gradScale >= 0)) {
      throw new RangeError(
        `Cannot take an AdamW step: "gradScale" must be >= 0: current value is ${gradScale}`,
      );
    }
    for (const [name, g] of Object.entries(grads)) {
      const p = this.#params.get(name);
      if (p === undefined) {
        throw new TypeError(`Cannot take an AdamW step: gradient "${name}" names no parameter`);
      }
      if (!sameShape(p.shape, g.shape)) {
        throw new TypeError(
          `Cannot take an AdamW step: gradient "${name}" must have shape [${
            p.shape.join(", ")
          }]: ` +
            `current shape is [${g.shape.join(", ")}]`,
        );
      }
    }
    const t = this.#step + 1;
    const { beta1, beta2, eps } = this;
    const stepSize = lr / (1 - beta1 ** t);
    const sqrtBiasCorrection2 = Math.sqrt(1 - beta2 ** t);
    // One parameter at a time, each expression in its own tidy: the temporaries of one
    // parameter's update are freed before the next one starts. (One tidy around the whole
    // update kept about a dozen model-sized temporaries alive at its end.) Peak memory is a
    // few copies of the largest parameter, not of the model.
    for (const [name, p] of this.#params) {
      const g0 = grads[name];
      if (g0 === undefined) continue;
      const m = this.#m.get(name)!;
      const v = this.#v.get(name)!;
      const g = gradScale === 1 ? g0 : tf.mul(g0, gradScale);
      const mNew = tf.tidy(() => tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
      m.assign(mNew);
      mNew.dispose();
      const vNew = tf.tidy(() => tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
      v.assign(vNew);
      vNew.dispose();
      if (g !== g0) g.dispose();
      const decay = this.#noDecay(name) ? 0 : lr * this.weightDecay;
      const theta = tf.tidy(() => {
        const update = tf.tidy(() => {
          const denom = tf.tidy(() => tf.add(tf.div(tf.sqrt(v), sqrtBiasCorrection2), eps));
          return tf.mul(tf.div(m, denom), stepSize);
        });
        return decay === 0 ? tf.sub(p, update) : tf.sub(tf.mul(p, 1 - decay), update);
      });
      p.assign(theta);
      theta.dispose();
    }
    this.#step = t;
  }

  /**
   * {@linkcode AdamW.getState} that reads the moments back with `await data()`: the one to
   * call where the backend may be webgpu, whose `dataSync()` throws.
   */
  async getStateAsync(): Promise<AdamWState> {
    const m: Record<string, Float32Array> = {};
    const v: Record<string, Float32Array> = {};
    for (const name of this.#params.keys()) {
      m[name] = new Float32Array(await this.#m.get(name)!.data());
      v[name] = new Float32Array(await this.#v.get(name)!.data());
    }
    return { step: this.#step, m, v };
  }

  /** Copies the step count and moments out (for checkpoints). */
  getState(): AdamWState {
    const m: Record<string, Float32Array> = {};
    const v: Record<string, Float32Array> = {};
    for (const name of this.#params.keys()) {
      m[name] = new Float32Array(this.#m.get(name)!.dataSync());
      v[name] = new Float32Array(this.#v.get(name)!.dataSync());
    }
    return { step: this.#step, m, v };
  }

  /**
   * Restores a state from {@linkcode AdamW.getState}; nothing is changed when it is invalid.
   *
   * @param state Step count and moments for exactly this optimizer's parameters.
   * @throws {TypeError} When a parameter is missing from or unknown to the state.
   * @throws {RangeError} When the step is not a non-negative integer or a moment has the wrong size.
   */
  setState(state: AdamWState): void {
    const what = "Cannot set AdamW state";
    if (!(Number.isInteger(state.step) && state.step >= 0)) {
      throw new RangeError(
        `${what}: "step" must be a non-negative integer: current value is ${state.step}`,
      );
    }
    for (const key of ["m", "v"] as const) {
      const moments = state[key];
      for (const name of Object.keys(moments)) {
        if (!this.#params.has(name)) {
          throw new TypeError(`${what}: "${key}.${name}" names no parameter`);
        }
      }
      for (const [name, p] of this.#params) {
        const values = moments[name];
        if (values === undefined) {
          throw new TypeError(`${what}: "${key}.${name}" is missing`);
        }
        if (values.length !== p.size) {
          throw new RangeError(
            `${what}: "${key}.${name}" must have ${p.size} values: current length is ${values.length}`,
          );
        }
      }
    }
    tf.tidy(() => {
      for (const [name, p] of this.#params) {
        this.#m.get(name)!.assign(tf.tensor(state.m[name]!, p.shape, "float32"));
        this.#v.get(name)!.assign(tf.tensor(state.v[name]!, p.shape, "float32"));
      }
    });
    this.#step = state.step;
  }

  /** Frees the moment variables (the parameters stay the caller's). */
  dispose(): void {
    for (const t of [...this.#m.values(), ...this.#v.values()]) t.dispose();
    this.#m.clear();
    this.#v.clear();
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Result of {@linkcode clipByGlobalNorm}. */
export interface ClippedGrads {
  /** The gradients after clipping: new tensors the caller owns (the inputs stay the caller's too). */
  grads: Record<string, tf.Tensor>;
  /** The global L2 norm BEFORE clipping; NaN or Infinity when a gradient is not finite. */
  norm: number;
}

/**
 * Scales all gradients together so that their global L2 norm is at most `maxNorm`, as torch's
 * `clip_grad_norm_`: `scale = maxNorm / (norm + 1e-6)`, applied only when it is < 1.
 * `maxNorm = 0` turns clipping off (the norm is still measured, for logging). When the norm
 * is not finite, the gradients are returned unscaled and `norm` says so: the caller decides
 * to skip the step.
 *
 * @param grads Gradients by name.
 * @param maxNorm Largest allowed global norm; 0 disables clipping.
 * @returns Clipped gradients (new tensors, also when unscaled) and the pre-clip norm.
 * @throws {RangeError} When `maxNorm` is negative or not finite.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { clipByGlobalNorm } from "./optimizer.ts";
 * const { norm, grads } = clipByGlobalNorm({ a: tf.tensor1d([3, 4]) }, 1);
 * // norm 5, scale 1 / (5 + 1e-6)
 * if (norm !== 5 || Math.abs(grads.a!.dataSync()[0]! - 0.6) > 1e-6) throw new Error("wrong clip");
 * ```
 */
export function clipByGlobalNorm(grads: Record<string, tf.Tensor>, maxNorm: number): ClippedGrads {
  const norm = globalNorm(grads, maxNorm);
  const normValue = typeof norm === "number" ? norm : norm.dataSync()[0]!;
  if (typeof norm !== "number") norm.dispose();
  return scaleToNorm(grads, maxNorm, normValue);
}

/**
 * {@linkcode clipByGlobalNorm} that reads the norm back with `await data()`: the one to call
 * where the backend may be webgpu, whose `dataSync()` throws.
 *
 * @param grads Gradients by name.
 * @param maxNorm Largest allowed global norm; 0 disables clipping.
 * @returns Clipped gradients (new tensors, also when unscaled) and the pre-clip norm.
 * @throws {RangeError} When `maxNorm` is negative or not finite.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { clipByGlobalNormAsync } from "./optimizer.ts";
 * const { norm } = await clipByGlobalNormAsync({ a: tf.tensor1d([3, 4]) }, 1);
 * if (norm !== 5) throw new Error("wrong norm");
 * ```
 */
export async function clipByGlobalNormAsync(
  grads: Record<string, tf.Tensor>,
  maxNorm: number,
): Promise<ClippedGrads> {
  const norm = globalNorm(grads, maxNorm);
  const normValue = typeof norm === "number" ? norm : (await norm.data())[0]!;
  if (typeof norm !== "number") norm.dispose();
  return scaleToNorm(grads, maxNorm, normValue);
}

/** The global L2 norm of `grads` as a scalar tensor (0 when there are none). */
function globalNorm(grads: Record<string, tf.Tensor>, maxNorm: number): tf.Scalar | number {
  if (!(Number.isFinite(maxNorm) && maxNorm >= 0)) {
    throw new RangeError(
      `Cannot clip gradients: "maxNorm" must be >= 0: current value is ${maxNorm}`,
    );
  }
  const entries = Object.values(grads);
  if (entries.length === 0) return 0;
  // Each square is reduced in its own tidy: one gradient-sized temporary at a time.
  const squares = entries.map((g) => tf.tidy(() => tf.sum(tf.square(tf.cast(g, "float32")))));
  const norm = tf.tidy(() =>
    // Pairwise adds, not tf.addN: tfjs-backend-webgpu 4.22's AddN drops inputs past the
    // fourth (8 inputs sum to what 4 do; 27 to 0).
    tf.sqrt(squares.reduce((a, b) => tf.add(a, b))) as tf.Scalar
  );
  tf.dispose(squares);
  return norm;
}

function scaleToNorm(
  grads: Record<string, tf.Tensor>,
  maxNorm: number,
  normValue: number,
): ClippedGrads {
  const scale = clipScale(maxNorm, normValue);
  const out: Record<string, tf.Tensor> = {};
  for (const [name, g] of Object.entries(grads)) {
    out[name] = scale < 1 ? tf.mul(g, scale) : tf.clone(g);
  }
  return { grads: out, norm: normValue };
}

/** torch's `clip_grad_norm_` factor: `maxNorm / (norm + 1e-6)` when below 1, else 1. */
function clipScale(maxNorm: number, normValue: number): number {
  const scale = maxNorm / (normValue + 1e-6);
  return maxNorm > 0 && Number.isFinite(normValue) && scale < 1 ? scale : 1;
}

/** Result of {@linkcode globalNormScaleAsync}. */
export interface NormScale {
  /** The global L2 norm of the gradients; NaN or Infinity when one is not finite. */
  norm: number;
  /** The factor that clips them to `maxNorm` (1 when they are within it, or it is 0). */
  scale: number;
}

/**
 * The global norm of `grads` and the factor {@linkcode clipByGlobalNormAsync} would scale them
 * by, without making scaled copies: pass `scale` to {@linkcode AdamW.step} as `gradScale`.
 * Reads the norm back with `await data()` (webgpu has no `dataSync`).
 *
 * @param grads Gradients by name.
 * @param maxNorm Largest allowed global norm; 0 disables clipping.
 * @returns The pre-clip norm and the clipping factor.
 * @throws {RangeError} When `maxNorm` is negative or not finite.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { globalNormScaleAsync } from "./optimizer.ts";
 * const { norm, scale } = await globalNormScaleAsync({ a: tf.tensor1d([3, 4]) }, 1);
 * if (norm !== 5 || Math.abs(scale - 1 / (5 + 1e-6)) > 1e-12) throw new Error("wrong scale");
 * ```
 */
export async function globalNormScaleAsync(
  grads: Record<string, tf.Tensor>,
  maxNorm: number,
): Promise<NormScale> {
  const norm = globalNorm(grads, maxNorm);
  const normValue = typeof norm === "number" ? norm : (await norm.data())[0]!;
  if (typeof norm !== "number") norm.dispose();
  return { norm: normValue, scale: clipScale(maxNorm, normValue) };
}

/** Options of {@linkcode learningRateAt}. */
export interface LearningRateOptions {
  /** Peak learning rate. */
  lr: number;
  /** Optimizer steps of the whole run. */
  totalSteps: number;
  /** Fraction of `totalSteps` spent in linear warm-up: `ceil(warmupRatio · totalSteps)` steps. */
  warmupRatio: number;
  /** Shape after warm-up. */
  schedule: "cosine" | "linear" | "constant";
  /**
   * Cosine only: the floor, as a fraction of `lr` (HF's `cosine_with_min_lr`, `min_lr_rate`).
   * @default 0
   */
  minLrRatio?: number;
}

/**
 * The learning rate of optimizer step `step` (0-based: the step about to be taken), equal to
 * `lr · λ(step)` of Hugging Face's LambdaLR schedules with `W = ceil(warmupRatio · totalSteps)`
 * warm-up steps (`TrainingArguments.get_warmup_steps`):
 *
 * - warm-up, `step < W`: `step / max(1, W)`;
 * - `"cosine"` (`get_cosine_schedule_with_warmup`, `get_cosine_with_min_lr_schedule_with_warmup`):
 *   `p = (step - W) / max(1, total - W)`, `f = 0.5·(1 + cos(π·p))`, `λ = f·(1 - min) + min`;
 * - `"linear"` (`get_linear_schedule_with_warmup`): `max(0, (total - step) / max(1, total - W))`;
 * - `"constant"` (`get_constant_schedule_with_warmup`): 1.
 *
 * One deviation: past `totalSteps` the cosine progress is held at 1 (HF's cosine would rise
 * again; HF never steps that far).
 *
 * @param step 0-based optimizer step.
 * @param options Peak rate, run length, warm-up ratio and schedule.
 * @returns The learning rate for that step.
 * @throws {RangeError} When an argument is out of range.
 *
 * @example
 * ```ts
 * import { learningRateAt } from "./optimizer.ts";
 * const o = { lr: 1, totalSteps: 10, warmupRatio: 0.2, schedule: "cosine" } as const;
 * // 2 warm-up steps, then the midpoint of the cosine (step 6) is 0.5
 * if (learningRateAt(1, o) !== 0.5 || Math.abs(learningRateAt(6, o) - 0.5) > 1e-12) {
 *   throw new Error("wrong schedule");
 * }
 * ```
 */
export function learningRateAt(step: number, options: LearningRateOptions): number {
  const { lr, totalSteps, warmupRatio, schedule, minLrRatio = 0 } = options;
  const what = "Cannot compute the learning rate";
  if (!(Number.isInteger(step) && step >= 0)) {
    throw new RangeError(
      `${what}: "step" must be a non-negative integer: current value is ${step}`,
    );
  }
  if (!(Number.isFinite(lr) && lr >= 0)) {
    throw new RangeError(`${what}: "lr" must be >= 0: current value is ${lr}`);
  }
  if (!(Number.isInteger(totalSteps) && totalSteps >= 1)) {
    throw new RangeError(
      `${what}: "totalSteps" must be a positive integer: current value is ${totalSteps}`,
    );
  }
  if (!(warmupRatio >= 0 && warmupRatio <= 1)) {
    throw new RangeError(
      `${what}: "warmupRatio" must be in [0, 1]: current value is ${warmupRatio}`,
    );
  }
  if (!(minLrRatio >= 0 && minLrRatio <= 1)) {
    throw new RangeError(`${what}: "minLrRatio" must be in [0, 1]: current value is ${minLrRatio}`);
  }
  if (schedule !== "cosine" && schedule !== "linear" && schedule !== "constant") {
    throw new RangeError(
      `${what}: unknown schedule "${schedule as string}" (expected "cosine", "linear" or "constant")`,
    );
  }
  const warmupSteps = Math.ceil(warmupRatio * totalSteps);
  if (step < warmupSteps) return lr * (step / Math.max(1, warmupSteps));
  let factor: number;
  switch (schedule) {
    case "cosine": {
      const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
      const cosine = 0.5 * (1 + Math.cos(Math.PI * progress));
      factor = Math.max(0, cosine * (1 - minLrRatio) + minLrRatio);
      break;
    }
    case "linear":
      factor = Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
      break;
    case "constant":
      factor = 1;
      break;
  }
  return lr * factor;
}
