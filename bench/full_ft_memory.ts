/**
 * `deno run -A bench/full_ft_memory.ts [backend] [layers]`: the memory of full fine-tuning steps
 * of a Qwen2.5-0.5B-shaped model cut to `layers` layers (its 151,936-token tied embedding kept),
 * with the project's one gradient step (two micro-batches accumulated, clipped, AdamW), printing
 * the process's resident memory, V8's heap and external memory, and tfjs' live tensor bytes
 * after each phase. `TF_ENABLE_ONEDNN_OPTS=0` in the environment turns TensorFlow's oneDNN ops
 * off (see docs/tensorflow.md).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../model/backend.ts";
import { Transformer } from "../model/transformer.ts";
import { QWEN25_05B_CONFIG } from "../model/model_config.ts";
import { AdamW } from "../model/optimizer.ts";
import { GradientStep } from "../model/gradient_step.ts";
import { batchLogprobs, packBatch } from "../model/sampling.ts";
await initBackend((Deno.args[0] ?? "tensorflow") as "tensorflow");
const L = Number(Deno.args[1] ?? 4);
const mb = (x: number) => (x / 2 ** 20).toFixed(0);
const rss = (what: string) => {
  const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number };
  const u = Deno.memoryUsage();
  console.log(
    `${what}: rss ${mb(u.rss)} MiB, heap ${mb(u.heapUsed)} ext ${mb(u.external)}, tf bytes ${
      mb(m.numBytes)
    } MiB, tensors ${m.numTensors}`,
  );
};
rss("start");
const model = Transformer.create({ ...QWEN25_05B_CONFIG, num_hidden_layers: L }, { seed: 0 });
rss(`model ${model.numParameters} params (${mb(model.numParameters * 4)} MiB f32)`);
const opt = new AdamW(model.params, { weightDecay: 0.01 });
const step = new GradientStep(model.params, opt, { maxGradNorm: 1 });
const prompts = [Array.from({ length: 60 }, (_, i) => 5 + i)];
const completions = [Array.from({ length: 16 }, (_, i) => 100 + i)];
const batch = packBatch(prompts, completions, 0);
for (let i = 0; i < 2; i++) {
  const v = step.accumulate(() => tf.neg(tf.mean(batchLogprobs(model, batch).logp)) as tf.Scalar);
  v.dispose();
  rss(`after micro-batch ${i + 1}`);
}
await step.apply(() => 1e-5);
rss("after apply (clip + AdamW)");
const v = step.accumulate(() => tf.neg(tf.mean(batchLogprobs(model, batch).logp)) as tf.Scalar);
v.dispose();
await step.apply(() => 1e-5);
rss("after a second step");
Deno.exit(0);
