/**
 * `deno task test:slow` (not run by CI): one MGRPO step on a model folder with Qwen2.5-0.5B's
 * exact configuration (494M parameters) and random weights, on CPU. Prints the step time and
 * the peak memory of the training process, the figures docs/hugging-face.md quotes.
 *
 * The folder is `MGRPO_SLOW_MODEL` when set (e.g. one written by
 * `tools/make_random_hf_model.py`, or a real downloaded checkpoint), else one this test writes
 * with the same configuration (bf16 safetensors, the tiny Qwen2 tokenizer fixture).
 * `MGRPO_SLOW_SETS` adds `--set` overrides (space-separated), e.g. `model.backend=cpu`.
 */
import assert from "node:assert/strict";
import { REPO_ROOT, sleep } from "../helpers.ts";
import { TRAIN_RUN_ARGS } from "../../cli/common.ts";
import { initBackend } from "../../model/backend.ts";
import { Transformer } from "../../model/transformer.ts";
import { QWEN25_05B_CONFIG } from "../../model/model_config.ts";
import { saveHfModel } from "../../model/hf.ts";

async function writeModel(dir: string): Promise<void> {
  await initBackend("wasm");
  const model = Transformer.create(QWEN25_05B_CONFIG, { seed: 0, trainable: false });
  const tokenizer = `${REPO_ROOT}tests/fixtures/tokenizers/tiny-qwen2`;
  await saveHfModel(dir, model, {
    dtype: "bfloat16",
    tokenizerFiles: {
      "tokenizer.json": await Deno.readFile(`${tokenizer}/tokenizer.json`),
      "tokenizer_config.json": await Deno.readFile(`${tokenizer}/tokenizer_config.json`),
    },
    // The tokenizer fixture's ids (Qwen's real ones, 151643 and 151645, are beyond its 1,005).
    eosTokenId: 1002,
    padTokenId: 1000,
  });
  model.dispose();
}

/** Peak resident memory (VmHWM) of a process, in MiB. */
async function peakMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

Deno.test({
  name: "one MGRPO step on a Qwen2.5-0.5B-shaped model folder (random weights)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "slow-qwen-" });
    try {
      let folder = Deno.env.get("MGRPO_SLOW_MODEL");
      if (!folder) {
        folder = `${tmp}/model`;
        const t0 = performance.now();
        await writeModel(folder);
        console.log(`wrote ${folder} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      }
      const sets = [
        `model.path=${folder}`,
        "run.steps=1",
        "sampler.prompts_per_step=1",
        "grpo.num_generations=2",
        "mgrpo.num_corrections=1",
        "sampler.max_new_tokens=16",
        "grpo.beta=0", // no reference copy: 2 GB less
        "eval.before=false",
        "eval.after=false",
        "control.enabled=false",
        "sampler.share_weights=true", // one copy of 494M parameters
        // Full fine-tuning cannot fit the wasm backend's 4 GB heap (2 GB of weights, 4 GB of
        // AdamW moments): LoRA trains 4.4M adapter parameters on the frozen base.
        "model.lora.r=8",
        "learner.micro_batch_size=1",
        "learner.gradient_checkpointing=true", // activations of one layer at a time
        // e.g. "model.backend=cpu": space-separated extra overrides
        ...(Deno.env.get("MGRPO_SLOW_SETS")?.split(" ").filter((s) => s) ?? []),
      ];
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          ...TRAIN_RUN_ARGS,
          "--config",
          "configs/smoke-mgrpo.yaml",
          ...sets.flatMap((s) => ["--set", s]),
          "--run-dir",
          `${tmp}/run`,
        ],
        cwd: REPO_ROOT,
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const output = child.output();
      let peak = 0;
      const started = performance.now();
      let done = false;
      output.finally(() => (done = true));
      while (!done) {
        peak = Math.max(peak, await peakMiB(child.pid).catch(() => peak));
        await sleep(200);
      }
      const out = await output;
      const wall = (performance.now() - started) / 1000;
      const log = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, log);
      const [record] = (await Deno.readTextFile(`${tmp}/run/metrics.jsonl`)).split("\n")
        .filter((l) => l).map((l) => JSON.parse(l) as Record<string, number>);
      assert.equal(record!.step, 1);
      assert.ok(Number.isFinite(record!["loss/policy"]), JSON.stringify(record));
      const figures = {
        parameters: 494032768,
        step_s: record!["time/step"],
        sampler_s: record!["time/sampler"],
        learner_s: record!["time/learner"],
        process_wall_s: wall,
        peak_rss_mib: Math.round(peak),
      };
      console.log(JSON.stringify(figures));
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
