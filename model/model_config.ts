import { z } from "zod";

/**
 * Architecture of the Qwen2-shaped decoder-only transformer.
 *
 * Field names follow Hugging Face's `Qwen2Config` (snake_case in `config.json`), so a real
 * Qwen2/Llama checkpoint's config maps onto this one field by field.
 */
export const ModelConfigSchema = z.object({
  vocab_size: z.number().int().min(2).describe("V: vocabulary size"),
  hidden_size: z.number().int().min(2).describe("d_model: width of the residual stream"),
  intermediate_size: z.number().int().min(1).describe("d_ff: SwiGLU hidden width"),
  num_hidden_layers: z.number().int().min(1).describe("L: number of decoder blocks"),
  num_attention_heads: z.number().int().min(1).describe("H: query heads"),
  num_key_value_heads: z.number().int().min(1).describe("H_kv: key/value heads (GQA)"),
  max_position_embeddings: z.number().int().min(1).describe("Longest sequence the model accepts"),
  rope_theta: z.number().positive().default(10000).describe("RoPE base θ"),
  rms_norm_eps: z.number().positive().default(1e-6).describe("RMSNorm ε"),
  tie_word_embeddings: z.boolean().default(true).describe("Share the embedding and LM head"),
  attention_bias: z.boolean().default(true).describe("Bias on q/k/v projections (Qwen2)"),
}).strict().superRefine((c, ctx) => {
  if (c.hidden_size % c.num_attention_heads !== 0) {
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
  if ((c.hidden_size / c.num_attention_heads) % 2 !== 0) {
    ctx.addIssue({ code: "custom", path: ["hidden_size"], message: "head dim must be even" });
  }
});

/** A validated model architecture. */
export type ModelConfig = z.infer<typeof ModelConfigSchema>;

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
