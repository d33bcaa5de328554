/**
 * Hugging Face folders against transformers: the fixtures in tests/fixtures/hf/ and their
 * golden logits come from tools/hf_golden.py (see tests/fixtures/hf/README.md).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../model/backend.ts";
import { type HfArchitecture, loadHfModel, parseHfConfig, saveHfModel } from "../../model/hf.ts";
import { ropeInverseFrequencies, type RopeScaling } from "../../model/model_config.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  roundToBfloat16,
  SafetensorsReader,
  toFloat32,
  writeSafetensors,
} from "../../model/safetensors.ts";
import { completionLogprobs, generate } from "../../model/sampling.ts";
import type { Transformer } from "../../model/transformer.ts";
import { Rng } from "../../util/rng.ts";

await initBackend("wasm");

const FIXTURES = new URL("../fixtures/hf/", import.meta.url).pathname;

interface GoldenModel {
  vocab_size: number;
  prompts: number[][];
  logits: number[][];
  logprobs: number[][];
}

interface Golden {
  models: Record<string, GoldenModel>;
  inv_freq: {
    label: string;
    head_dim: number;
    rope_theta: number;
    rope_scaling: RopeScaling | null;
    inv_freq: number[];
  }[];
}

const GOLDEN: Golden = JSON.parse(await Deno.readTextFile(`${FIXTURES}golden.json`));

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function logitsOf(model: Transformer, ids: number[]): Float32Array {
  return tf.tidy(() =>
    model.forward(tf.tensor2d([ids], [1, ids.length], "int32")).logits.dataSync() as Float32Array
  );
}

/** Copies fixture `name` into a fresh temporary folder and returns its path. */
async function copyFixture(name: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: `hf-${name}-` });
  for await (const e of Deno.readDir(`${FIXTURES}${name}`)) {
    await Deno.copyFile(`${FIXTURES}${name}/${e.name}`, `${dir}/${e.name}`);
  }
  return dir;
}

async function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): Promise<void> {
  const c = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  edit(c);
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(c));
}

/** Asserts two weight maps are equal bit for bit. */
function assertSameWeights(
  a: Map<string, { data: Float32Array; shape: number[] }>,
  b: Map<string, { data: Float32Array; shape: number[] }>,
): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [name, t] of a) {
    const u = b.get(name)!;
    assert.deepEqual(u.shape, t.shape, name);
    const x = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);
    const y = new Uint32Array(u.data.buffer, u.data.byteOffset, u.data.length);
    assert.ok(x.every((v, i) => v === y[i]), `tensor "${name}" differs`);
  }
}

const CASES: [folder: string, golden: string, architecture: HfArchitecture][] = [
  ["tiny-qwen2", "tiny-qwen2", "Qwen2ForCausalLM"],
  ["tiny-qwen2-bf16", "tiny-qwen2-bf16", "Qwen2ForCausalLM"],
  ["tiny-qwen2-sharded", "tiny-qwen2", "Qwen2ForCausalLM"],
  ["tiny-llama", "tiny-llama", "LlamaForCausalLM"],
  ["tiny-llama-bias", "tiny-llama-bias", "LlamaForCausalLM"],
];

for (const [folder, goldenName, architecture] of CASES) {
  Deno.test(`loadHfModel() matches transformers' logits and log-probs on ${folder}`, async () => {
    const before = tf.memory().numTensors;
    const loaded = await loadHfModel(`${FIXTURES}${folder}`, { trainable: false });
    const golden = GOLDEN.models[goldenName]!;
    assert.equal(loaded.architecture, architecture);
    assert.deepEqual(loaded.specialTokens, { bosTokenId: 1, eosTokenIds: [2] });
    let worstLogit = 0, worstLogp = 0;
    for (let i = 0; i < golden.prompts.length; i++) {
      const ids = golden.prompts[i]!;
      const logits = logitsOf(loaded.model, ids);
      assert.equal(logits.length, ids.length * golden.vocab_size);
      worstLogit = Math.max(worstLogit, maxAbsDiff(logits, golden.logits[i]!));
      const [forced] = await completionLogprobs(loaded.model, [ids.slice(0, 1)], [ids.slice(1)], {
        padId: 0,
      });
      worstLogp = Math.max(worstLogp, maxAbsDiff(forced!, golden.logprobs[i]!));
    }
    assert.ok(worstLogit < 1e-4, `max |Δlogit| = ${worstLogit}`);
    assert.ok(worstLogp < 1e-4, `max |Δlogp| = ${worstLogp}`);
    loaded.model.dispose();
    assert.equal(tf.memory().numTensors, before);
  });
}

