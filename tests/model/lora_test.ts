import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../model/backend.ts";
import { Transformer } from "../../model/transformer.ts";
import { attachLora, loadLoraAdapter, saveLoraAdapter } from "../../model/lora.ts";
import { AdamW } from "../../model/optimizer.ts";
import { completionLogprobs, generate } from "../../model/sampling.ts";
import { Rng } from "../../data/rng.ts";
import { maxAbsDiff, TINY_TEST_CONFIG } from "../helpers.ts";

await initBackend("wasm");

const IDS = [[3, 9, 14, 2, 7, 11]];

function logits(model: Transformer): Float32Array {
  return tf.tidy(() =>
    model.forward(tf.tensor2d(IDS, [1, IDS[0]!.length], "int32")).logits.dataSync() as Float32Array
  );
}

/** Adapters with random B (a fresh one is zero), seeded. */
function randomizeB(model: Transformer, seed: number): void {
  const rng = new Rng(seed);
  for (const [name, v] of model.params) {
    if (!name.endsWith("lora_B.weight")) continue;
    const data = Float32Array.from({ length: v.size }, () => (rng.next() - 0.5) * 0.2);
    v.assign(tf.tensor(data, v.shape));
  }
}

Deno.test("a fresh adapter changes nothing; a trained one equals the merged weights W + (α/r)·B·A", async () => {
  const base = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
  const before = logits(base);
  const model = base.clone();
  attachLora(model, { r: 4, alpha: 8, seed: 2 });
  assert.deepEqual(logits(model), before);

  randomizeB(model, 3);
  const adapted = logits(model);
  assert.ok(maxAbsDiff(adapted, before) > 1e-3, "the adapter moves the logits");
  // Merge by hand in Hugging Face layout: W[out, in] += 2 · B[out, r] · A[r, in].
  const hf = Object.fromEntries([...(await base.exportWeights())].map(([k, v]) => [k, v.data]));
  const exported = await model.exportWeights();
  for (const [name, w] of exported) {
    if (!name.endsWith(".lora_A.weight")) continue;
    const target = name.replace(".lora_A.weight", ".weight");
    const a = tf.tensor2d(w.data, w.shape as [number, number]);
    const bw = exported.get(name.replace("lora_A", "lora_B"))!;
    const b = tf.tensor2d(bw.data, bw.shape as [number, number]);
    const delta = tf.mul(tf.matMul(b, a), 2).dataSync();
    hf[target] = hf[target]!.map((x, i) => x + delta[i]!);
    tf.dispose([a, b]);
  }
  const merged = base.clone();
  merged.loadWeights(hf);
  assert.ok(maxAbsDiff(logits(merged), adapted) < 1e-5);
  for (const m of [base, model, merged]) m.dispose();
});

