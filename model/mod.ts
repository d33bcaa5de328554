/**
 * The policy model: a Qwen2-shaped transformer in TensorFlow.js, its fast-path ops,
 * sampling with a KV cache, tokenizers, checkpoints, the optimizer and backends.
 *
 * @module
 */
export * from "./backend.ts";
export * from "./char_tokenizer.ts";
export * from "./checkpoint.ts";
export * from "./hf.ts";
export * from "./hf_tokenizer.ts";
export * from "./lora.ts";
export * from "./model_config.ts";
export * from "./ops.ts";
export * from "./optimizer.ts";
export * from "./safetensors.ts";
export * from "./sampling.ts";
export * from "./transformer.ts";
