/**
 * A Hugging Face model folder end to end with `deno task generate` (training on one is
 * checked in `tests/training/hf_model_train_test.ts`).
 */
import assert from "node:assert/strict";
import { makeHfModel, REPO_ROOT } from "../helpers.ts";
import { loadHfModel } from "../../model/hf.ts";
import { loadHfTokenizer } from "../../model/hf_tokenizer.ts";
import { completionLogprobs } from "../../model/sampling.ts";

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
  assert.equal(missing.code, 2);
  assert.match(
    missing.stderr,
    /Cannot load the model of --model "\/nonexistent\/model": the folder does not exist/,
  );
  const bad = await run([...GENERATE, "--model", "m", "--prompt", "x", "--max-new-tokens", "0"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--max-new-tokens: must be an integer >= 1: current value is "0"/);
});

Deno.test("deno task generate refuses a prompt the model cannot take, naming --prompt", async () => {
  const model = "checkpoints/tiny-sft-latent-long"; // character tokenizer, 256-token context
  const long = await run([...GENERATE, "--model", model, "--prompt", "1+".repeat(128)]);
  assert.equal(long.code, 2, long.stderr);
  assert.match(
    long.stderr,
    /Invalid value for --prompt: it must leave room for a new token in the model's context of 256 tokens: current value is 256 tokens/,
  );
  const fits = await run([...GENERATE, "--model", model, "--prompt", "1+".repeat(127) + "1"]);
  assert.equal(fits.code, 0, fits.stderr);
  const curly = await run([...GENERATE, "--model", model, "--prompt", "Janet’s ducks"]);
  assert.equal(curly.code, 2, curly.stderr);
  assert.match(
    curly.stderr,
    /Invalid value for --prompt: Cannot encode text: character at index 5/,
  );
});
