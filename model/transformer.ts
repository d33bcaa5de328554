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
import { embed, mm, recordingGradients, rmsNorm, rotateHalfMatrix } from "./ops.ts";
import { Rng } from "../util/rng.ts";
import { fitPackedWeightCache, packedWeightCache } from "./wasm_kernels.ts";
import { block, type LayerContext, type LayerWeights } from "./block.ts";
import { checkpointed } from "./gradient_checkpointing.ts";
import { cachedLength, type KvCache } from "./kv_cache.ts";
import { frozenMm, type Projection } from "./projection.ts";

export type { KvCache } from "./kv_cache.ts";

/**
 * Tokens per block of a frozen tied head when the packed-weights cache is off
 * (`Transformer`'s `#tiedHead`).
 */
export const HEAD_BLOCK_ROWS = 16384;

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
    const past = options.past;
    const pastLen = cachedLength(past);
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

    const table = this.#p("model.embed_tokens.weight") as tf.Tensor2D;
    let x = embed(tf.reshape(ids, [b * t]) as tf.Tensor1D, table); // [B·T, D]

    const shape = {
      b,
      t,
      h: c.num_attention_heads,
      hkv: c.num_key_value_heads,
      hd,
      eps: c.rms_norm_eps,
      rot: this.#rot,
    };
    /** The tensors a layer reads besides its input and weights (a checkpointed layer keeps them). */
    type LayerConsts = [cos: tf.Tensor, sin: tf.Tensor, mask: tf.Tensor];
    const consts: LayerConsts = [cos, sin, mask];
    const cache: KvCache[] = [];
    // Without a tape each layer runs in a tidy of its own, so its activations are freed before
    // the next layer runs instead of all layers' living until the forward returns (1.4 GB in a
    // 150-token prefill of two rows on Qwen2.5-0.5B).
    const tidyLayers = !recordingGradients();
    const checkpointing = !tidyLayers && this.gradientCheckpointing && !options.returnCache &&
      !past;
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const w = this.#layerWeights(i);
      const ctx = ([cs, sn, m]: LayerConsts): LayerContext => ({
        ...shape,
        cos: cs,
        sin: sn,
        mask: m,
        past: past?.[i],
      });
      // Gradient checkpointing (no cache read or returned): the backward reruns the block.
      if (checkpointing) {
        const params = this.#layerParams(i);
        x = checkpointed((xIn, lc: LayerConsts) => block(xIn, w, ctx(lc)).x, x, { consts, params });
        continue;
      }
      const xIn = x;
      const out = tidyLayers
        ? tf.tidy(() => block(xIn, w, ctx(consts)))
        : block(xIn, w, ctx(consts));
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

  /** Layer `i`'s weights, each projection with its LoRA adapter where one is attached. */
  #layerWeights(i: number): LayerWeights {
    const c = this.config;
    const p = `model.layers.${i}`;
    return {
      inputNorm: this.#p(`${p}.input_layernorm.weight`) as tf.Tensor1D,
      q: this.#projection(`${p}.self_attn.q_proj`, c.attention_bias),
      k: this.#projection(`${p}.self_attn.k_proj`, c.attention_bias),
      v: this.#projection(`${p}.self_attn.v_proj`, c.attention_bias),
      o: this.#projection(`${p}.self_attn.o_proj`, c.o_proj_bias ?? false),
      postNorm: this.#p(`${p}.post_attention_layernorm.weight`) as tf.Tensor1D,
      gate: this.#projection(`${p}.mlp.gate_proj`, false),
      up: this.#projection(`${p}.mlp.up_proj`, false),
      down: this.#projection(`${p}.mlp.down_proj`, false),
    };
  }

  /**
   * The projection `name` (`model.layers.0.self_attn.q_proj`): its weight, its bias when it
   * has one, and its adapter `(α/r)·x·Aᵀ·Bᵀ` when LoRA is attached to it.
   */
  #projection(name: string, hasBias: boolean): Projection {
    const weight = this.#p(`${name}.weight`) as tf.Tensor2D;
    const bias = hasBias ? this.#p(`${name}.bias`) as tf.Tensor1D : undefined;
    const lora = this.lora;
    if (!lora || !this.params.has(`${name}.lora_A.weight`)) return { weight, bias };
    return {
      weight,
      bias,
      lora: {
        a: this.#p(`${name}.lora_A.weight`) as tf.Tensor2D,
        b: this.#p(`${name}.lora_B.weight`) as tf.Tensor2D,
        scale: lora.alpha / lora.r,
      },
    };
  }

  /** Layer `i`'s trainable parameters: what a checkpointed layer's backward differentiates. */
  #layerParams(i: number): tf.Variable[] {
    const prefix = `model.layers.${i}.`;
    return [...this.params].filter(([n, v]) => n.startsWith(prefix) && v.trainable)
      .map(([, v]) => v);
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
