/**
 * Tests of model/lora.ts: the adapted forward against merged weights, save/load round trips,
 * frozen base weights under gradients and AdamW, KV-cache sampling, and PEFT's own logits
 * (tests/fixtures/hf/lora/, written by tools/lora_golden.py).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../model/backend.ts";
import { loadHfModel } from "../../model/hf.ts";
import { Transformer } from "../../model/transformer.ts";
import {
  attachLora,
  hasLoraAdapter,
  loadLoraAdapter,
  mergeLora,
  saveLoraAdapter,
} from "../../model/lora.ts";
import { AdamW } from "../../model/optimizer.ts";
import { completionLogprobs, generate } from "../../model/sampling.ts";
import { Rng } from "../../util/rng.ts";
import { maxAbsDiff, TINY_TEST_CONFIG } from "../helpers.ts";

await initBackend("wasm");

const FIXTURES = new URL("../fixtures/hf/", import.meta.url).pathname;
const IDS = [[3, 9, 14, 2, 7, 11], [5, 1, 8, 13, 4, 6]];
const IS_ADAPTER = /\.lora_[AB]\.weight$/;

function logits(model: Transformer, ids: number[][] = IDS): Float32Array {
  return tf.tidy(() =>
    model.forward(tf.tensor2d(ids, [ids.length, ids[0]!.length], "int32")).logits
      .dataSync() as Float32Array
  );
}

/** Sets every adapter tensor (A and B) to seeded random values (a fresh B is zero). */
function randomizeAdapters(model: Transformer, seed: number): void {
  const rng = new Rng(seed);
  for (const [name, v] of model.params) {
    if (!IS_ADAPTER.test(name)) continue;
    const data = Float32Array.from({ length: v.size }, () => 0.3 * rng.normal());
    v.assign(tf.tensor(data, v.shape));
  }
}

function hostWeights(weights: Map<string, { data: Float32Array }>): Record<string, Float32Array> {
  return Object.fromEntries([...weights].map(([k, v]) => [k, v.data]));
}

/** The adapted model's gradient of a fixed loss, by parameter name. */
function adapterGrads(model: Transformer): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  tf.tidy(() => {
    const trainable = model.trainableParams;
    const { grads } = tf.variableGrads(() => {
      const out = model.forward(tf.tensor2d(IDS, [IDS.length, IDS[0]!.length], "int32")).logits;
      return tf.mean(tf.square(out)) as tf.Scalar;
    }, [...trainable.values()]);
    const byId = new Map([...trainable].map(([n, v]) => [v.name, n]));
    for (const [id, g] of Object.entries(grads)) {
      out.set(byId.get(id)!, g.dataSync() as Float32Array);
    }
  });
  return out;
}

Deno.test("attachLora() leaves the logits unchanged while B is zero", () => {
  const model = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
  const before = logits(model);
  const settings = attachLora(model, { r: 4, alpha: 8, seed: 2 });
  assert.deepEqual(settings, {
    r: 4,
    alpha: 8,
    targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
  });
  assert.deepEqual(logits(model), before);
  // A is Kaiming-uniform as PEFT's: |A| <= 1/√in, B [out, r] = 0, HF layout on export.
  const a = model.params.get("model.layers.0.mlp.down_proj.lora_A.weight")!;
  assert.deepEqual(a.shape, [TINY_TEST_CONFIG.intermediate_size, 4]); // stored Aᵀ [in, r]
  const bound = 1 / Math.sqrt(TINY_TEST_CONFIG.intermediate_size);
  const aData = a.dataSync();
  assert.ok(aData.every((x) => Math.abs(x) <= bound) && aData.some((x) => Math.abs(x) > bound / 2));
  const b = model.params.get("model.layers.0.mlp.down_proj.lora_B.weight")!;
  assert.ok(b.dataSync().every((x) => x === 0));
  model.dispose();
});

