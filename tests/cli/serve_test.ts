/**
 * End to end: `deno task serve` as a real process on a free loopback port, the Sampler actor's
 * openai backend against it, and a short training run (a `Trainer` in this process) whose
 * LoRA updates reach it.
 */
import assert from "node:assert/strict";
import { sampler } from "../../actors/sampler.ts";
import { OpenAiSampler } from "../../actors/openai_sampler.ts";
import type { Generate, Rollouts, SamplingParams } from "../../actors/messages.ts";
import { initBackend } from "../../model/backend.ts";
import { loadCheckpoint } from "../../model/checkpoint.ts";
import { CharTokenizer } from "../../model/char_tokenizer.ts";
import type { Transformer } from "../../model/transformer.ts";
import { completionLogprobs, generate } from "../../model/sampling.ts";
import { Rng } from "../../util/rng.ts";
import { trainInProcess } from "../training/run_trainer.ts";
import {
  makeQuery,
  makeTinyCheckpoint,
  maxAbsDiff,
  recordingContext,
  REPO_ROOT,
  serveArgs,
  startServeTask,
  TWO_QUERIES,
} from "../helpers.ts";

await initBackend("cpu");

const tokenizer = new CharTokenizer();

/** `deno task serve` of `checkpoint` as `name`, on the cpu backend. */
function startServe(checkpoint: string, name: string) {
  return startServeTask(checkpoint, ["--model-name", name, "--set", "model.backend=cpu"]);
}

function generateMessage(params: SamplingParams, n: number): Generate {
  return {
    type: "Generate",
    purpose: "train",
    step: 1,
    label: "train",
    queries: TWO_QUERIES,
    n,
    params,
  };
}

async function sampleThrough(url: string, message: Generate): Promise<Rollouts> {
  const ctx = recordingContext("sampler");
  const openai = new OpenAiSampler({ baseUrl: url, model: "tiny", maxConcurrency: 2 });
  const state = await sampler.init(
    { model: null as unknown as Transformer, tokenizer, seed: 11, openai },
    ctx,
  );
  await sampler.handle(state, message, ctx);
  return ctx.only<Rollouts>("verifier");
}

Deno.test("sampler with backend openai samples from deno task serve as the model would", async () => {
  const tmp = await Deno.makeTempDir();
  const ckpt = await makeTinyCheckpoint(`${tmp}/tiny`, 4);
  const { model } = await loadCheckpoint(ckpt, { trainable: false });
  const server = await startServe(ckpt, "tiny");
  try {
    assert.match(
      server.line,
      /^serving: http:\/\/127\.0\.0\.1:\d+\/v1 \(model tiny, policy version 0\)$/,
    );
    for (const temperature of [1, 0.7]) {
      const params = { maxNewTokens: 10, temperature, topP: 1, topK: 0, greedy: false };
      const out = await sampleThrough(server.url, generateMessage(params, 3));
      assert.deepEqual(out.rollouts.map((r) => r.queryIndex), [0, 0, 0, 1, 1, 1]);
      assert.equal(out.policyVersion, 0);
      const prompts = out.rollouts.map((r) => TWO_QUERIES[r.queryIndex]!.promptIds);
      const teacher = await completionLogprobs(
        model,
        prompts,
        out.rollouts.map((r) => r.completionIds),
        { padId: tokenizer.padId, temperature },
      );
      out.rollouts.forEach((r, i) => {
        assert.ok(r.completionIds.length >= 1 && r.completionIds.length <= 10);
        assert.equal(r.text, tokenizer.decode(r.completionIds, { skipSpecialTokens: true }));
        assert.equal(r.logprobs.length, r.completionIds.length);
        const diff = maxAbsDiff(r.logprobs, teacher[i]!);
        assert.ok(diff < 1e-4, `rollout ${i} at temperature ${temperature}: ${diff}`);
        const stopped = tokenizer.stopIds.includes(r.completionIds.at(-1)!);
        assert.equal(r.finishReason, stopped ? "stop" : "length");
      });
      // Different samples of one prompt (n = 3 is not one completion copied).
      assert.ok(new Set(out.rollouts.map((r) => r.text)).size > 1);
    }
    const greedy = { maxNewTokens: 12, temperature: 1, topP: 1, topK: 0, greedy: true };
    const out = await sampleThrough(server.url, generateMessage(greedy, 2));
    for (const [q, query] of TWO_QUERIES.entries()) {
      const [g] = await generate(model, [query.promptIds], {
        ...greedy,
        stopIds: tokenizer.stopIds,
        padId: tokenizer.padId,
        rng: new Rng(0),
      });
      for (const r of out.rollouts.filter((r) => r.queryIndex === q)) {
        assert.deepEqual(r.completionIds, g!.tokens);
        assert.ok(maxAbsDiff(r.logprobs, g!.logprobs) < 1e-4);
      }
    }
  } finally {
    await server.close();
    model.dispose();
    await Deno.remove(tmp, { recursive: true });
  }
});

/**
 * Runs a one-step GRPO training run (a `Trainer` in this process, on the cpu backend like the
 * rest of this file) that samples from `url`; returns the run folder.
 */