Deno.test("ropeInverseFrequencies() equals transformers' inv_freq bit for bit", () => {
  assert.ok(GOLDEN.inv_freq.some((c) => c.rope_scaling?.rope_type === "llama3"));
  for (const c of GOLDEN.inv_freq) {
    const inv = ropeInverseFrequencies({
      hidden_size: c.head_dim * 4,
      num_attention_heads: 4,
      head_dim: c.head_dim,
      rope_theta: c.rope_theta,
      rope_scaling: c.rope_scaling,
    });
    assert.deepEqual(Array.from(inv), c.inv_freq, c.label);
  }
});

Deno.test("loadHfModel() reads bf16 and sharded copies as the same weights", async () => {
  const f32 = await loadHfModel(`${FIXTURES}tiny-qwen2`);
  const asBf16 = await loadHfModel(`${FIXTURES}tiny-qwen2`, { dtype: "bfloat16" });
  const bf16 = await loadHfModel(`${FIXTURES}tiny-qwen2-bf16`);
  const sharded = await loadHfModel(`${FIXTURES}tiny-qwen2-sharded`);
  const index = JSON.parse(
    await Deno.readTextFile(`${FIXTURES}tiny-qwen2-sharded/model.safetensors.index.json`),
  );
  assert.ok(new Set(Object.values(index.weight_map)).size >= 2);
  const w = await f32.model.exportWeights();
  assertSameWeights(await sharded.model.exportWeights(), w);
  // Rounding our f32 copy to bf16 gives exactly the values torch wrote as BF16.
  assertSameWeights(await asBf16.model.exportWeights(), await bf16.model.exportWeights());
  const q = w.get("model.layers.0.self_attn.q_proj.weight")!.data;
  const qb = (await bf16.model.exportWeight("model.layers.0.self_attn.q_proj.weight")).data;
  assert.ok(maxAbsDiff(q, qb) > 0, "bf16 weights must differ from f32 ones");
  for (const m of [f32, asBf16, bf16, sharded]) m.model.dispose();
});

Deno.test("generate() log-probs equal a teacher-forced forward on loaded models", async () => {
  for (const folder of ["tiny-qwen2", "tiny-llama"]) {
    const { model } = await loadHfModel(`${FIXTURES}${folder}`, { trainable: false });
    const prompts = GOLDEN.models[folder]!.prompts; // 5, 13 and 24 tokens: left padding
    const gens = await generate(model, prompts, {
      maxNewTokens: 12,
      temperature: 1,
      stopIds: [],
      padId: 0,
      rng: new Rng(42),
    });
    const forced = await completionLogprobs(model, prompts, gens.map((g) => g.tokens), {
      padId: 0,
    });
    for (let r = 0; r < prompts.length; r++) {
      assert.equal(gens[r]!.tokens.length, 12);
      const diff = maxAbsDiff(gens[r]!.logprobs, forced[r]!);
      assert.ok(diff < 1e-4, `${folder} row ${r}: max |Δlogp| = ${diff}`);
    }
    model.dispose();
  }
});

