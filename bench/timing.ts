/**
 * Timing helpers, the optimizer step and the larger model preset shared by the benchmark scripts.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { AdamW } from "../model/optimizer.ts";
import { batchLogprobs, type TokenBatch } from "../model/sampling.ts";
import type { Transformer } from "../model/transformer.ts";
import { type ModelConfig, TINY_MODEL_CONFIG } from "../model/model_config.ts";

/** The benchmarks' larger preset: d_model 512, 8 layers, 8 heads (4 key/value heads), 25.2M parameters. */
export const LARGE_MODEL_CONFIG: ModelConfig = {
  ...TINY_MODEL_CONFIG,
  hidden_size: 512,
  intermediate_size: 1536,
  num_hidden_layers: 8,
  num_attention_heads: 8,
  num_key_value_heads: 4,
};

/** The median of `xs` (the upper one for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median wall time of `repeats` runs of `f` in seconds, after one warm-up run. */
export async function timeIt(f: () => Promise<void>, repeats: number): Promise<number> {
  await f();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await f();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

/**
 * One Learner-like optimizer step of `model` on a packed `batch` (forward, `-mean log π`,
 * backward, AdamW at 1e-4), read back: what the learner benchmarks time. The optimizer is the
 * caller's (and disposed by it).
 */
export function optimizerStep(
  model: Transformer,
  batch: TokenBatch,
  optimizer: AdamW,
): () => Promise<void> {
  const vars = [...model.params.values()];
  const nameOf = new Map([...model.params].map(([name, v]) => [v.name, name]));
  return async () => {
    const loss = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () => tf.neg(tf.mean(batchLogprobs(model, batch).logp)) as tf.Scalar,
        vars,
      );
      const named: Record<string, tf.Tensor> = {};
      for (const [id, g] of Object.entries(grads)) named[nameOf.get(id)!] = g;
      optimizer.step(named, 1e-4);
      return value;
    });
    await loss.data();
    loss.dispose();
  };
}