async function trainAgainst(url: string, tmp: string, init: string, sets: string[]) {
  const runDir = `${tmp}/run`;
  await trainInProcess(runDir, "configs/smoke-grpo.yaml", [
    `model.init=${init}`,
    "model.backend=cpu",
    "run.steps=1",
    "eval.before=false",
    "eval.after=false",
    "grpo.beta=0",
    "sampler.prompts_per_step=4",
    "grpo.num_generations=4",
    "sampler.max_new_tokens=24",
    "learner.warmup_ratio=0",
    "sampler.backend=openai",
    `sampler.openai.base_url=${url}`,
    "sampler.openai.model=tiny",
    `sampler.openai.sync_dir=${tmp}/sync`,
    ...sets,
  ]);
  const metrics = (await Deno.readTextFile(`${runDir}/metrics.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(metrics.length, 1);
  assert.equal(metrics[0].step, 1);
  return runDir;
}

/**
 * Checks that `model` served at `url` is the run's final checkpoint (its log-probs, to 1e-4)
 * and no longer the starting policy.
 */
async function assertServesCheckpoint(
  url: string,
  model: string,
  checkpoint: string,
  init: string,
) {
  const { model: trained } = await loadCheckpoint(checkpoint, { trainable: false });
  const { model: base } = await loadCheckpoint(init, { trainable: false });
  try {
    const prompt = makeQuery("q", "What is 7-3?", 4).promptIds;
    const res = await fetch(`${url}/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model,
        prompt: [prompt],
        max_tokens: 16,
        temperature: 0,
        logprobs: 0,
        return_token_ids: true,
      }),
    });
    assert.equal(res.status, 200);
    const choice = (await res.json()).choices[0];
    const [expected] = await completionLogprobs(trained, [prompt], [choice.token_ids], {
      padId: tokenizer.padId,
    });
    assert.ok(maxAbsDiff(choice.logprobs.token_logprobs, expected!) < 1e-4);
    const [before] = await completionLogprobs(base, [prompt], [choice.token_ids], {
      padId: tokenizer.padId,
    });
    assert.ok(maxAbsDiff(before!, expected!) > 1e-4, "the step changed the policy");
  } finally {
    trained.dispose();
    base.dispose();
  }
}

const TINY_SFT = `${REPO_ROOT}checkpoints/tiny-sft`;

Deno.test("a Trainer with sampler.backend openai syncs LoRA weights to deno task serve", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await startServe(TINY_SFT, "tiny");
  try {
    const runDir = await trainAgainst(server.url, tmp, TINY_SFT, [
      "model.lora.r=4",
      "model.lora.alpha=8",
      "learner.lr=0.05",
      "sampler.openai.weight_sync=lora",
    ]);
    // The served models: the base, and the adapter of policy version 1.
    const models = await (await fetch(`${server.url}/models`)).json();
    assert.deepEqual(
      models.data.map((m: Record<string, unknown>) => [m.id, m.parent, m.policy_version]),
      [["tiny", null, 600], ["mgrpo-policy-v1", "tiny", 1]],
    );
    assert.deepEqual([...Deno.readDirSync(`${tmp}/sync`)].map((e) => e.name), ["mgrpo-policy-v1"]);
    await assertServesCheckpoint(server.url, "mgrpo-policy-v1", `${runDir}/checkpoint-1`, TINY_SFT);
  } finally {
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a Trainer with weight_sync checkpoint reloads deno task serve", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await startServe(TINY_SFT, "tiny");
  try {
    const runDir = await trainAgainst(server.url, tmp, TINY_SFT, [
      "learner.lr=0.005",
      "sampler.openai.weight_sync=checkpoint",
    ]);
    const models = await (await fetch(`${server.url}/models`)).json();
    assert.deepEqual(
      models.data.map((m: Record<string, unknown>) => [m.id, m.parent, m.policy_version]),
      [["tiny", null, 1]],
    );
    assert.deepEqual([...Deno.readDirSync(`${tmp}/sync`)].map((e) => e.name), ["checkpoint-v1"]);
    await assertServesCheckpoint(server.url, "tiny", `${runDir}/checkpoint-1`, TINY_SFT);
  } finally {
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a Trainer sends MGRPO_API_KEY with its requests and weight syncs to a serve started with it", async () => {
  const tmp = await Deno.makeTempDir();
  const server = await startServeTask(TINY_SFT, [
    "--model-name",
    "tiny",
    "--set",
    "model.backend=cpu",
  ], {
    MGRPO_API_KEY: "sync-key",
  });
  const saved = Deno.env.get("MGRPO_API_KEY");
  try {
    // Without the key the server refuses; the run finds it in its own environment.
    const denied = await fetch(`${server.url}/models`);
    assert.equal(denied.status, 401);
    await denied.body?.cancel();
    Deno.env.set("MGRPO_API_KEY", "sync-key");
    await trainAgainst(server.url, tmp, TINY_SFT, ["sampler.openai.weight_sync=checkpoint"]);
    const models = await (await fetch(`${server.url}/models`, {
      headers: { Authorization: "Bearer sync-key" },
    })).json();
    assert.equal(models.data[0].policy_version, 1, "the synced checkpoint was loaded");
  } finally {
    if (saved === undefined) Deno.env.delete("MGRPO_API_KEY");
    else Deno.env.set("MGRPO_API_KEY", saved);
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("deno task serve exits 2 on a bad --port and on a missing checkpoint", async () => {
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [...(await serveArgs()), ...args],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  };
  const bad = await run(["--checkpoint", TINY_SFT, "--port", "http"]);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /Invalid value for --port: must be an integer in 0\.\.65535: current value is "http"/,
  );
  const missing = await run(["--checkpoint", "/nonexistent/ckpt", "--set", "model.backend=cpu"]);
  assert.equal(missing.code, 2);
  assert.equal(
    missing.stderr,
    'Cannot load the model of --checkpoint "/nonexistent/ckpt": the folder does not exist\n',
  );
});
