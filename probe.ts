import * as tf from "@tensorflow/tfjs";
import { initBackend } from "./model/backend.ts";
import { Transformer } from "./model/transformer.ts";
import { batchLogprobs, generate } from "./model/sampling.ts";
import { Rng } from "./data/rng.ts";
await initBackend(Deno.args[0] as "wasm");
const cfg = { vocab_size: 101, hidden_size: +Deno.args[1]!, intermediate_size: +Deno.args[2]!, num_hidden_layers: +Deno.args[3]!, num_attention_heads: +(Deno.args[5] ?? 4), num_key_value_heads: +(Deno.args[6] ?? 2), max_position_embeddings: 256, rope_theta: 10000, rms_norm_eps: 1e-6, tie_word_embeddings: true, attention_bias: true };
const m = Transformer.create(cfg, { seed: 1 });
console.log("params", m.numParameters);
const N = 64, T = +Deno.args[4]!;
const ids = new Int32Array(N * T).map((_, i) => (i * 7) % 101);
const batch = { n: N, t: T, ids, targets: ids, mask: new Float32Array(N * T).fill(1) };
const vars = [...m.params.values()];
for (let it = 0; it < 3; it++) {
  const t0 = performance.now();
  const { value, grads } = tf.variableGrads(() => tf.mean(batchLogprobs(m, batch).logp) as tf.Scalar, vars);
  await value.data();
  tf.dispose([value, ...Object.values(grads)]);
  const dt = performance.now() - t0;
  console.log(`train step N=${N} T=${T}: ${dt.toFixed(0)} ms, ${(N * T / dt * 1000).toFixed(0)} tok/s`);
}
const prompts = Array.from({ length: 64 }, (_, i) => Array.from({ length: 110 + (i % 10) }, (_, j) => (i + j) % 101));
for (let it = 0; it < 2; it++) {
  const t0 = performance.now();
  const g = await generate(m, prompts, { maxNewTokens: 30, stopIds: [], padId: 0, rng: new Rng(1) });
  const dt = performance.now() - t0;
  console.log(`sample 64x30: ${dt.toFixed(0)} ms, ${(64 * 30 / dt * 1000).toFixed(0)} tok/s`, tf.memory().numTensors);
}