Deno.test("saveLoraAdapter() then loadLoraAdapter() on a fresh base gives identical outputs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lora-" });
  try {
    const model = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
    attachLora(model, { r: 2, alpha: 4, targetModules: ["q_proj", "v_proj", "down_proj"] });
    randomizeB(model, 4);
    await saveLoraAdapter(`${dir}/adapter`, model, { baseModelNameOrPath: "tiny" });
    const config = JSON.parse(await Deno.readTextFile(`${dir}/adapter/adapter_config.json`));
    assert.equal(config.peft_type, "LORA");
    assert.equal(config.r, 2);
    assert.equal(config.lora_alpha, 4);
    assert.deepEqual(config.target_modules, ["q_proj", "v_proj", "down_proj"]);

    const fresh = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
    await loadLoraAdapter(`${dir}/adapter`, fresh);
    assert.deepEqual(logits(fresh), logits(model));
    const a = await model.exportWeights(), b = await fresh.exportWeights();
    for (const [name, w] of a) assert.deepEqual(b.get(name)!.data, w.data, name);
    // Clone and the weight sync of the Sampler keep the adapters.
    const copy = fresh.clone({ trainable: false });
    assert.deepEqual(copy.lora, fresh.lora);
    assert.deepEqual(logits(copy), logits(model));
    copy.loadWeights(Object.fromEntries([...a].map(([k, v]) => [k, v.data])));
    assert.deepEqual(logits(copy), logits(model));
    for (const m of [model, fresh, copy]) m.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("under LoRA only the adapters get gradients and change; the base stays frozen", () => {
  const model = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
  attachLora(model, { r: 4, seed: 5 });
  const trainable = model.trainableParams;
  assert.equal(trainable.size, TINY_TEST_CONFIG.num_hidden_layers * 7 * 2);
  assert.ok([...trainable.keys()].every((n) => /\.lora_[AB]\.weight$/.test(n)));
  const baseBefore = new Map(
    [...model.params].filter(([n]) => !n.includes("lora_")).map(([n, v]) => [n, v.dataSync()]),
  );
  const optimizer = new AdamW(trainable, { weightDecay: 0 });
  for (let step = 0; step < 3; step++) {
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => {
        const out = model.forward(tf.tensor2d(IDS, [1, IDS[0]!.length], "int32")).logits;
        return tf.mean(tf.square(out)) as tf.Scalar;
      }, [...trainable.values()]);
      const byId = new Map([...trainable].map(([n, v]) => [v.name, n]));
      const named: Record<string, tf.Tensor> = {};
      for (const [id, g] of Object.entries(grads)) named[byId.get(id)!] = g;
      optimizer.step(named, 1e-2);
    });
  }
  for (const [name, data] of baseBefore) {
    assert.deepEqual(model.params.get(name)!.dataSync(), data, `${name} is frozen`);
  }
  const b = model.params.get("model.layers.0.self_attn.q_proj.lora_B.weight")!;
  assert.ok(tf.max(tf.abs(b)).dataSync()[0]! > 0, "B moved from zero");
  optimizer.dispose();
  model.dispose();
});

Deno.test("sampling with an adapter: KV-cache log-probs equal teacher-forced ones", async () => {
  const model = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
  attachLora(model, { r: 4 });
  randomizeB(model, 6);
  const prompts = [[3, 9, 14], [5, 6, 7, 8, 2]];
  const gens = await generate(model, prompts, {
    maxNewTokens: 8,
    temperature: 1,
    stopIds: [],
    padId: 0,
    rng: new Rng(9),
  });
  const forced = await completionLogprobs(model, prompts, gens.map((g) => g.tokens), { padId: 0 });
  gens.forEach((g, r) => assert.ok(maxAbsDiff(g.logprobs, forced[r]!) < 1e-4));
  model.dispose();
});

Deno.test("attachLora() and loadLoraAdapter() name what is wrong", async () => {
  const model = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
  assert.throws(
    () => attachLora(model, { targetModules: ["qkv_proj"] }),
    /target module "qkv_proj"/,
  );
  assert.throws(() => attachLora(model, { r: 0 }), /"r" must be an integer >= 1/);
  const dir = await Deno.makeTempDir({ prefix: "lora-bad-" });
  try {
    const donor = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
    attachLora(donor, { r: 2, targetModules: ["q_proj"] });
    await saveLoraAdapter(dir, donor);
    const config = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
    await Deno.writeTextFile(
      `${dir}/adapter_config.json`,
      JSON.stringify({ ...config, use_dora: true }),
    );
    await assert.rejects(
      () => loadLoraAdapter(dir, Transformer.create(TINY_TEST_CONFIG, { seed: 1 })),
      /field "use_dora" is not supported: current value is true/,
    );
    await Deno.writeTextFile(`${dir}/adapter_config.json`, JSON.stringify({ ...config, r: 3 }));
    await assert.rejects(
      () => loadLoraAdapter(dir, Transformer.create(TINY_TEST_CONFIG, { seed: 1 })),
      /tensor "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight" must have shape \[3,/,
    );
    donor.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
    model.dispose();
  }
});
