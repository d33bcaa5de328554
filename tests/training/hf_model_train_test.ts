/**
 * A `Trainer` run on a Hugging Face model folder (`model.path`: its tokenizer, its chat
 * template), whose checkpoint is again a Hugging Face folder; and `model.preset`.
 */
import assert from "node:assert/strict";
import { ConfigError } from "../../config/load.ts";
import { loadConfig } from "../../training/config.ts";
import { loadHfModel } from "../../model/hf.ts";
import { loadHfTokenizer } from "../../model/hf_tokenizer.ts";
import { makeHfModel } from "../helpers.ts";
import { trainInProcess } from "./run_trainer.ts";

Deno.test("Trainer.run() with model.path trains a HF model and checkpoints a HF folder", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "hf-train-" });
  try {
    await makeHfModel(`${tmp}/model`);
    const { log } = await trainInProcess(`${tmp}/run`, "configs/smoke-mgrpo.yaml", [
      `model.path=${tmp}/model`,
      "sampler.max_new_tokens=8",
      "eval.before=false",
      "eval.after=false",
    ]);
    assert.match(log, /prompts: the chat template of .*tokenizer_config\.json/);
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

Deno.test("Trainer.run() with model.preset: tiny starts from a random embedded model", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "preset-" });
  try {
    const { log } = await trainInProcess(`${tmp}/run`, "configs/smoke-grpo.yaml", [
      "model.preset=tiny",
      "run.steps=1",
      "eval.before=false",
    ]);
    // A random policy answers nothing right.
    assert.match(log, /held-out accuracy after training: 0\.0%/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("TrainConfigSchema refuses model.path and model.preset together", () => {
  assert.throws(
    () => loadConfig(undefined, { overrides: ["model.preset=tiny", "model.path=/x"] }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
      assert.match(e.message, /field "model\.preset" cannot be given with model\.path/);
      return true;
    },
  );
});
