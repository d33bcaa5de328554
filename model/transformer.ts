/**
 * A decoder-only transformer shaped like Qwen2: RMSNorm, rotary position embeddings,
 * grouped-query attention with q/k/v bias, SwiGLU MLP, optional tied embeddings.
 *
 * Parameters carry Hugging Face's names (`model.layers.0.self_attn.q_proj.weight`, ...).
 * Linear weights are held transposed (`[in, out]`) so every projection is a plain 2-D matmul on
 * the fast wasm path; {@link Transformer.exportWeights} converts back to Hugging Face's `[out, in]`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  headDim,
  type ModelConfig,
  ModelConfigSchema,
  ropeInverseFrequencies,
} from "./model_config.ts";
import { embed, mm, recordingGradients, rmsNorm, rotateHalfMatrix, silu } from "./ops.ts";
import { Rng } from "../util/rng.ts";
import { fitPackedWeightCache, packedWeightCache } from "./wasm_kernels.ts";

/**
 * Tokens per block of a frozen tied head when the packed-weights cache is off
 * (`Transformer`'s `#tiedHead`).
 */
export const HEAD_BLOCK_ROWS = 16384;

/** Per-layer key/value cache, each `[B, H_kv, S, headDim]`. */
export interface KvCache {
  k: tf.Tensor4D;
  v: tf.Tensor4D;
}

/** Options of {@link Transformer.forward}. */
export interface ForwardOptions {
  /**
   * Position of every token, `[B, T]` row-major. Default: `0..T-1` for every row (right padding).
   */
  positions?: Int32Array;
  /** Additive attention mask broadcastable to `[B, H_kv, g, T, S]`. Default: causal `[T, T]`. */
  mask?: tf.Tensor;
  /** Caches from earlier steps; the new keys/values are appended. */
  past?: KvCache[];
  /** Return caches with this call's keys/values appended (for sampling). @default false */
  returnCache?: boolean;
  /** Compute logits only for the last position of each row. @default false */
  lastOnly?: boolean;
  /**
   * Return the final normed hidden states `[B·T, D]` in `logits` instead of the logits (a value
   * head reads them). `lastOnly` is ignored. @default false
   */
  hiddenOnly?: boolean;
}

/** Output of {@link Transformer.forward}. */
export interface ForwardResult {
  /** `[B·T, V]`, or `[B, V]` with `lastOnly`. */
  logits: tf.Tensor2D;
  /** Present when `returnCache` is set. */
  cache?: KvCache[];
}

/** Names of the weights stored as `[in, out]` here and `[out, in]` in Hugging Face files. */
function isTransposedLinear(name: string): boolean {
  return name.endsWith("_proj.weight") || name === "lm_head.weight" ||
    name.endsWith(".lora_A.weight") || name.endsWith(".lora_B.weight");
}

/**
 * `x @ w` for a weight that gets no gradient (a base weight frozen under LoRA). Under a tape on
 * wasm/webgpu, `mm`'s custom gradient computes `dw = xᵀ·dy` with `dx` and drops it: as costly as
 * the forward matmul. Here `w` is closed over, so the backward computes `dx = dy·wᵀ` alone.
 */
function frozenMm(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const backend = tf.getBackend();
  if ((backend !== "wasm" && backend !== "webgpu") || !recordingGradients()) return mm(x, w);
  const f = tf.customGrad(
    // deno-lint-ignore no-explicit-any
    ((a: tf.Tensor2D, save: tf.GradSaveFunc): any => {
      save([w]); // `w` may be an intermediate (the tied head's transpose): keep it for backward
      return {
        value: tf.matMul(a, w),
        gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) =>
          tf.matMul(dy, tf.transpose(saved[0] as tf.Tensor2D)),
      };
    }) as never,
  ) as unknown as (a: tf.Tensor2D) => tf.Tensor2D;
  return f(x);
}

/** `x @ w` with {@link frozenMm} when `w` is a frozen variable. */
function mmWeight(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  return w instanceof tf.Variable && !w.trainable ? frozenMm(x, w) : mm(x, w);
}