Deno.test("attachLora() with a non-zero B computes the merged weights W + (α/r)·B·A", async () => {
  const base = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
  const before = logits(base);
  const model = base.clone();
  attachLora(model, { r: 3, alpha: 7.5, seed: 2 });
  randomizeAdapters(model, 3);
  const adapted = logits(model);
  assert.ok(maxAbsDiff(adapted, before) > 0.05, "the adapter moves the logits");
  // Merge by hand in Hugging Face layout: W[out, in] += 2.5 · B[out, r] · A[r, in].
  const hf = hostWeights(await base.exportWeights());
  const exported = await model.exportWeights();
  let adapted7 = 0;
  for (const [name, a] of exported) {
    if (!name.endsWith(".lora_A.weight")) continue;
    adapted7++;
    const target = name.replace(".lora_A.weight", ".weight");
    const bw = exported.get(name.replace("lora_A", "lora_B"))!;
    assert.deepEqual(a.shape, [3, hf[target]!.length / bw.shape[0]!]); // A [r, in]
    const delta = tf.tidy(() =>
      tf.mul(
        tf.matMul(
          tf.tensor2d(bw.data, bw.shape as [number, number]),
          tf.tensor2d(a.data, a.shape as [number, number]),
        ),
        7.5 / 3,
      ).dataSync()
    );
    hf[target] = hf[target]!.map((x, i) => x + delta[i]!);
  }
  assert.equal(adapted7, 7 * TINY_TEST_CONFIG.num_hidden_layers);
  const merged = base.clone();
  merged.loadWeights(hf);
  assert.ok(maxAbsDiff(logits(merged), adapted) < 1e-5);

  // mergeLora() folds the same update into the model itself and drops the adapters.
  mergeLora(model);
  assert.equal(model.lora, undefined);
  assert.ok([...model.params.keys()].every((n) => !IS_ADAPTER.test(n)));
  assert.equal(model.trainableParams.size, base.params.size);
  assert.ok(maxAbsDiff(logits(model), adapted) < 1e-5);
  assert.throws(() => mergeLora(model), /Cannot merge LoRA: the model has no adapters/);
  for (const m of [base, model, merged]) m.dispose();
});

Deno.test("saveLoraAdapter() then loadLoraAdapter() on a fresh base gives identical logits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lora-" });
  try {
    const model = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
    attachLora(model, { r: 2, alpha: 4, targetModules: ["q_proj", "v_proj", "down_proj"] });
    randomizeAdapters(model, 4);
    await Deno.mkdir(`${dir}/adapter`);
    await Deno.writeTextFile(`${dir}/adapter/stale.txt`, "replaced");
    await saveLoraAdapter(`${dir}/adapter`, model, { baseModelNameOrPath: "Qwen/Qwen2.5-0.5B" });
    assert.deepEqual(
      [...Deno.readDirSync(`${dir}/adapter`)].map((e) => e.name).sort(),
      ["adapter_config.json", "adapter_model.safetensors"],
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["adapter"]);
    assert.ok(await hasLoraAdapter(`${dir}/adapter`));
    assert.ok(!(await hasLoraAdapter(dir)));
    const config = JSON.parse(await Deno.readTextFile(`${dir}/adapter/adapter_config.json`));
    assert.equal(config.peft_type, "LORA");
    assert.equal(config.task_type, "CAUSAL_LM");
    assert.equal(config.base_model_name_or_path, "Qwen/Qwen2.5-0.5B");
    assert.equal(config.r, 2);
    assert.equal(config.lora_alpha, 4);
    assert.equal(config.lora_dropout, 0);
    assert.equal(config.bias, "none");
    assert.equal(config.fan_in_fan_out, false);
    assert.deepEqual(config.target_modules, ["q_proj", "v_proj", "down_proj"]);

    const fresh = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
    await loadLoraAdapter(`${dir}/adapter`, fresh);
    assert.deepEqual(fresh.lora, model.lora);
    assert.deepEqual(logits(fresh), logits(model));
    const a = await model.exportWeights(), b = await fresh.exportWeights();
    assert.deepEqual([...b.keys()], [...a.keys()]);
    for (const [name, w] of a) {
      assert.deepEqual(b.get(name)!.data, w.data, name);
      assert.deepEqual(b.get(name)!.shape, w.shape, name);
    }
    assert.deepEqual(
      [...fresh.trainableParams.keys()],
      [...model.trainableParams.keys()],
      "the loaded adapters train, the base stays frozen",
    );
    for (const m of [model, fresh]) m.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Transformer.clone(), exportWeights() and loadWeights() carry the adapters (weight sync)", async () => {
  const learner = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
  attachLora(learner, { r: 4, seed: 7 });
  const sampler = learner.clone({ trainable: false });
  assert.deepEqual(sampler.lora, learner.lora);
  assert.notEqual(sampler.lora, learner.lora, "a copy, not shared");
  assert.deepEqual([...sampler.params.keys()], [...learner.params.keys()]);
  // The Learner steps (B moves), then sends every weight; the Sampler loads them.
  randomizeAdapters(learner, 8);
  assert.ok(maxAbsDiff(logits(sampler), logits(learner)) > 0.05);
  sampler.loadWeights(hostWeights(await learner.exportWeights()));
  assert.deepEqual(logits(sampler), logits(learner));
  assert.equal(sampler.trainableParams.size, 0);
  for (const m of [learner, sampler]) m.dispose();
});

