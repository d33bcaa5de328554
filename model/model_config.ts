import { z } from "zod";

/**
 * RoPE scaling as Hugging Face's `rope_scaling` (`rope_parameters` in transformers 5):
 * `linear` divides every inverse frequency by `factor`; `llama3` is Llama 3.1's
 * wavelength-dependent scaling (`_compute_llama3_parameters` in transformers).
 */
export const RopeScalingSchema = z.discriminatedUnion("rope_type", [
  z.object({
    rope_type: z.literal("linear"),
    factor: z.number().positive().describe("s: positions are divided by s"),
  }).strict(),
  z.object({
    rope_type: z.literal("llama3"),
    factor: z.number().positive().describe("s: scale of the low frequencies"),
    low_freq_factor: z.number().positive().describe("Wavelengths above L/low are scaled by 1/s"),
    high_freq_factor: z.number().positive().describe("Wavelengths below L/high are kept"),
    original_max_position_embeddings: z.number().int().positive().describe(
      "L: the pre-training context",
    ),
  }).strict().refine((r) => r.high_freq_factor > r.low_freq_factor, {
    path: ["high_freq_factor"],
    message: "high_freq_factor must be greater than low_freq_factor",
  }),
]);

/** A validated RoPE scaling. */
export type RopeScaling = z.infer<typeof RopeScalingSchema>;

/**
 * Architecture of the Qwen2-shaped decoder-only transformer.
 *
 * Field names follow Hugging Face's `Qwen2Config`/`LlamaConfig` (snake_case in `config.json`),
 * so a real Qwen2/Llama checkpoint's config maps onto this one field by field (see
 * `model/hf.ts`). The one field of our own is `o_proj_bias`.
 */
export const ModelConfigSchema = z.object({
  vocab_size: z.number().int().min(2).describe("V: vocabulary size"),
  hidden_size: z.number().int().min(2).describe("d_model: width of the residual stream"),
  intermediate_size: z.number().int().min(1).describe("d_ff: SwiGLU hidden width"),
  num_hidden_layers: z.number().int().min(1).describe("L: number of decoder blocks"),
  num_attention_heads: z.number().int().min(1).describe("H: query heads"),
  num_key_value_heads: z.number().int().min(1).describe("H_kv: key/value heads (GQA)"),
  head_dim: z.number().int().min(2).optional().describe(
    "d_h: width of one attention head. Default: hidden_size / num_attention_heads",
  ),
  max_position_embeddings: z.number().int().min(1).describe("Longest sequence the model accepts"),
  rope_theta: z.number().positive().default(10000).describe("RoPE base θ"),
  rope_scaling: RopeScalingSchema.nullable().optional().describe(
    "RoPE frequency scaling (linear or llama3). Default: none",
  ),
  rms_norm_eps: z.number().positive().default(1e-6).describe("RMSNorm ε"),
  tie_word_embeddings: z.boolean().default(true).describe("Share the embedding and LM head"),
  attention_bias: z.boolean().default(true).describe("Bias on q/k/v projections (Qwen2)"),
  o_proj_bias: z.boolean().optional().describe(
    "Bias on the attention output projection (Llama with attention_bias: true). Default: false",
  ),
}).strict().superRefine((c, ctx) => {
  if (c.head_dim === undefined && c.hidden_size % c.num_attention_heads !== 0) {
    ctx.addIssue({
      code: "custom",
      path: ["hidden_size"],
      message: `hidden_size must be divisible by num_attention_heads (${c.num_attention_heads})`,
    });
  }
  if (c.num_attention_heads % c.num_key_value_heads !== 0) {
    ctx.addIssue({
      code: "custom",
      path: ["num_key_value_heads"],
      message: `num_attention_heads must be divisible by num_key_value_heads`,
    });
  }
  if (headDim(c) % 2 !== 0) {
    ctx.addIssue({
      code: "custom",
      path: [c.head_dim === undefined ? "hidden_size" : "head_dim"],
      message: "head dim must be even",
    });
  }
});

/** A validated model architecture. */
export type ModelConfig = z.infer<typeof ModelConfigSchema>;

/**
 * Width of one attention head: `head_dim` when given, else `hidden_size / num_attention_heads`.
 */
export function headDim(
  config: Pick<ModelConfig, "hidden_size" | "num_attention_heads" | "head_dim">,
): number {
  return config.head_dim ?? config.hidden_size / config.num_attention_heads;
}

/**
 * RoPE inverse frequencies `[headDim / 2]`, computed as transformers 5 does, in float32
 * arithmetic (`1 / θ^(2i/d)`, then the `linear` or `llama3` scaling of `rope_scaling`), so
 * that rotary angles match a PyTorch model bit for bit in most entries.
 *
 * @example
 * ```ts
 * import { ropeInverseFrequencies } from "./model_config.ts";
 * const f = ropeInverseFrequencies({
 *   hidden_size: 8, num_attention_heads: 2, rope_theta: 10000,
 *   rope_scaling: { rope_type: "linear", factor: 2 },
 * });
 * if (f.length !== 2 || f[0] !== 0.5) throw new Error(`${f}`);
 * ```
 */
export function ropeInverseFrequencies(
  config: Pick<
    ModelConfig,
    "hidden_size" | "num_attention_heads" | "head_dim" | "rope_theta" | "rope_scaling"
  >,
): Float32Array {
  const f = Math.fround;
  const dim = headDim(config);
  const half = dim / 2;
  const inv = new Float32Array(half);
  // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all float32.
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(Math.pow(config.rope_theta, f((2 * i) / dim))));
  const scaling = config.rope_scaling;
  if (!scaling) return inv;
  switch (scaling.rope_type) {
    case "linear":
      for (let i = 0; i < half; i++) inv[i] = f(inv[i]! / scaling.factor);
      return inv;
    case "llama3": {
      const { factor, low_freq_factor: low, high_freq_factor: high } = scaling;
      const oldLen = scaling.original_max_position_embeddings;
      const lowFreqWavelen = oldLen / low, highFreqWavelen = oldLen / high;
      const twoPi = f(2 * Math.PI);
      for (let i = 0; i < half; i++) {
        const x = inv[i]!;
        // torch evaluates `scalar / tensor` as `reciprocal(tensor) * scalar`.
        const wavelen = f(f(1 / x) * twoPi);
        const scaled = wavelen > lowFreqWavelen ? f(x / factor) : x;
        if (wavelen < highFreqWavelen || wavelen > lowFreqWavelen) {
          inv[i] = scaled;
          continue;
        }
        const smooth = f(f(f(f(1 / wavelen) * oldLen) - low) / (high - low));
        inv[i] = f(f(f(f(1 - smooth) * scaled) / factor) + f(smooth * scaled));
      }
      return inv;
    }
    default:
      throw new RangeError(
        `Unknown RoPE scaling type: current value is "${
          (scaling as { rope_type: string }).rope_type
        }"`,
      );
  }
}

/** The embedded default: small enough to train from scratch on 2 CPU cores in minutes. */
export const TINY_MODEL_CONFIG: ModelConfig = {
  vocab_size: 101,
  hidden_size: 64,
  intermediate_size: 192,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 256,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
  attention_bias: true,
};

/**
 * Qwen/Qwen2.5-0.5B-Instruct's shape (its `config.json` in our field names; 494M parameters):
 * what `deno task test:slow` and the memory benchmark build with random weights.
 */
export const QWEN25_05B_CONFIG: ModelConfig = {
  vocab_size: 151936,
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  max_position_embeddings: 32768,
  rope_theta: 1000000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
  attention_bias: true,
};