/** Low-rank adapters attached to a model (see `model/lora.ts`). */
export interface LoraSettings {
  /** Rank r. */
  r: number;
  /** α: the update is scaled by α / r. */
  alpha: number;
  /** Projection names that carry adapters (`q_proj`, ..., `down_proj`). */
  targetModules: string[];
}

/**
 * Reads one tensor in Hugging Face layout for {@link Transformer.fromTensorReader}: `name`
 * and the shape it must have (`hfShape`); returns its f32 values, row-major. It should throw
 * an error naming the tensor (and its file) when the tensor is missing or has another shape.
 */
export type HfTensorReader = (
  name: string,
  hfShape: readonly number[],
) => Float32Array | Promise<Float32Array>;

/**
 * RoPE `cos`/`sin` tables `[n, headDim]` as transformers computes them: the angle
 * `position · inv_freq` in float32, `emb = concat(freqs, freqs)`.
 */
function ropeTablesOf(config: ModelConfig): { cos: Float32Array; sin: Float32Array } {
  const n = config.max_position_embeddings;
  const hd = headDim(config), half = hd / 2;
  const inv = ropeInverseFrequencies(config);
  const cos = new Float32Array(n * hd), sin = new Float32Array(n * hd);
  for (let p = 0; p < n; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * inv[i]!);
      const c = Math.cos(angle), s = Math.sin(angle);
      cos[p * hd + i] = c;
      cos[p * hd + i + half] = c;
      sin[p * hd + i] = s;
      sin[p * hd + i + half] = s;
    }
  }
  return { cos, sin };
}

/** A variable in our layout from Hugging Face-layout values (linear weights transposed). */
function variableFromHf(
  name: string,
  data: Float32Array,
  hfShape: readonly number[],
  trainable: boolean,
): tf.Variable {
  return tf.tidy(() => {
    const t = tf.tensor(data, [...hfShape]);
    return tf.variable(isTransposedLinear(name) ? tf.transpose(t) : t, trainable);
  });
}

/**
 * The policy network.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { Transformer } from "./transformer.ts";
 * const m = Transformer.create({
 *   vocab_size: 10, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1,
 *   num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 16,
 *   rope_theta: 10000, rms_norm_eps: 1e-6, tie_word_embeddings: true, attention_bias: true,
 * }, { seed: 1 });
 * const { logits } = m.forward(tf.tensor2d([[1, 2, 3]], [1, 3], "int32"));
 * if (logits.shape.join() !== "3,10") throw new Error("shape");
 * m.dispose();
 * ```
 */
export class Transformer {
  /** The architecture. */
  readonly config: ModelConfig;
  /** Trainable parameters by Hugging Face name (linear weights stored `[in, out]`). */
  readonly params: Map<string, tf.Variable>;
  /**
   * The adapters' settings when LoRA is attached (`model/lora.ts`): parameters
   * `<projection>.lora_A.weight` and `.lora_B.weight` are then in {@link params}.
   */
  lora: LoraSettings | undefined;
  /**
   * Recompute each layer's activations in the backward instead of keeping them (TRL's
   * `gradient_checkpointing`): under a gradient tape, activation memory drops to one
   * `[B·T, D]` tensor per layer, for one more forward per step. Results are the same.
   * @default false
   */
  gradientCheckpointing = false;
  readonly #headDim: number;
  readonly #rot: tf.Tensor2D;
  readonly #cos: tf.Tensor2D;
  #vocabMask: tf.Tensor1D | undefined;
  #headCache: tf.Tensor2D[] | undefined;
  #vocabLimit: number | undefined;
  readonly #sin: tf.Tensor2D;
  readonly #cosData: Float32Array;
  readonly #sinData: Float32Array;
  #causal = new Map<number, tf.Tensor>();
  /** Bytes of f32 parameters this model added to {@link Transformer.#liveBytes} (0 once disposed). */
  #bytes: number;
  /**
   * Bytes of f32 parameters of every live model of the process: they decide whether the wasm
   * backend keeps XNNPACK's packed copy of each weight (`fitPackedWeightCache`), which would
   * double a large model's footprint in the backend's 4 GB heap.
   */
  static #liveBytes = 0;