Deno.test("attachLora() freezes the base: gradients and AdamW steps reach the adapters only", () => {
  const model = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
  attachLora(model, { r: 4, seed: 5 });
  const trainable = model.trainableParams;
  assert.equal(trainable.size, TINY_TEST_CONFIG.num_hidden_layers * 7 * 2);
  assert.ok([...trainable.keys()].every((n) => IS_ADAPTER.test(n)));
  // Asked for every parameter, tfjs gives the frozen ones no gradient.
  tf.tidy(() => {
    const all = [...model.params.values()];
    const { grads } = tf.variableGrads(
      () => tf.mean(tf.square(model.forward(tf.tensor2d(IDS, [2, 6], "int32")).logits)),
      all,
    );
    const byId = new Map([...model.params].map(([n, v]) => [v.name, n]));
    for (const [id, g] of Object.entries(grads)) {
      assert.equal(g !== null, IS_ADAPTER.test(byId.get(id)!), byId.get(id));
    }
  });

  const baseBefore = new Map(
    [...model.params].filter(([n]) => !IS_ADAPTER.test(n)).map(([n, v]) => [n, v.dataSync()]),
  );
  const adaptersBefore = new Map([...trainable].map(([n, v]) => [n, v.dataSync()]));
  const optimizer = new AdamW(trainable, { weightDecay: 0.1 });
  for (let step = 0; step < 3; step++) {
    const grads = adapterGrads(model);
    tf.tidy(() => {
      const named: Record<string, tf.Tensor> = {};
      for (const [name, g] of grads) named[name] = tf.tensor(g, trainable.get(name)!.shape);
      optimizer.step(named, 1e-2);
    });
  }
  for (const [name, data] of baseBefore) {
    assert.deepEqual(model.params.get(name)!.dataSync(), data, `${name} is frozen`);
  }
  for (const [name, data] of adaptersBefore) {
    assert.ok(maxAbsDiff(model.params.get(name)!.dataSync(), data) > 1e-4, `${name} moved`);
  }
  optimizer.dispose();
  model.dispose();
});

Deno.test("attachLora() adapter gradients with a frozen base equal those with a trainable base", () => {
  // A frozen base weight takes a backward that computes dx only; check it against the
  // ordinary matmul gradient of a model whose base weights are trainable.
  const frozen = Transformer.create({ ...TINY_TEST_CONFIG, tie_word_embeddings: false }, {
    seed: 1,
  });
  attachLora(frozen, { r: 4, seed: 5 });
  randomizeAdapters(frozen, 6);
  const open = frozen.clone({ trainable: true });
  assert.equal(open.trainableParams.size, open.params.size);
  const a = adapterGrads(frozen), b = adapterGrads(open);
  assert.equal(a.size, TINY_TEST_CONFIG.num_hidden_layers * 7 * 2);
  let largest = 0;
  for (const [name, g] of a) {
    assert.ok(maxAbsDiff(g, b.get(name)!) < 1e-6, name);
    largest = Math.max(largest, ...g.map(Math.abs));
  }
  assert.ok(largest > 1e-3, "the gradients are not all zero");
  for (const m of [frozen, open]) m.dispose();
});

Deno.test("generate() with an adapter: KV-cache log-probs equal teacher-forced ones", async () => {
  const model = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
  const plain = logits(model, [[3, 9, 14]]);
  attachLora(model, { r: 4 });
  randomizeAdapters(model, 6);
  assert.ok(maxAbsDiff(logits(model, [[3, 9, 14]]), plain) > 0.05);
  const prompts = [[3, 9, 14], [5, 6, 7, 8, 2]];
  const gens = await generate(model, prompts, {
    maxNewTokens: 8,
    temperature: 1,
    stopIds: [],
    padId: 0,
    rng: new Rng(9),
  });
  const forced = await completionLogprobs(model, prompts, gens.map((g) => g.tokens), { padId: 0 });
  gens.forEach((g, r) => {
    assert.equal(g.tokens.length, 8);
    assert.ok(maxAbsDiff(g.logprobs, forced[r]!) < 1e-4);
  });
  model.dispose();
});

interface LoraGolden {
  adapters: Record<
    string,
    { base: string; vocab_size: number; prompts: number[][]; logits: number[][] }
  >;
}

Deno.test("loadLoraAdapter() reads PEFT's adapters with PEFT's logits", async () => {
  const golden: LoraGolden = JSON.parse(await Deno.readTextFile(`${FIXTURES}lora/golden.json`));
  assert.deepEqual(Object.keys(golden.adapters), ["tiny-qwen2-r4", "tiny-llama-r2"]);
  for (const [name, g] of Object.entries(golden.adapters)) {
    const { model } = await loadHfModel(`${FIXTURES}${g.base}`);
    const base = logits(model, [g.prompts[0]!]);
    await loadLoraAdapter(`${FIXTURES}lora/${name}`, model);
    g.prompts.forEach((ids, i) => {
      assert.ok(maxAbsDiff(logits(model, [ids]), g.logits[i]!) < 1e-4, `${name} prompt ${i}`);
    });
    assert.ok(maxAbsDiff(base, g.logits[0]!) > 1, `${name}: the adapter matters`);
    model.dispose();
  }
});

