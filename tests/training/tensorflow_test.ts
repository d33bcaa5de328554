/**
 * The native `tensorflow` backend runs what the wasm backend runs, with the same numbers: a
 * smoke run of MGRPO (also on a Hugging Face model) and PPO, greedy generation from a Hugging Face
 * model, and the two-turn evaluation, each as a process of its own on both backends (tfjs' backend
 * is global to a process), compared number by number. GRPO, the RLOO plug-in and MGRPO with LoRA
 * and gradient checkpointing are compared the same way by `deno task test:slow`.
 *
 * Runs when `deno task setup:tensorflow` has built the addon; with `CI=true` or
 * `MGRPO_REQUIRE_TENSORFLOW=1` (the test command sets it) a missing addon fails.
 *
 * @module
 */
import assert from "node:assert/strict";
import { TFJS_NODE_INSTALL } from "../../model/backend.ts";
import { makeHfModel, REPO_ROOT, startServeTask, tensorflowReady } from "../helpers.ts";
import { testParity } from "../tensorflow_parity.ts";

const ready = await tensorflowReady();
/** A small Hugging Face Qwen2 folder (weights, tokenizer, chat template) for the runs below. */
const hfDir = await Deno.makeTempDir({ prefix: "tf-hf-" });
if (ready) await makeHfModel(`${hfDir}/model`);
Deno.test.afterAll(async () => await Deno.remove(hfDir, { recursive: true }));
const required = Deno.env.get("CI") === "true" ||
  Deno.env.get("MGRPO_REQUIRE_TENSORFLOW") === "1";

Deno.test("the tensorflow backend is set up where the test command requires it", () => {
  assert.ok(ready || !required, `run ${TFJS_NODE_INSTALL}`);
  if (!ready) console.log("tensorflow: not set up; its tests are skipped");
});

// GRPO, RLOO and MGRPO with LoRA and gradient checkpointing: tests/slow/tensorflow_parity_slow.ts.
for (
  const run of [
    { name: "mgrpo", config: "configs/smoke-mgrpo.yaml", sets: [] },
    { name: "ppo", config: "configs/smoke-ppo.yaml", sets: [] },
    {
      name: "mgrpo on a Hugging Face model",
      config: "configs/smoke-mgrpo.yaml",
      sets: [`model.path=${hfDir}/model`, "sampler.max_new_tokens=8", "eval.before=false"],
    },
  ]
) testParity(run, ready);

async function task(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "--allow-ffi", ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    out: new TextDecoder().decode(out.stdout),
    err: new TextDecoder().decode(out.stderr),
  };
}

Deno.test({
  name: "tensorflow: greedy generate from a Hugging Face model gives wasm's tokens",
  ignore: !ready,
  fn: async () => {
    const results = [];
    for (const backend of ["wasm", "tensorflow"]) {
      const r = await task([
        "cli/generate.ts",
        "--model",
        `${hfDir}/model`,
        "--prompt",
        "Hello there",
        "--greedy",
        "--max-new-tokens",
        "12",
        "--json",
        "--set",
        `model.backend=${backend}`,
      ]);
      assert.equal(r.code, 0, r.err);
      results.push(JSON.parse(r.out.trim().split("\n").at(-1)!));
    }
    const [w, t] = results;
    assert.ok(w.completion_ids.length > 0, JSON.stringify(w));
    assert.deepEqual(t.completion_ids, w.completion_ids);
    assert.equal(t.completion, w.completion);
    t.logprobs.forEach((lp: number, i: number) => assert.ok(Math.abs(lp - w.logprobs[i]) < 1e-4));
  },
});

Deno.test({
  name: "tensorflow: the two-turn evaluation gives wasm's per-problem figures",
  ignore: !ready,
  fn: async () => {
    const lines = [];
    for (const backend of ["wasm", "tensorflow"]) {
      const r = await task([
        "cli/eval.ts",
        "--two-turn",
        "--rounds",
        "1",
        "--split",
        "dev",
        "--set",
        "task.heldout_size=60",
        "--set",
        "task.eval_size=60",
        "--set",
        `model.backend=${backend}`,
      ]);
      assert.equal(r.code, 0, r.err);
      lines.push(JSON.parse(r.out.trim().split("\n").at(-1)!));
    }
    assert.equal(lines[0].n, 60);
    assert.deepEqual(lines[1], lines[0]);
  },
});

Deno.test({
  name: "tensorflow: deno task serve answers a greedy completion as on wasm",
  ignore: !ready,
  fn: async () => {
    const texts: string[] = [];
    for (const backend of ["wasm", "tensorflow"]) {
      const server = await startServeTask("checkpoints/tiny-sft", [
        "--set",
        `model.backend=${backend}`,
      ]);
      try {
        const res = await fetch(`${server.url}/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            prompt:
              "<|im_start|>user\nAnn has 7 pens. She buys 2. She loses 3. How many pens now?" +
              "<|im_end|>\n<|im_start|>assistant\n",
            max_tokens: 24,
            temperature: 0,
          }),
        });
        assert.equal(res.status, 200);
        texts.push((await res.json()).choices[0].text);
      } finally {
        await server.close();
      }
    }
    assert.match(texts[0]!, /<think>/);
    assert.equal(texts[1], texts[0]);
  },
});

Deno.test("setup:tensorflow names every missing prerequisite and how to get it", async () => {
  // With nothing on PATH, Python, g++, make and Node.js are all missing.
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run",
      `${REPO_ROOT}tools/setup_tensorflow.ts`,
    ],
    env: { PATH: "/nonexistent", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1, err);
  assert.match(err, /^setup:tensorflow: missing:/);
  assert.match(err, /Python 3 with pip \(Debian: apt-get install python3-pip/);
  assert.match(err, /a C\+\+ compiler, g\+\+ \(Debian: apt-get install g\+\+\)/);
  assert.match(err, /make \(Debian: apt-get install make\)/);
  assert.match(err, /Node\.js \(https:\/\/nodejs\.org/);
});
