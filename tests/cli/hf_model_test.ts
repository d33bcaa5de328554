/**
 * A Hugging Face model folder end to end: `deno task generate` on it, and `deno task train`
 * with `model.path` (its tokenizer, its chat template), whose checkpoint is again a Hugging
 * Face folder.
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "../helpers.ts";
import { TRAIN_RUN_ARGS } from "../../cli/common.ts";
import { Transformer } from "../../model/transformer.ts";
import { loadHfModel, saveHfModel } from "../../model/hf.ts";
import { loadHfTokenizer } from "../../model/hf_tokenizer.ts";
import { completionLogprobs } from "../../model/sampling.ts";
import { initBackend } from "../../model/backend.ts";

const TOKENIZER = `${REPO_ROOT}tests/fixtures/tokenizers/tiny-qwen2`;

/** A random Qwen2 model over the fixture tokenizer (1,005 ids), saved as a HF folder. */
async function makeHfModel(dir: string): Promise<void> {
  await initBackend("wasm");
  const model = Transformer.create({
    vocab_size: 1005,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 512,
    rope_theta: 10000,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
    attention_bias: true,
  }, { seed: 3 });
  await saveHfModel(dir, model, {
    tokenizerFiles: {
      "tokenizer.json": await Deno.readFile(`${TOKENIZER}/tokenizer.json`),
      "tokenizer_config.json": await Deno.readFile(`${TOKENIZER}/tokenizer_config.json`),
    },
    eosTokenId: 1002,
    padTokenId: 1000,
  });
  model.dispose();
}

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), { args, cwd: REPO_ROOT }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const GENERATE = ["run", "--allow-read", "--allow-write", "--allow-env", "cli/generate.ts"];

Deno.test("deno task generate --chat --json on a HF folder: its template, its ids, teacher-forced log-probs", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "hf-generate-" });
  try {
    await makeHfModel(`${tmp}/model`);
    const out = await run([
      ...GENERATE,
      "--model",
      `${tmp}/model`,
      "--prompt",
      "What is 2+3?",
      "--chat",
      "--max-new-tokens",
      "8",
      "--seed",
      "5",
      "--json",
    ]);
    assert.equal(out.code, 0, out.stderr);
    const result = JSON.parse(out.stdout);
    // The Qwen2.5 template of the fixture, with its default system turn.
    assert.equal(
      result.prompt,
      "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant." +
        "<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n",
    );
    const tokenizer = await loadHfTokenizer(`${tmp}/model`);
    assert.deepEqual(result.prompt_ids, tokenizer.encode(result.prompt));
    assert.equal(result.completion_ids.length, result.logprobs.length);
    assert.ok(result.completion_ids.length >= 1 && result.completion_ids.length <= 8);
    assert.equal(
      result.completion,
      tokenizer.decode(result.completion_ids, { skipSpecialTokens: true }),
    );
    const { model } = await loadHfModel(`${tmp}/model`, { trainable: false });
    const [forced] = await completionLogprobs(model, [result.prompt_ids], [result.completion_ids], {
      padId: tokenizer.padId,
    });
    result.logprobs.forEach((lp: number, i: number) => {
      assert.ok(Math.abs(lp - forced![i]!) < 1e-4, `token ${i}: ${lp} vs ${forced![i]}`);
    });
    model.dispose();
    // The same seed gives the same completion.
    const again = await run([
      ...GENERATE,
      "--model",
      `${tmp}/model`,
      "--prompt",
      "What is 2+3?",
      "--chat",
      "--max-new-tokens",
      "8",
      "--seed",
      "5",
      "--json",
    ]);
    assert.deepEqual(JSON.parse(again.stdout), result);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("deno task generate names a missing model folder and a bad flag", async () => {
  const missing = await run([...GENERATE, "--model", "/nonexistent/model", "--prompt", "x"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Cannot load checkpoint "\/nonexistent\/model"/);
  const bad = await run([...GENERATE, "--model", "m", "--prompt", "x", "--max-new-tokens", "0"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--max-new-tokens: must be an integer >= 1: current value is "0"/);
});

Deno.test("deno task train with model.path trains a HF model and checkpoints a HF folder", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "hf-train-" });
  try {
    await makeHfModel(`${tmp}/model`);
    const out = await run([
      ...TRAIN_RUN_ARGS,
      "--config",
      "configs/smoke-mgrpo.yaml",
      ...[
        `model.path=${tmp}/model`,
        "sampler.max_new_tokens=8",
        "eval.before=false",
        "eval.after=false",
        "control.enabled=false",
      ].flatMap((s) => ["--set", s]),
      "--run-dir",
      `${tmp}/run`,
    ]);
    assert.equal(out.code, 0, out.stderr + out.stdout);
    assert.match(out.stdout, /prompts: the chat template of .*tokenizer_config\.json/);
    const checkpoint = `${tmp}/run/checkpoint-2`;
    const loaded = await loadHfModel(checkpoint, { trainable: false });
    assert.equal(loaded.architecture, "Qwen2ForCausalLM");
    const tokenizer = await loadHfTokenizer(checkpoint);
    assert.equal(tokenizer.eosId, 1002);
    const config = await Deno.readTextFile(`${tmp}/run/config.yaml`);
    assert.match(config, new RegExp(`init: ${tmp}/model`));
    loaded.model.dispose();
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("model.preset: tiny starts from a random embedded model; model.path and preset together are refused", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "preset-" });
  try {
    const sets = ["model.preset=tiny", "run.steps=1", "eval.before=false", "control.enabled=false"];
    const out = await run([
      ...TRAIN_RUN_ARGS,
      "--config",
      "configs/smoke-grpo.yaml",
      ...sets.flatMap((s) => ["--set", s]),
      "--run-dir",
      `${tmp}/run`,
    ]);
    assert.equal(out.code, 0, out.stderr);
    // A random policy answers nothing right.
    assert.match(out.stdout, /held-out accuracy after training: 0\.0%/);
    const bad = await run([
      ...TRAIN_RUN_ARGS,
      "--set",
      "model.preset=tiny",
      "--set",
      "model.path=/x",
      "--run-dir",
      `${tmp}/bad`,
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /field "model\.preset" cannot be given with model\.path/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