Deno.test("attachLora() names what is wrong and leaves the model as it was", () => {
  const model = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
  const n = model.params.size;
  assert.throws(
    () => attachLora(model, { targetModules: ["q_proj", "qkv_proj"] }),
    /Cannot attach LoRA: target module must be one of q_proj, .*: current value is "qkv_proj"/,
  );
  assert.throws(
    () => attachLora(model, { r: 0 }),
    /"r" must be an integer >= 1: current value is 0/,
  );
  assert.throws(() => attachLora(model, { alpha: -1 }), /"alpha" must be > 0: current value is -1/);
  assert.throws(
    () => attachLora(model, { dropout: 0.1 }),
    /"dropout" must be 0.*: current value is 0.1/,
  );
  assert.equal(model.params.size, n);
  assert.equal(model.lora, undefined);
  assert.equal(model.trainableParams.size, n);
  attachLora(model, { r: 2 });
  assert.throws(() => attachLora(model), /the model already has adapters: current value is r = 2/);
  model.dispose();
});

Deno.test("loadLoraAdapter() names the field or tensor that is wrong and changes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lora-bad-" });
  const target = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
  try {
    const donor = Transformer.create(TINY_TEST_CONFIG, { seed: 1 });
    attachLora(donor, { r: 2, targetModules: ["q_proj", "down_proj"] });
    await saveLoraAdapter(dir, donor);
    donor.dispose();
    const config = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
    const tensors = await Deno.readFile(`${dir}/adapter_model.safetensors`);
    const withConfig = async (patch: Record<string, unknown>, error: RegExp) => {
      await Deno.writeTextFile(
        `${dir}/adapter_config.json`,
        JSON.stringify({ ...config, ...patch }),
      );
      await assert.rejects(() => loadLoraAdapter(dir, target), error);
    };
    await withConfig(
      { peft_type: "IA3" },
      /field "peft_type" must be "LORA": current value is "IA3"/,
    );
    await withConfig(
      { use_dora: true },
      /field "use_dora" is not supported: current value is true/,
    );
    await withConfig({ bias: "all" }, /field "bias" must be "none": current value is "all"/);
    await withConfig(
      { modules_to_save: ["lm_head"] },
      /field "modules_to_save" must be null: current value is \["lm_head"\]/,
    );
    await withConfig(
      { rank_pattern: { q_proj: 4 } },
      /field "rank_pattern" must be empty: current value is \{"q_proj":4\}/,
    );
    await withConfig(
      { target_modules: ["q_proj", "embed_tokens"] },
      /field "target_modules" must list projections of q_proj, .*: current value is \["q_proj","embed_tokens"\]/,
    );
    await withConfig(
      { r: 3 },
      /tensor "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight" must have shape \[3,16\] \(r = 3 in adapter_config\.json\): current value is \[2,16\]/,
    );
    await withConfig(
      { target_modules: ["q_proj", "down_proj", "v_proj"] },
      /missing tensor "base_model\.model\.model\.layers\.0\.self_attn\.v_proj\.lora_A\.weight"/,
    );
    await withConfig(
      { target_modules: ["down_proj"] },
      /tensor "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight" is not an adapter of target_modules \["down_proj"\]/,
    );
    await Deno.writeTextFile(`${dir}/adapter_config.json`, JSON.stringify(config));
    await Deno.writeFile(`${dir}/adapter_model.safetensors`, tensors.subarray(0, 20));
    await assert.rejects(
      () => loadLoraAdapter(dir, target),
      /Cannot read ".*adapter_model\.safetensors"/,
    );
    await assert.rejects(
      () => loadLoraAdapter(`${dir}/none`, target),
      /Cannot load LoRA adapter ".*\/none\/adapter_config\.json"/,
    );
    assert.equal(target.lora, undefined, "no failed load attached anything");
    assert.ok([...target.params.keys()].every((name) => !IS_ADAPTER.test(name)));
    assert.equal(target.trainableParams.size, target.params.size);
    await Deno.writeFile(`${dir}/adapter_model.safetensors`, tensors);
    await loadLoraAdapter(dir, target);
    await assert.rejects(() => loadLoraAdapter(dir, target), /the model already has adapters/);
  } finally {
    target.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