Deno.test("saveHfModel() then loadHfModel() gives identical tensors and config", async () => {
  const root = await Deno.makeTempDir({ prefix: "hf-save-" });
  try {
    for (const folder of ["tiny-qwen2", "tiny-llama", "tiny-llama-bias"]) {
      const a = await loadHfModel(`${FIXTURES}${folder}`);
      const out = `${root}/${folder}`;
      await saveHfModel(out, a.model, {
        tokenizerFiles: { "tokenizer.json": '{"model":{}}', "extra.bin": new Uint8Array([7, 8]) },
        bosTokenId: 1,
        eosTokenId: [2, 3],
      });
      const b = await loadHfModel(out);
      assert.equal(b.architecture, a.architecture);
      assert.deepEqual(b.config, a.config);
      assert.deepEqual(b.specialTokens, { bosTokenId: 1, eosTokenIds: [2, 3] });
      assertSameWeights(await b.model.exportWeights(), await a.model.exportWeights());
      assert.equal(await Deno.readTextFile(`${out}/tokenizer.json`), '{"model":{}}');
      assert.deepEqual([...await Deno.readFile(`${out}/extra.bin`)], [7, 8]);
      const st = await SafetensorsReader.open(`${out}/model.safetensors`);
      assert.deepEqual(st.metadata, { format: "pt" });
      st.close();
      a.model.dispose();
      b.model.dispose();
    }
    const qwen = JSON.parse(await Deno.readTextFile(`${root}/tiny-qwen2/config.json`));
    assert.equal(qwen.model_type, "qwen2");
    assert.equal(qwen.hidden_act, "silu");
    const llama = JSON.parse(await Deno.readTextFile(`${root}/tiny-llama/config.json`));
    assert.deepEqual([llama.architectures, llama.head_dim, llama.attention_bias], [
      ["LlamaForCausalLM"],
      32,
      false,
    ]);
    assert.equal(llama.rope_scaling.rope_type, "llama3");
    // Replacing an existing folder, in bf16: the new files, no leftover siblings.
    const f32 = await loadHfModel(`${FIXTURES}tiny-qwen2`);
    await saveHfModel(`${root}/tiny-qwen2`, f32.model, { dtype: "bfloat16" });
    const names = [];
    for await (const e of Deno.readDir(root)) names.push(e.name);
    assert.deepEqual(names.sort(), ["tiny-llama", "tiny-llama-bias", "tiny-qwen2"]);
    const files = [];
    for await (const e of Deno.readDir(`${root}/tiny-qwen2`)) files.push(e.name);
    assert.deepEqual(files.sort(), ["config.json", "model.safetensors"]);
    const st = await SafetensorsReader.open(`${root}/tiny-qwen2/model.safetensors`);
    assert.equal(st.entries.get("model.norm.weight")!.dtype, "BF16");
    st.close();
    const saved = await loadHfModel(`${root}/tiny-qwen2`);
    const torchBf16 = await loadHfModel(`${FIXTURES}tiny-qwen2-bf16`);
    assertSameWeights(await saved.model.exportWeights(), await torchBf16.model.exportWeights());
    for (const m of [f32, saved, torchBf16]) m.model.dispose();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("loadHfModel() reads a transformers-4 config (rope_theta + rope_scaling) the same", async () => {
  const dir = await copyFixture("tiny-llama");
  try {
    const v5 = parseHfConfig(
      JSON.parse(await Deno.readTextFile(`${dir}/config.json`)),
    ).config;
    await editConfig(dir, (c) => {
      const { rope_theta, ...scaling } = c.rope_parameters as Record<string, unknown>;
      delete c.rope_parameters;
      c.rope_theta = rope_theta;
      c.rope_scaling = scaling;
      c.torch_dtype = c.dtype;
      delete c.dtype;
    });
    const { model } = await loadHfModel(dir);
    assert.deepEqual(model.config, v5);
    assert.deepEqual(model.config.rope_scaling, {
      rope_type: "llama3",
      factor: 4,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 64,
    });
    model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadHfModel() names the unsupported architecture and rope type", async () => {
  const dir = await copyFixture("tiny-qwen2");
  try {
    await editConfig(dir, (c) => c.architectures = ["MistralForCausalLM"]);
    await assert.rejects(
      loadHfModel(dir),
      /field "architectures" is not supported \(supported: "Qwen2ForCausalLM", "LlamaForCausalLM"\): current value is \["MistralForCausalLM"\]/,
    );
    await editConfig(dir, (c) => {
      c.architectures = ["Qwen2ForCausalLM"];
      c.rope_scaling = { rope_type: "yarn", factor: 4 };
    });
    await assert.rejects(
      loadHfModel(dir),
      /field "rope_scaling.rope_type" is not supported \(supported: "default", "linear", "llama3"\): current value is "yarn"/,
    );
    await editConfig(dir, (c) => {
      delete c.rope_scaling;
      c.rope_parameters = { rope_type: "dynamic", factor: 2, rope_theta: 10000 };
    });
    await assert.rejects(loadHfModel(dir), /field "rope_parameters.rope_type".*"dynamic"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadHfModel() names a missing tensor, a wrong shape and an extra tensor", async () => {
  const before = tf.memory().numTensors;
  const dir = await copyFixture("tiny-qwen2");
  try {
    const original = await Deno.readFile(`${dir}/model.safetensors`);
    const { tensors } = decodeSafetensors(original);
    // Missing: a tensor of the last layer, so earlier variables were made and must be freed.
    tensors.delete("model.layers.1.mlp.up_proj.weight");
    await Deno.writeFile(`${dir}/model.safetensors`, encodeSafetensors(tensors));
    await assert.rejects(
      loadHfModel(dir),
      /tensor "model.layers.1.mlp.up_proj.weight" is missing: searched "model.safetensors"/,
    );
    // Extra: an unknown tensor is refused; a RoPE inv_freq buffer is ignored, as transformers does.
    const full = decodeSafetensors(original).tensors;
    full.set("model.layers.0.self_attn.o_proj.bias", { data: new Float32Array(64), shape: [64] });
    await Deno.writeFile(`${dir}/model.safetensors`, encodeSafetensors(full));
    await assert.rejects(
      loadHfModel(dir),
      /1 tensor\(s\) that a Qwen2ForCausalLM with this config.json does not have: current value is "model.layers.0.self_attn.o_proj.bias"/,
    );
    full.delete("model.layers.0.self_attn.o_proj.bias");
    full.set("model.rotary_emb.inv_freq", { data: new Float32Array(8), shape: [8] });
    await Deno.writeFile(`${dir}/model.safetensors`, encodeSafetensors(full));
    (await loadHfModel(dir)).model.dispose();
    // Wrong shape: the config says intermediate_size 80, the file holds 96.
    await editConfig(dir, (c) => c.intermediate_size = 80);
    await assert.rejects(
      loadHfModel(dir),
      /tensor "model.layers.0.mlp.gate_proj.weight" in ".*model.safetensors" has the wrong shape: expected \[80,64\]: current value is \[96,64\]/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("loadHfModel() names a missing shard and a folder without safetensors", async () => {
  const dir = await copyFixture("tiny-qwen2-sharded");
  try {
    await Deno.remove(`${dir}/model-00002-of-00003.safetensors`);
    await assert.rejects(loadHfModel(dir), /shard "model-00002-of-00003.safetensors".*missing/);
    for (const f of ["model.safetensors.index.json", "model-00001-of-00003.safetensors"]) {
      await Deno.remove(`${dir}/${f}`);
    }
    await assert.rejects(
      loadHfModel(dir),
      /no "model.safetensors" or "model.safetensors.index.json".*current value is \["config.json", "generation_config.json", "model-00003-of-00003.safetensors"\]/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseHfConfig() refuses unsupported settings, naming the field", () => {
  const base = {
    architectures: ["LlamaForCausalLM"],
    vocab_size: 32,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
  };
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ mlp_bias: true }, /field "mlp_bias" is not supported/],
    [{ hidden_act: "gelu" }, /field "hidden_act" is not supported.*"gelu"/],
    [{ rope_scaling: { type: "longrope", factor: 2 } }, /"rope_scaling.type".*"longrope"/],
    [{ partial_rotary_factor: 0.5 }, /"partial_rotary_factor" is not supported.*0.5/],
    [{ rope_parameters: { rope_type: "linear" } }, /"rope_parameters.factor" must be a number/],
    [{ num_key_value_heads: 3 }, /"num_key_value_heads"/],
    [{ vocab_size: "32" }, /"vocab_size" must be a number: current value is "32"/],
    [{ architectures: undefined, model_type: "gpt2" }, /"architectures" is missing/],
    [{ quantization_config: { bits: 4 } }, /"quantization_config" is not supported/],
  ];
  for (const [edit, pattern] of cases) {
    assert.throws(() => parseHfConfig({ ...base, ...edit }, "x/config.json"), pattern);
  }
  assert.throws(
    () => parseHfConfig({ ...base, architectures: ["Qwen2ForCausalLM"], use_sliding_window: true }),
    /"use_sliding_window" is not supported/,
  );
  // Supported: Llama bias covers o_proj too; head_dim may differ from hidden/heads.
  const { config } = parseHfConfig({ ...base, attention_bias: true, head_dim: 4 });
  assert.deepEqual([config.attention_bias, config.o_proj_bias, config.head_dim], [true, true, 4]);
  assert.equal(
    parseHfConfig({ ...base, model_type: "qwen2", architectures: undefined })
      .architecture,
    "Qwen2ForCausalLM",
  );
});

Deno.test("saveHfModel() refuses an architecture that cannot hold the model's biases", async () => {
  const { model } = await loadHfModel(`${FIXTURES}tiny-qwen2`);
  const root = await Deno.makeTempDir({ prefix: "hf-refuse-" });
  try {
    await assert.rejects(
      saveHfModel(`${root}/x`, model, { architecture: "LlamaForCausalLM" }),
      /LlamaForCausalLM cannot hold a model with attention_bias true and o_proj_bias false/,
    );
    await assert.rejects(
      saveHfModel(`${root}/x`, model, { tokenizerFiles: { "config.json": "{}" } }),
      /tokenizer file name must be a plain file name.*current value is "config.json"/,
    );
    assert.deepEqual([...Deno.readDirSync(root)], []); // nothing written
  } finally {
    model.dispose();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("SafetensorsReader reads F16/BF16 lazily; writeSafetensors() writes BF16 rounded", async () => {
  const dir = await Deno.makeTempDir({ prefix: "st-" });
  try {
    // 1 + 2^-9 ties to 1 (even); 1 + 3·2^-9 rounds up to 1 + 2^-7; NaN becomes 0x7fc0.
    const values = new Float32Array([1 + 2 ** -9, 1 + 3 * 2 ** -9, -2.5, NaN]);
    await writeSafetensors(`${dir}/a.safetensors`, [["w", [2, 2]]], () => values.slice(), {
      dtype: "BF16",
      metadata: { format: "pt" },
    });
    const r = await SafetensorsReader.open(`${dir}/a.safetensors`);
    assert.deepEqual([...await r.readRaw("w")], [0x80, 0x3f, 0x81, 0x3f, 0x20, 0xc0, 0xc0, 0x7f]);
    const w = await r.read("w");
    assert.deepEqual([...w.data.subarray(0, 3)], [1, 1 + 2 ** -7, -2.5]);
    assert.ok(Number.isNaN(w.data[3]));
    assert.deepEqual([...w.data], [...roundToBfloat16(values.slice())]);
    await assert.rejects(r.read("v"), /no tensor is named "v"/);
    r.close();
    // f16: 1.0 = 0x3c00, -2 = 0xc000, the smallest subnormal 2^-24 = 0x0001, 65504 = 0x7bff.
    const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7bff]).buffer);
    assert.deepEqual([...toFloat32(f16, "F16")], [1, -2, 2 ** -24, 65504]);
    // A file cut short names itself.
    const bytes = await Deno.readFile(`${dir}/a.safetensors`);
    await Deno.writeFile(`${dir}/b.safetensors`, bytes.subarray(0, bytes.length - 2));
    await assert.rejects(SafetensorsReader.open(`${dir}/b.safetensors`), /b.safetensors.*"w"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