  private constructor(config: ModelConfig, params: Map<string, tf.Variable>) {
    this.config = config;
    this.params = params;
    this.#bytes = this.numParameters * 4;
    Transformer.#liveBytes += this.#bytes;
    fitPackedWeightCache(Transformer.#liveBytes);
    this.lora = undefined;
    this.#headDim = headDim(config);
    const { cos, sin } = ropeTablesOf(config);
    this.#cosData = cos;
    this.#sinData = sin;
    this.#cos = tf.tensor2d(cos, [config.max_position_embeddings, this.#headDim]);
    this.#sin = tf.tensor2d(sin, [config.max_position_embeddings, this.#headDim]);
    this.#rot = rotateHalfMatrix(this.#headDim);
  }

  /**
   * Builds a model with freshly initialised weights (normal, std 0.02, as Hugging Face's
   * `initializer_range`; norms at 1, biases at 0), reproducible from `seed`.
   */
  static create(
    config: ModelConfig,
    options: { seed?: number; trainable?: boolean } = {},
  ): Transformer {
    const cfg = ModelConfigSchema.parse(config);
    const rng = new Rng(options.seed ?? 0);
    const shapes = Transformer.parameterShapes(cfg);
    const params = new Map<string, tf.Variable>();
    for (const [name, shape] of shapes) {
      const size = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(size);
      if (name.endsWith("norm.weight")) data.fill(1);
      else if (!name.endsWith(".bias")) {
        for (let i = 0; i < size; i++) data[i] = 0.02 * rng.normal();
      }
      const initial = tf.tensor(data, shape);
      params.set(name, tf.variable(initial, options.trainable ?? true));
      initial.dispose(); // the variable holds a copy
    }
    return new Transformer(cfg, params);
  }

  /**
   * Builds a model from Hugging Face-layout weights (linear weights `[out, in]`).
   * Throws a `TypeError` naming the first missing tensor or mismatching shape.
   */
  static fromWeights(
    config: ModelConfig,
    weights: Map<string, { data: Float32Array; shape: number[] }>,
    options: { trainable?: boolean } = {},
  ): Transformer {
    const cfg = ModelConfigSchema.parse(config);
    const params = new Map<string, tf.Variable>();
    try {
      for (const [name, hfShape] of Transformer.hfParameterShapes(cfg)) {
        const w = weights.get(name);
        if (!w) throw new TypeError(`Missing tensor "${name}" for this architecture`);
        if (w.shape.join(",") !== hfShape.join(",")) {
          throw new TypeError(
            `Tensor "${name}" has the wrong shape: expected [${hfShape}]: current value is [${w.shape}]`,
          );
        }
        params.set(name, variableFromHf(name, w.data, hfShape, options.trainable ?? true));
      }
    } catch (e) {
      for (const v of params.values()) v.dispose();
      throw e;
    }
    return new Transformer(cfg, params);
  }

  /**
   * Builds a model whose tensors `read` supplies one at a time, in Hugging Face layout, in
   * the order of {@link hfParameterShapes}. Each tensor is uploaded into its variable before
   * the next is read, so host memory holds one tensor at a time (how `loadHfModel` streams
   * a safetensors file). On an error every variable made so far is freed.
   */
  static async fromTensorReader(
    config: ModelConfig,
    read: HfTensorReader,
    options: { trainable?: boolean } = {},
  ): Promise<Transformer> {
    const cfg = ModelConfigSchema.parse(config);
    const params = new Map<string, tf.Variable>();
    try {
      for (const [name, hfShape] of Transformer.hfParameterShapes(cfg)) {
        const data = await read(name, hfShape);
        const size = hfShape.reduce((a, b) => a * b, 1);
        if (data.length !== size) {
          throw new TypeError(
            `Tensor "${name}" has the wrong size: expected ${size} values for [${hfShape}]: ` +
              `current value is ${data.length}`,
          );
        }
        params.set(name, variableFromHf(name, data, hfShape, options.trainable ?? true));
      }
    } catch (e) {
      for (const v of params.values()) v.dispose();
      throw e;
    }
    return new Transformer(cfg, params);
  }

  /** Parameter names and shapes in Hugging Face layout (linear weights `[out, in]`). */
  static hfParameterShapes(c: ModelConfig): [string, number[]][] {
    return Transformer.parameterShapes(c).map((
      [name, shape],
    ) => [name, isTransposedLinear(name) ? [shape[1]!, shape[0]!] : shape]);
  }

  /** Parameter names and internal shapes, in a fixed order. */
  static parameterShapes(c: ModelConfig): [string, number[]][] {
    const d = c.hidden_size, f = c.intermediate_size;
    const hd = headDim(c);
    const qOut = c.num_attention_heads * hd, kvOut = c.num_key_value_heads * hd;
    const out: [string, number[]][] = [["model.embed_tokens.weight", [c.vocab_size, d]]];
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const p = `model.layers.${i}`;
      out.push([`${p}.input_layernorm.weight`, [d]]);
      out.push([`${p}.self_attn.q_proj.weight`, [d, qOut]]);
      out.push([`${p}.self_attn.k_proj.weight`, [d, kvOut]]);
      out.push([`${p}.self_attn.v_proj.weight`, [d, kvOut]]);
      if (c.attention_bias) {
        out.push([`${p}.self_attn.q_proj.bias`, [qOut]]);
        out.push([`${p}.self_attn.k_proj.bias`, [kvOut]]);
        out.push([`${p}.self_attn.v_proj.bias`, [kvOut]]);
      }
      out.push([`${p}.self_attn.o_proj.weight`, [qOut, d]]);
      if (c.o_proj_bias) out.push([`${p}.self_attn.o_proj.bias`, [d]]);
      out.push([`${p}.post_attention_layernorm.weight`, [d]]);
      out.push([`${p}.mlp.gate_proj.weight`, [d, f]]);
      out.push([`${p}.mlp.up_proj.weight`, [d, f]]);
      out.push([`${p}.mlp.down_proj.weight`, [f, d]]);
    }
    out.push(["model.norm.weight", [d]]);
    if (!c.tie_word_embeddings) out.push(["lm_head.weight", [d, c.vocab_size]]);
    return out;
  }

