/**
 * The native `tensorflow` backend runs what the wasm backend runs, with the same numbers: a
 * smoke run of every algorithm (GRPO, MGRPO, PPO, the RLOO plug-in; MGRPO also with LoRA and
 * gradient checkpointing), greedy generation from a Hugging Face model, and the two-turn
 * evaluation, each as a process of its own on both backends (tfjs' backend is global to a
 * process), compared number by number.
 *
 * Runs when `deno task setup:tensorflow` has built the addon; with `CI=true` or
 * `MGRPO_REQUIRE_TENSORFLOW=1` (the test command sets it) a missing addon fails.
 *
 * @module
 */
import assert from "node:assert/strict";
import { TFJS_NODE_INSTALL } from "../../model/backend.ts";
import {
  makeHfModel,
  REPO_ROOT,
  runTrain,
  startServeTask,
  stepRecords,
  tensorflowReady,
} from "../helpers.ts";

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

/** `|a - b| <= tol · max(1, |a|)` for every numeric field of every step record. */
function assertClose(
  a: Record<string, number>[],
  b: Record<string, number>[],
  what: string,
  tol = 1e-4,
): number {
  assert.equal(b.length, a.length, `${what}: steps`);
  let worst = 0;
  a.forEach((ra, i) => {
    assert.deepEqual(Object.keys(b[i]!).sort(), Object.keys(ra).sort(), `${what}: step ${i} keys`);
    for (const [k, v] of Object.entries(ra)) {
      if (typeof v !== "number") continue;
      const d = Math.abs(v - b[i]![k]!);
      assert.ok(
        d <= tol * Math.max(1, Math.abs(v)),
        `${what}: step ${i} ${k}: ${v} vs ${b[i]![k]}`,
      );
      worst = Math.max(worst, d / Math.max(1, Math.abs(v)));
    }
  });
  return worst;
}

const RUNS: { name: string; config: string; sets: string[] }[] = [
  { name: "grpo", config: "configs/smoke-grpo.yaml", sets: [] },
  { name: "mgrpo", config: "configs/smoke-mgrpo.yaml", sets: [] },
  { name: "ppo", config: "configs/smoke-ppo.yaml", sets: [] },
  {
    name: "rloo",
    config: "configs/smoke-grpo.yaml",
    sets: ["plugins=[algorithms/rloo/mod.ts]", "algorithm=rloo"],
  },
  {
    name: "mgrpo on a Hugging Face model",
    config: "configs/smoke-mgrpo.yaml",
    sets: [`model.path=${hfDir}/model`, "sampler.max_new_tokens=8", "eval.before=false"],
  },
  {
    name: "mgrpo-lora-checkpointing",
    config: "configs/smoke-mgrpo.yaml",
    sets: ["model.lora.r=4", "learner.gradient_checkpointing=true"],
  },
];

for (const run of RUNS) {
  Deno.test({
    name: `tensorflow trains ${run.name} as wasm does (every step's metrics within 1e-4)`,
    ignore: !ready,
    fn: async () => {
      const dir = await Deno.makeTempDir({ prefix: `tf-${run.name}-` });
      try {
        const records: Record<string, number>[][] = [];
        for (const backend of ["wasm", "tensorflow"]) {
          const r = await runTrain(`${dir}/${backend}`, `${REPO_ROOT}${run.config}`, [
            ...run.sets,
            `model.backend=${backend}`,
            "control.enabled=false",
          ], { timeoutMs: 300_000 });
          assert.equal(r.code, 0, `${backend}: ${r.log}`);
          records.push(await stepRecords(`${dir}/${backend}`));
        }
        assert.ok(records[0]!.length >= 2, "at least two steps");
        const worst = assertClose(records[0]!, records[1]!, run.name);
        console.log(`${run.name}: largest relative difference ${worst.toExponential(1)}`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

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
