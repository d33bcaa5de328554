/**
 * One decoder layer of the Qwen2-shaped `Transformer`, written like nanoGPT's `model.py`:
 * {@link attention}, {@link mlp}, and the pre-norm residual {@link block} around them.
 *
 * Activations stay flattened to `[B·T, ·]` rows between the units, so every projection is a
 * plain 2-D matmul on the fast wasm path. Where the weights come from (LoRA adapters included)
 * is the caller's business: a unit gets them as {@link Projection}s.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { appendToCache, type KvCache } from "./kv_cache.ts";
import { mm, rmsNorm, silu } from "./ops.ts";
import { project, type Projection } from "./projection.ts";

/** One layer's weights (Hugging Face's `model.layers.<i>.*`). */
export interface LayerWeights {
  /** `input_layernorm.weight [D]`. */
  inputNorm: tf.Tensor1D;
  /** `self_attn.{q,k,v,o}_proj`. */
  q: Projection;
  k: Projection;
  v: Projection;
  o: Projection;
  /** `post_attention_layernorm.weight [D]`. */
  postNorm: tf.Tensor1D;
  /** `mlp.{gate,up,down}_proj`. */
  gate: Projection;
  up: Projection;
  down: Projection;
}

/** What a layer reads besides its input and weights. */
export interface LayerContext {
  /** Batch size B. */
  b: number;
  /** Tokens per row in this forward, T. */
  t: number;
  /** Query heads H. */
  h: number;
  /** Key/value heads H_kv (each shared by `H / H_kv` query heads). */
  hkv: number;
  /** Head width. */
  hd: number;
  /** RMSNorm ε. */
  eps: number;
  /** `rotateHalfMatrix(hd)`. */
  rot: tf.Tensor2D;
  /** RoPE rows, broadcastable to `[B, T, heads, hd]`. */
  cos: tf.Tensor;
  sin: tf.Tensor;
  /** Additive attention mask broadcastable to `[B, H_kv, g, T, S]`. */
  mask: tf.Tensor;
  /** This layer's keys and values from earlier steps. */
  past?: KvCache | undefined;
}

/** Rotary position embedding on projected heads `[B·T, heads·hd]`: `y·cos + rotate_half(y)·sin`. */
function rope(y: tf.Tensor2D, heads: number, ctx: LayerContext): tf.Tensor4D {
  const { b, t, hd } = ctx;
  const y4 = tf.reshape(y, [b, t, heads, hd]);
  const rotated = tf.reshape(
    mm(tf.reshape(y, [b * t * heads, hd]) as tf.Tensor2D, ctx.rot),
    [b, t, heads, hd],
  );
  return tf.add(tf.mul(y4, ctx.cos), tf.mul(rotated, ctx.sin)) as tf.Tensor4D; // [B, T, heads, hd]
}

/**
 * `softmax(q·kᵀ/√hd + mask)·v` with grouped-query heads: the `g = H / H_kv` query heads of each
 * kv head are stacked into one `[g·T, hd]` matrix, so each kv head takes two batched matmuls.
 * `q` is `[B, T, H, hd]`, `kv` `[B, H_kv, S, hd]` each; returns `[B·T, H·hd]`.
 */
function scaledDotProductAttention(
  q: tf.Tensor4D,
  kv: KvCache,
  ctx: LayerContext,
): tf.Tensor2D {
  const { b, t, h, hkv, hd } = ctx;
  const g = h / hkv, s = kv.k.shape[2];
  // Query heads grouped under their kv head: [B, T, Hkv, g, hd] -> [B·Hkv, g·T, hd]
  const qg = tf.reshape(
    tf.transpose(tf.reshape(q, [b, t, hkv, g, hd]), [0, 2, 3, 1, 4]),
    [b * hkv, g * t, hd],
  );
  const scores = tf.mul(
    tf.matMul(qg, tf.reshape(kv.k, [b * hkv, s, hd]), false, true),
    1 / Math.sqrt(hd),
  ); // [B·Hkv, g·T, S]
  const masked = tf.add(tf.reshape(scores, [b, hkv, g, t, s]), ctx.mask);
  const probs = tf.reshape(tf.softmax(masked, -1), [b * hkv, g * t, s]);
  const y = tf.matMul(probs, tf.reshape(kv.v, [b * hkv, s, hd])); // [B·Hkv, g·T, hd]
  return tf.reshape(
    tf.transpose(tf.reshape(y, [b, hkv, g, t, hd]), [0, 3, 1, 2, 4]),
    [b * t, h * hd],
  ) as tf.Tensor2D; // [B·T, H·hd]
}

/**
 * Causal self-attention on normed activations `x [B·T, D]`: q/k/v projections, RoPE on q and
 * k, this step's keys and values appended to the cache, attention, output projection.
 * Returns `y [B·T, D]` and the layer's keys and values (cache included).
 */
export function attention(
  x: tf.Tensor2D,
  w: LayerWeights,
  ctx: LayerContext,
): { y: tf.Tensor2D; kv: KvCache } {
  const { b, t, h, hkv, hd } = ctx;
  const q = rope(project(x, w.q), h, ctx);
  const k = rope(project(x, w.k), hkv, ctx);
  const v = tf.reshape(project(x, w.v), [b, t, hkv, hd]) as tf.Tensor4D;
  const kv = appendToCache(ctx.past, { k, v });
  const y = project(scaledDotProductAttention(q, kv, ctx), w.o);
  return { y, kv };
}

/** SwiGLU MLP on normed activations `x [B·T, D]`: `down(silu(gate(x)) · up(x))`. */
export function mlp(x: tf.Tensor2D, w: LayerWeights): tf.Tensor2D {
  const gated = tf.mul(silu(project(x, w.gate)), project(x, w.up)) as tf.Tensor2D;
  return project(gated, w.down);
}

/**
 * One pre-norm decoder layer on `x [B·T, D]`:
 * `x = x + attn(norm1(x))`, then `x = x + mlp(norm2(x))`.
 * Returns the new `x` and the layer's keys and values (cache included).
 */
export function block(
  x: tf.Tensor2D,
  w: LayerWeights,
  ctx: LayerContext,
): { x: tf.Tensor2D; k: tf.Tensor4D; v: tf.Tensor4D } {
  const attn = attention(rmsNorm(x, w.inputNorm, ctx.eps), w, ctx);
  x = tf.add(x, attn.y);
  x = tf.add(x, mlp(rmsNorm(x, w.postNorm, ctx.eps), w));
  return { x, k: attn.kv.k, v: attn.kv.v };
}
