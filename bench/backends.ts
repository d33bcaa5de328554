/**
 * Speed of each tensor backend on the run's own work: the tiny preset model
 * (`TINY_MODEL_CONFIG`, 155k parameters), one Learner micro-batch (forward and backward of
 * the mean log-prob of 8 sequences of 64 tokens) and one Sampler batch (16 prompts, 32 new
 * tokens with the KV cache, logits read back every step).
 *
 * ```
 * XDG_RUNTIME_DIR=$(mktemp -d) npx -y deno@2.9.6 run --allow-read --allow-write --allow-env --allow-run bench/backends.ts [backend...]
 * ```
 *
 * Each backend runs in a process of its own (tfjs' backend is global); default: cpu, wasm,
 * webgpu when Deno finds an adapter, and tensorflow when tfjs-node is installed. Prints a
 * Markdown table of medians of 3 runs after one warm-up.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type BackendName, initBackend, probeWebGpu } from "../model/backend.ts";
import { TINY_MODEL_CONFIG } from "../model/model_config.ts";
import { batchLogprobs, generate, packBatch } from "../model/sampling.ts";
import { Transformer } from "../model/transformer.ts";
import { Rng } from "../util/rng.ts";
import { timeIt } from "./timing.ts";

/** What one backend measured. */
interface BackendSpeed {
  backend: string;
  /** Seconds per Learner micro-batch (forward + backward). */
  trainStepS: number;
  /** Trained tokens per second. */
  trainTokensPerS: number;
  /** Seconds per Sampler batch. */
  sampleS: number;
  /** Sampled tokens per second. */
  sampleTokensPerS: number;
}

const TRAIN_ROWS = 8, TRAIN_LEN = 64, SAMPLE_ROWS = 16, SAMPLE_NEW = 32;

async function measure(backend: string): Promise<BackendSpeed> {
  const name = await initBackend(backend as BackendName);
  const model = Transformer.create(TINY_MODEL_CONFIG, { seed: 1 });
  const seq = (n: number, from: number) => Array.from({ length: n }, (_, i) => 1 + (from + i) % 99);
  const batch = packBatch(
    Array.from({ length: TRAIN_ROWS }, (_, r) => seq(16, r)),
    Array.from({ length: TRAIN_ROWS }, (_, r) => seq(TRAIN_LEN - 15, r + 3)),
    0,
  );
  const params = [...model.params.values()];
  const trainStepS = await timeIt(async () => {
    const { value, grads } = tf.variableGrads(
      () => tf.neg(tf.mean(batchLogprobs(model, batch).logp)) as tf.Scalar,
      params,
    );
    await value.data();
    for (const g of Object.values(grads)) await g.data();
    tf.dispose([value, ...Object.values(grads)]);
  }, 3);
  const prompts = Array.from({ length: SAMPLE_ROWS }, (_, r) => seq(12, r));
  const sampleS = await timeIt(async () => {
    await generate(model, prompts, {
      maxNewTokens: SAMPLE_NEW,
      stopIds: [],
      padId: 0,
      rng: new Rng(2),
    });
  }, 3);
  model.dispose();
  return {
    backend: name,
    trainStepS,
    trainTokensPerS: (TRAIN_ROWS * TRAIN_LEN) / trainStepS,
    sampleS,
    sampleTokensPerS: (SAMPLE_ROWS * SAMPLE_NEW) / sampleS,
  };
}

async function main(): Promise<void> {
  if (Deno.args[0] === "--child") {
    console.log(JSON.stringify(await measure(Deno.args[1]!)));
    Deno.exit(0);
  }
  let backends = Deno.args;
  if (backends.length === 0) {
    const gpu = await probeWebGpu();
    const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
    backends = [
      "cpu",
      "wasm",
      ...(gpu.available ? ["webgpu"] : []),
      ...("@tensorflow/tfjs-node" in (config.imports ?? {}) ? ["tensorflow"] : []),
    ];
    if (gpu.available) console.error(`webgpu adapter: ${gpu.description}`);
  }
  const rows: string[] = [];
  for (const backend of backends) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        import.meta.filename!,
        "--child",
        backend,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (out.code !== 0) {
      rows.push(`| ${backend} | failed (exit ${out.code}) | | | |`);
      continue;
    }
    const r: BackendSpeed = JSON.parse(
      new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!,
    );
    rows.push(
      `| ${r.backend} | ${(r.trainStepS * 1000).toFixed(0)} | ${r.trainTokensPerS.toFixed(0)} | ` +
        `${(r.sampleS * 1000).toFixed(0)} | ${r.sampleTokensPerS.toFixed(0)} |`,
    );
    console.error(rows.at(-1));
  }
  console.log(
    [
      `| backend | Learner micro-batch ${TRAIN_ROWS}×${TRAIN_LEN} (ms) | train tokens/s | ` +
      `Sampler ${SAMPLE_ROWS}×${SAMPLE_NEW} (ms) | sampled tokens/s |`,
      "|---|---|---|---|---|",
      ...rows,
    ].join("\n"),
  );
}

if (import.meta.main) await main();