  /** Number of scalar parameters. */
  get numParameters(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /** Weights in Hugging Face layout (linear weights `[out, in]`), read back to the host. */
  async exportWeights(): Promise<Map<string, { data: Float32Array; shape: number[] }>> {
    const out = new Map<string, { data: Float32Array; shape: number[] }>();
    for (const name of this.params.keys()) out.set(name, await this.exportWeight(name));
    return out;
  }

  /**
   * One weight in Hugging Face layout, read back to the host (a saver streams a model
   * tensor by tensor with it). Throws a `RangeError` for an unknown name.
   */
  async exportWeight(name: string): Promise<{ data: Float32Array; shape: number[] }> {
    const v = this.params.get(name);
    if (!v) throw new RangeError(`Cannot export weight: no parameter is named "${name}"`);
    const t = isTransposedLinear(name) ? tf.transpose(v) : v;
    try {
      return { data: (await t.data()) as Float32Array, shape: [...t.shape] };
    } finally {
      if (t !== v) t.dispose();
    }
  }

  /**
   * Assigns weights given in Hugging Face layout (as from {@link exportWeights}); every
   * parameter must be present with the right size, else a `TypeError` names it and nothing
   * is assigned.
   */
  loadWeights(weights: Record<string, Float32Array>): void {
    if (this.#headCache) tf.dispose(this.#headCache);
    this.#headCache = undefined;
    for (const [name, v] of this.params) {
      const data = weights[name];
      if (!data) throw new TypeError(`Missing tensor "${name}" in the weights`);
      if (data.length !== v.size) {
        throw new TypeError(
          `Tensor "${name}" has the wrong size: expected ${v.size}: current value is ${data.length}`,
        );
      }
    }
    tf.tidy(() => {
      for (const [name, v] of this.params) {
        const data = weights[name]!;
        if (isTransposedLinear(name)) {
          v.assign(tf.transpose(tf.tensor2d(data, [v.shape[1]!, v.shape[0]!])));
        } else v.assign(tf.tensor(data, v.shape));
      }
    });
  }

  /**
   * A new model with copied weights; `trainable: false` for a frozen reference policy. LoRA
   * adapters and their settings are copied too; `trainable` applies to every weight alike, so
   * `trainable: true` also unfreezes the base weights of a LoRA model.
   */
  clone(options: { trainable?: boolean } = {}): Transformer {
    const params = new Map<string, tf.Variable>();
    for (const [name, v] of this.params) {
      params.set(name, tf.variable(v, options.trainable ?? true));
    }
    const copy = new Transformer(this.config, params);
    if (this.#vocabLimit !== undefined) copy.limitVocabulary(this.#vocabLimit);
    if (this.lora) copy.lora = { ...this.lora, targetModules: [...this.lora.targetModules] };
    return copy;
  }

  /** The parameters gradients and the optimizer see: the trainable ones (the adapters under LoRA). */
  get trainableParams(): Map<string, tf.Variable> {
    return new Map([...this.params].filter(([, v]) => v.trainable));
  }

  /**
   * Makes ids `>= n` impossible: their logits get -1e9 in every forward, so sampling, the
   * Learner's log-probs and the reference's all exclude them alike. For checkpoints whose
   * embedding table is padded beyond the tokenizer (Qwen2.5: 151,936 rows, 151,665 tokens).
   */
  limitVocabulary(n: number): void {
    const v = this.config.vocab_size;
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(
        `Cannot limit the vocabulary: must be an integer >= 1: current value is ${n}`,
      );
    }
    this.#vocabMask?.dispose();
    this.#vocabMask = undefined;
    this.#vocabLimit = undefined;
    if (n >= v) return;
    const mask = new Float32Array(v).fill(-1e9, n);
    this.#vocabMask = tf.tensor1d(mask);
    this.#vocabLimit = n;
  }

  /** Frees every tensor the model holds. */
  dispose(): void {
    Transformer.#liveBytes -= this.#bytes;
    this.#bytes = 0;
    fitPackedWeightCache(Transformer.#liveBytes);
    for (const v of this.params.values()) v.dispose();
    this.#rot.dispose();
    this.#cos.dispose();
    this.#sin.dispose();
    this.#vocabMask?.dispose();
    if (this.#headCache) tf.dispose(this.#headCache);
    this.#headCache = undefined;
    for (const m of this.#causal.values()) m.dispose();
    this.#causal.clear();
  }

  #p(name: string): tf.Tensor {
    const v = this.params.get(name);
    if (!v) throw new TypeError(`Missing tensor "${name}"`);
    return v;
  }

  /**
   * The tied LM head `tableᵀ [D, V]`, as column blocks whose products are concatenated. A
   * frozen table (a sampler's copy, a LoRA base, a reference policy) is transposed once and
   * kept: for a 151,936-token vocabulary the transpose is 545 MB per forward, which in
   * KV-cache sampling (a forward per token) fragments the wasm heap. With the wasm backend's
   * packed-weights cache off (a large model, `fitPackedWeightCache`) the kept transpose is cut
   * into blocks of {@linkcode HEAD_BLOCK_ROWS} tokens, so each product packs one block (58 MB
   * at Qwen2.5's width) instead of the whole head. A trainable table is transposed in each
   * forward, inside the tape.
   */
  #tiedHead(table: tf.Tensor2D): tf.Tensor2D[] {
    const variable = this.params.get("model.embed_tokens.weight")!;
    if (variable.trainable) return [tf.transpose(table) as tf.Tensor2D];
    if (!this.#headCache) {
      const [v, d] = table.shape;
      const rows = packedWeightCache() ? v : HEAD_BLOCK_ROWS;
      const blocks: tf.Tensor2D[] = [];
      for (let start = 0; start < v; start += rows) {
        const n = Math.min(rows, v - start);
        blocks.push(tf.keep(tf.tidy(() => tf.transpose(tf.slice(table, [start, 0], [n, d])))));
      }
      this.#headCache = blocks;
    }
    return this.#headCache;
  }

  /** Additive causal mask `[T, T]` (0 on and below the diagonal, -1e9 above), cached per T. */
  causalMask(t: number): tf.Tensor {
    let m = this.#causal.get(t);
    if (!m) {
      const data = new Float32Array(t * t);
      for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) data[i * t + j] = -1e9;
      m = tf.keep(tf.tensor2d(data, [t, t]));
      this.#causal.set(t, m);
    }
    return m;
  }

  /** RoPE `cos`/`sin` rows for explicit positions, as `[B, T, 1, headDim]` tensors. */
  #ropeFor(positions: Int32Array, b: number, t: number): [tf.Tensor, tf.Tensor] {
    const hd = this.#headDim;
    const cos = new Float32Array(b * t * hd), sin = new Float32Array(b * t * hd);
    for (let i = 0; i < b * t; i++) {
      const p = positions[i]!;
      if (p < 0 || p >= this.config.max_position_embeddings) {
        throw new RangeError(
          `Position out of range: must be < ${this.config.max_position_embeddings}: current value is ${p}`,
        );
      }
      cos.set(this.#cosData.subarray(p * hd, (p + 1) * hd), i * hd);
      sin.set(this.#sinData.subarray(p * hd, (p + 1) * hd), i * hd);
    }
    return [tf.tensor4d(cos, [b, t, 1, hd]), tf.tensor4d(sin, [b, t, 1, hd])];
  }

  /**
   * Runs the network on token ids `[B, T]`. Call inside `tf.tidy` (caches returned with
   * `returnCache` must be kept and disposed by the caller).
   */
  forward(ids: tf.Tensor2D, options: ForwardOptions = {}): ForwardResult {
    const c = this.config;
    const [b, t] = ids.shape;
    const hd = this.#headDim;
    const h = c.num_attention_heads, hkv = c.num_key_value_heads, g = h / hkv;
    const past = options.past;
    const pastLen = past?.[0]?.k.shape[2] ?? 0;
    if (!options.positions && pastLen + t > c.max_position_embeddings) {
      throw new RangeError(
        `Sequence too long: must be at most ${c.max_position_embeddings} tokens: current value is ${
          pastLen + t
        }`,
      );
    }
    let cos: tf.Tensor, sin: tf.Tensor;
    if (options.positions) {
      [cos, sin] = this.#ropeFor(options.positions, b, t);
    } else {
      cos = tf.reshape(tf.slice(this.#cos, [pastLen, 0], [t, hd]), [1, t, 1, hd]);
      sin = tf.reshape(tf.slice(this.#sin, [pastLen, 0], [t, hd]), [1, t, 1, hd]);
    }
    const mask = options.mask ?? this.causalMask(t);
    const scale = 1 / Math.sqrt(hd);

    const table = this.#p("model.embed_tokens.weight") as tf.Tensor2D;
    let x = embed(tf.reshape(ids, [b * t]) as tf.Tensor1D, table); // [B·T, D]
    const cache: KvCache[] = [];

    /** The tensors a layer reads besides its input and weights (a checkpointed layer keeps them). */
    type LayerConsts = [cos: tf.Tensor, sin: tf.Tensor, mask: tf.Tensor];
    const consts: LayerConsts = [cos, sin, mask];
    const rope = (y: tf.Tensor2D, heads: number, [cs, sn]: LayerConsts): tf.Tensor4D => {
      const y4 = tf.reshape(y, [b, t, heads, hd]);
      const rotated = tf.reshape(
        mm(tf.reshape(y, [b * t * heads, hd]) as tf.Tensor2D, this.#rot),
        [b, t, heads, hd],
      );
      return tf.add(tf.mul(y4, cs), tf.mul(rotated, sn)) as tf.Tensor4D; // [B, T, heads, hd]
    };

    // Without a tape each layer runs in a tidy of its own, so its activations are freed before
    // the next layer runs instead of all layers' living until the forward returns (1.4 GB in a
    // 150-token prefill of two rows on Qwen2.5-0.5B).
    const tidyLayers = !recordingGradients();
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const layer = (
        x: tf.Tensor2D,
        lc: LayerConsts,
      ): { x: tf.Tensor2D; k: tf.Tensor4D; v: tf.Tensor4D } => {
        const p = `model.layers.${i}`;
        const w = (n: string) => this.#p(`${p}.${n}`) as tf.Tensor2D;
        const lora = this.lora;
        const loraScale = lora ? lora.alpha / lora.r : 0;
        /** A projection `n` (`self_attn.q_proj.weight`), plus its adapter: x·W + (α/r)·x·Aᵀ·Bᵀ. */
        const proj = (x2: tf.Tensor2D, n: string, b?: tf.Tensor1D): tf.Tensor2D => {
          const y0 = mmWeight(x2, w(n));
          const y = b ? tf.add(y0, b) as tf.Tensor2D : y0;
          const base = n.slice(0, -".weight".length);
          if (!lora || !this.params.has(`${p}.${base}.lora_A.weight`)) return y;
          const down = mm(x2, this.#p(`${p}.${base}.lora_A.weight`) as tf.Tensor2D); // [M, r]
          // Scaled on the thin [M, r] side: a mul on [M, out] costs as much as the add.
          const scaled = loraScale === 1 ? down : tf.mul(down, loraScale) as tf.Tensor2D;
          const up = mm(scaled, this.#p(`${p}.${base}.lora_B.weight`) as tf.Tensor2D); // [M, out]
          return tf.add(y, up) as tf.Tensor2D;
        };
        const bias = (n: string) =>
          c.attention_bias ? this.#p(`${p}.${n}`) as tf.Tensor1D : undefined;

        // --- attention: x = x + attn(norm1(x)) ---
        const xn = rmsNorm(
          x,
          this.#p(`${p}.input_layernorm.weight`) as tf.Tensor1D,
          c.rms_norm_eps,
        );
        const q = rope(proj(xn, "self_attn.q_proj.weight", bias("self_attn.q_proj.bias")), h, lc);
        const kNew = rope(
          proj(xn, "self_attn.k_proj.weight", bias("self_attn.k_proj.bias")),
          hkv,
          lc,
        );
        const vNew = tf.reshape(
          proj(xn, "self_attn.v_proj.weight", bias("self_attn.v_proj.bias")),
          [b, t, hkv, hd],
        );
        let k = tf.transpose(kNew, [0, 2, 1, 3]) as tf.Tensor4D; // [B, Hkv, T, hd]
        let v = tf.transpose(vNew, [0, 2, 1, 3]) as tf.Tensor4D; // [B, Hkv, T, hd]
        const layerPast = past?.[i];
        if (layerPast) {
          k = tf.concat([layerPast.k, k], 2); // [B, Hkv, S, hd]
          v = tf.concat([layerPast.v, v], 2);
        }
        const s = k.shape[2];
        // Query heads grouped under their kv head: [B, T, Hkv, g, hd] -> [B·Hkv, g·T, hd]
        const qg = tf.reshape(
          tf.transpose(tf.reshape(q, [b, t, hkv, g, hd]), [0, 2, 3, 1, 4]),
          [b * hkv, g * t, hd],
        );
        const scores = tf.mul(
          tf.matMul(qg, tf.reshape(k, [b * hkv, s, hd]), false, true),
          scale,
        ); // [B·Hkv, g·T, S]
        const masked = tf.add(tf.reshape(scores, [b, hkv, g, t, s]), lc[2]);
        const probs = tf.reshape(tf.softmax(masked, -1), [b * hkv, g * t, s]);
        const ctxv = tf.matMul(probs, tf.reshape(v, [b * hkv, s, hd])); // [B·Hkv, g·T, hd]
        const merged = tf.reshape(
          tf.transpose(tf.reshape(ctxv, [b, hkv, g, t, hd]), [0, 3, 1, 2, 4]),
          [b * t, h * hd],
        ) as tf.Tensor2D; // [B·T, H·hd]
        const oBias = c.o_proj_bias
          ? this.#p(`${p}.self_attn.o_proj.bias`) as tf.Tensor1D
          : undefined;
        x = tf.add(x, proj(merged, "self_attn.o_proj.weight", oBias));

        // --- MLP: x = x + down(silu(gate(norm2(x))) · up(norm2(x))) ---
        const xm = rmsNorm(
          x,
          this.#p(`${p}.post_attention_layernorm.weight`) as tf.Tensor1D,
          c.rms_norm_eps,
        );
        const gated = tf.mul(
          silu(proj(xm, "mlp.gate_proj.weight")),
          proj(xm, "mlp.up_proj.weight"),
        ) as tf.Tensor2D;
        x = tf.add(x, proj(gated, "mlp.down_proj.weight"));
        return { x, k, v };
      };
      if (!tidyLayers && this.gradientCheckpointing && !options.returnCache && !past) {
        x = this.#checkpointed(i, (xIn, lc) => layer(xIn, lc).x, x, consts);
        continue;
      }
      const xIn = x;
      const out = tidyLayers ? tf.tidy(() => layer(xIn, consts)) : layer(xIn, consts);
      x = out.x;
      if (options.returnCache) cache.push({ k: out.k, v: out.v });
    }

    let hidden = rmsNorm(x, this.#p("model.norm.weight") as tf.Tensor1D, c.rms_norm_eps);
    if (options.hiddenOnly) return { logits: hidden, ...(options.returnCache ? { cache } : {}) };
    if (options.lastOnly) {
      // Rows b·T + T-1: the last position of each row.
      hidden = tf.reshape(
        tf.slice(tf.reshape(hidden, [b, t, c.hidden_size]), [0, t - 1, 0], [b, 1, c.hidden_size]),
        [b, c.hidden_size],
      );
    }
    const logits = this.head(hidden);
    return options.returnCache ? { logits, cache } : { logits };
  }

  /**
   * Layer `i` under gradient checkpointing: the forward keeps only the layer's input; the
   * backward runs the layer again under a tape of its own and returns the gradients of the
   * input and of the layer's trainable parameters. Activation memory drops from every
   * layer's intermediates to one `[B·T, D]` input per layer, for one more forward per step.
   */
  #checkpointed<C extends tf.Tensor[]>(
    i: number,
    layer: (x: tf.Tensor2D, consts: C) => tf.Tensor2D,
    x: tf.Tensor2D,
    consts: C,
  ): tf.Tensor2D {
    const prefix = `model.layers.${i}.`;
    const vars = [...this.params].filter(([n, v]) => n.startsWith(prefix) && v.trainable)
      .map(([, v]) => v);
    const f = tf.customGrad(
      // deno-lint-ignore no-explicit-any
      ((...args: any[]) => {
        const save = args[args.length - 1] as tf.GradSaveFunc;
        const input = args[0] as tf.Tensor2D;
        // The forward's own tensors (RoPE rows, mask) are freed when it returns: keep copies.
        save([input, ...consts]);
        return {
          value: layer(input, consts), // not taped: customGrad's forward runs as one kernel
          gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
            // The outer backward has closed its tape; a nested one replaces the engine's
            // record of it, which the outer backward reads when it ends: put it back.
            // deno-lint-ignore no-explicit-any
            const state = (tf.engine() as any).state as { activeTape: unknown };
            const outer = state.activeTape;
            const x0 = tf.variable(saved[0]!, true);
            try {
              const { value, grads } = tf.variableGrads(
                () =>
                  tf.sum(
                    tf.mul(layer(x0 as unknown as tf.Tensor2D, saved.slice(1) as C), dy),
                  ) as tf.Scalar,
                [x0, ...vars],
              );
              value.dispose();
              return [x0, ...vars].map((v) => grads[v.name] ?? tf.zerosLike(v));
            } finally {
              x0.dispose();
              state.activeTape = outer;
            }
          },
        };
      }) as never,
    ) as unknown as (...inputs: tf.Tensor[]) => tf.Tensor2D;
    return f(x, ...vars);
  }

  /**
   * The LM head on final normed hidden states `[M, D]` (what `forward` returns with
   * `hiddenOnly`): logits `[M, V]`, ids beyond the tokenizer masked. Call inside `tf.tidy`.
   */
  head(hidden: tf.Tensor2D): tf.Tensor2D {
    const c = this.config;
    const heads = c.tie_word_embeddings
      ? this.#tiedHead(this.#p("model.embed_tokens.weight") as tf.Tensor2D) // [D, V] in blocks
      : [this.#p("lm_head.weight") as tf.Tensor2D];
    const headFrozen = !(this.params.get(
      c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight",
    )?.trainable ?? true);
    const product = (w: tf.Tensor2D) => headFrozen ? frozenMm(hidden, w) : mm(hidden, w);
    const scores = heads.length === 1
      ? product(heads[0]!)
      : tf.concat(heads.map(product), 1) as tf.Tensor2D; // [M, V]
    return this.#vocabMask ? tf.add(scores, this.#vocabMask) as tf.Tensor2D : scores;
  }
}
