/**
 * `deno task bench`: throughput of the hot paths on this machine, printed as a table and one
 * final JSON line
 * `{"learner_tokens_per_s", "learner_gflops", "peak_gflops", "sampler_tokens_per_s",
 * "runtime_overhead_frac", "verifier_checks_per_s", "backend", ...}` (the top-level figures
 * are the embedded default's; `presets` has both models).
 *
 * - **Learner**: one optimizer step (forward, backward, AdamW) on a packed batch of the
 *   default task's worked solutions, for the embedded default model (64 rows) and a larger
 *   preset (d_model 512, 8 layers; 8 rows). Model FLOPs = 6 · parameters · tokens (the
 *   linear layers, forward and backward) + 12 · L · d · T² per row (attention scores and
 *   mixing, forward and backward).
 * - **Peak**: this machine's fp32 matmul peak, measured in the same run by the best tool at
 *   hand: numpy's sgemm (OpenBLAS) at n = 2048 when `python3 -c "import numpy"` works (or the
 *   interpreter given by `--python`), else the
 *   theoretical peak from `/proc/cpuinfo` (cores × 32 FLOP/cycle with AVX2 and FMA × clock),
 *   said as such. tfjs-wasm's own best (a plain 1024² matmul) is printed beside it.
 * - **Sampler**: KV-cache generation of 32 new tokens at batch 1, 16, 64 and 128.
 * - **Runtime overhead**: a real 4-step GRPO run of the default (`cli/train.ts`, no
 *   evaluation, no control server); the share of a step (steps 2-4) not spent inside an
 *   actor's handler: channels, scheduling, the driver.
 * - **Verifier**: integer-answer checks per second.
 *
 * Figures are medians of `--repeats` timed runs after one warm-up run.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type BackendName, initBackend } from "../model/backend.ts";
import { setFastBatchMatMul } from "../model/wasm_kernels.ts";
import { Transformer } from "../model/transformer.ts";
import { TINY_MODEL_CONFIG } from "../model/model_config.ts";
import { CharTokenizer } from "../model/char_tokenizer.ts";
import { generate, packBatch } from "../model/sampling.ts";
import { AdamW } from "../model/optimizer.ts";
import { Rng } from "../util/rng.ts";
import { makeProblems, workedSolution } from "../data/arithmetic.ts";
import { verifyIntegerAnswer } from "../verifiers/integer_answer.ts";
import { TRAIN_RUN_ARGS } from "../cli/common.ts";
import { formatTable } from "../util/table.ts";
import { arithmeticOptions, promptRenderer, REPO_ROOT } from "../training/setup.ts";
import { loadConfig } from "../training/config.ts";
import { LARGE_MODEL_CONFIG, median, optimizerStep, timeIt as timeRepeats } from "./timing.ts";
import { benchArgs } from "./cli.ts";

const values = benchArgs(
  "bench",
  "Learner and sampler speed of the default model and a larger preset, against this\n" +
    "machine's sgemm peak; runtime overhead of a real run; verifier throughput.",
  {
    backend: {
      type: "string",
      default: "wasm",
      placeholder: "NAME",
      help: "Tensor backend (wasm, tensorflow, cpu)",
    },
    repeats: {
      type: "string",
      default: "3",
      placeholder: "N",
      help: "Timed runs per figure (median)",
    },
    "skip-large": { type: "boolean", help: "Leave out the larger preset" },
    "skip-runtime": { type: "boolean", help: "Leave out the runtime-overhead run" },
    "stock-matmul": { type: "boolean", help: "tfjs-wasm's own batched matmul instead of ours" },
    python: {
      type: "string",
      default: "python3",
      placeholder: "PATH",
      help: "Python with numpy for the sgemm peak",
    },
    threads: {
      type: "string",
      default: "0",
      placeholder: "N",
      help: "wasm threads (0 = one per core)",
    },
  },
);
const repeats = Number(values.repeats);
const timeIt = (f: () => Promise<void> | void) => timeRepeats(async () => await f(), repeats);

const threads = Number(values.threads) || navigator.hardwareConcurrency; // 0 = one per core
const backend = await initBackend(values.backend as BackendName, { wasmThreads: threads });
if (values["stock-matmul"]) setFastBatchMatMul(false);
const tokenizer = new CharTokenizer();
const config = loadConfig(undefined);
const render = promptRenderer(config.prompts);
const rows: (string | number)[][] = [];

/** A packed batch of `n` default-task prompts with their worked solutions. */
function taskBatch(n: number) {
  const problems = makeProblems(7, n, arithmeticOptions(config.task));
  const prompts = problems.map((p) => tokenizer.encode(render(p.question)));
  const completions = problems.map((p) => [
    ...tokenizer.encode(workedSolution(p)),
    tokenizer.imEndId,
  ]);
  return { problems, prompts, batch: packBatch(prompts, completions, tokenizer.padId) };
}

interface LearnerFigures {
  parameters: number;
  rows: number;
  tokens: number;
  step_s: number;
  tokens_per_s: number;
  gflops: number;
}

/** One optimizer step of `model` on `n` rows, timed. */
async function learner(model: Transformer, n: number): Promise<LearnerFigures> {
  const { batch } = taskBatch(n);
  const optimizer = new AdamW(model.params, { weightDecay: 0 });
  const seconds = await timeIt(optimizerStep(model, batch, optimizer));
  optimizer.dispose();
  const tokens = batch.n * batch.t;
  const c = model.config;
  const flops = 6 * model.numParameters * tokens +
    12 * c.num_hidden_layers * c.hidden_size * batch.t * batch.t * batch.n;
  return {
    parameters: model.numParameters,
    rows: batch.n,
    tokens,
    step_s: seconds,
    tokens_per_s: tokens / seconds,
    gflops: flops / seconds / 1e9,
  };
}

/** Sampled tokens per second of `model` at each batch size (32 new tokens, KV cache). */
async function sampler(model: Transformer, batches: number[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const b of batches) {
    const { prompts } = taskBatch(b);
    let sampled = 0;
    const seconds = await timeIt(async () => {
      const gens = await generate(model, prompts, {
        maxNewTokens: 32,
        stopIds: [],
        padId: tokenizer.padId,
        rng: new Rng(1),
      });
      sampled = gens.reduce((a, g) => a + g.tokens.length, 0);
    });
    out[String(b)] = sampled / seconds;
  }
  return out;
}

/** fp32 matmul GFLOP/s of numpy (OpenBLAS), or the theoretical peak from /proc/cpuinfo. */
async function peak(): Promise<{ gflops: number | null; source: string }> {
  const script = [
    "import numpy as np, time",
    "n = 2048",
    "a = np.random.rand(n, n).astype(np.float32); b = np.random.rand(n, n).astype(np.float32)",
    "a @ b",
    "ts = []",
    "for _ in range(5):",
    "    t = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t)",
    "ts.sort(); print(2 * n ** 3 / ts[2] / 1e9, np.__version__)",
  ].join("\n");
  try {
    const out = await new Deno.Command(values.python, { args: ["-c", script], stderr: "null" })
      .output();
    if (out.success) {
      const [gflops, version] = new TextDecoder().decode(out.stdout).trim().split(" ");
      return { gflops: Number(gflops), source: `numpy ${version} sgemm n=2048 (OpenBLAS)` };
    }
  } catch {
    // no python3
  }
  try {
    // Deno reads /proc only with --allow-all; cat needs only --allow-run.
    const cat = await new Deno.Command("cat", { args: ["/proc/cpuinfo"], stderr: "null" }).output();
    const info = new TextDecoder().decode(cat.stdout);
    const cores = (info.match(/^processor\s*:/gm) ?? []).length;
    const mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(info)?.[1]);
    const flags = /^flags\s*:(.*)$/m.exec(info)?.[1] ?? "";
    const perCycle = / avx512f/.test(flags)
      ? 64
      : / avx2/.test(flags) && / fma/.test(flags)
      ? 32
      : 8;
    if (cores > 0 && mhz > 0) {
      return {
        gflops: (cores * perCycle * mhz) / 1000,
        source: `theoretical: ${cores} cores x ${perCycle} FLOP/cycle x ${mhz} MHz (no numpy)`,
      };
    }
  } catch {
    // not Linux
  }
  return { gflops: null, source: "unknown (no numpy, no /proc/cpuinfo)" };
}

/** GFLOP/s of one plain n×n matmul on the current backend (median of 5). */
async function tfjsMatmul(n: number): Promise<number> {
  const a = tf.randomUniform([n, n]), b = tf.randomUniform([n, n]);
  const times: number[] = [];
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
    if (i > 0) times.push((performance.now() - t0) / 1000);
  }
  tf.dispose([a, b]);
  return 2 * n ** 3 / median(times) / 1e9;
}

/** Mean share of a step not spent in actor handlers, over steps 2-4 of a real GRPO run. */
async function runtimeOverhead(): Promise<{ frac: number; step_s: number }> {
  const dir = await Deno.makeTempDir({ prefix: "bench_runtime_" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        ...TRAIN_RUN_ARGS,
        "--config",
        `${REPO_ROOT}configs/tiny-grpo.yaml`,
        "--set",
        "run.steps=4",
        "--set",
        "eval.before=false",
        "--set",
        "eval.after=false",
        "--set",
        "control.enabled=false",
        "--set",
        `model.backend=${values.backend}`,
        "--set",
        `model.wasm_threads=${threads}`,
        "--run-dir",
        dir,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `Cannot measure the runtime overhead: train failed: ${
          new TextDecoder().decode(out.stderr).slice(-1000)
        }`,
      );
    }
    const steps = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n")
      .map((l) => JSON.parse(l) as Record<string, number>)
      .filter((m) => "time/step" in m && m.step! >= 2);
    const sum = (key: string) => steps.reduce((a, m) => a + (m[key] ?? 0), 0);
    return {
      frac: sum("time/runtime_overhead") / sum("time/step"),
      step_s: sum("time/step") / steps.length,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// --- run ---

const machinePeak = await peak();
const wasmMatmul = await tfjsMatmul(1024);
rows.push(["peak fp32 matmul", machinePeak.gflops?.toFixed(1) ?? "?", machinePeak.source]);
rows.push([
  "tfjs matmul 1024²",
  wasmMatmul.toFixed(1),
  `GFLOP/s, backend ${backend}, ${threads} thread${threads > 1 ? "s" : ""}`,
]);

const tiny = Transformer.create({ ...TINY_MODEL_CONFIG, vocab_size: tokenizer.vocabSize }, {
  seed: 1,
});
const tinyLearner = await learner(tiny, 64);
const tinySampler = await sampler(tiny, [1, 16, 64, 128]);
tiny.dispose();
const pct = (g: number) =>
  machinePeak.gflops ? `${(100 * g / machinePeak.gflops).toFixed(1)}% of peak` : "";
rows.push([
  "default: learner step",
  `${tinyLearner.step_s.toFixed(2)} s`,
  `${tinyLearner.rows} rows, ${tinyLearner.tokens} tokens, ${tinyLearner.parameters} parameters`,
]);
rows.push([
  "default: learner tokens/s",
  tinyLearner.tokens_per_s.toFixed(0),
  `model GFLOP/s ${tinyLearner.gflops.toFixed(2)}, ${pct(tinyLearner.gflops)}`,
]);
for (const [b, v] of Object.entries(tinySampler)) {
  rows.push([`default: sampler tokens/s, batch ${b}`, v.toFixed(0), "32 new tokens, KV cache"]);
}

let large: { learner: LearnerFigures; sampler: Record<string, number> } | undefined;
if (!values["skip-large"]) {
  const model = Transformer.create({ ...LARGE_MODEL_CONFIG, vocab_size: tokenizer.vocabSize }, {
    seed: 1,
  });
  large = { learner: await learner(model, 8), sampler: await sampler(model, [1, 16]) };
  model.dispose();
  rows.push([
    "large: learner step",
    `${large.learner.step_s.toFixed(2)} s`,
    `${large.learner.rows} rows, ${large.learner.tokens} tokens, ${large.learner.parameters} parameters`,
  ]);
  rows.push([
    "large: learner tokens/s",
    large.learner.tokens_per_s.toFixed(0),
    `model GFLOP/s ${large.learner.gflops.toFixed(2)}, ${pct(large.learner.gflops)}`,
  ]);
  for (const [b, v] of Object.entries(large.sampler)) {
    rows.push([`large: sampler tokens/s, batch ${b}`, v.toFixed(0), "32 new tokens, KV cache"]);
  }
}

// Verifier: checks per second on worked solutions.
const { problems } = taskBatch(64);
const texts = problems.map((p) => workedSolution(p));
const verifierS = await timeIt(() => {
  for (let i = 0; i < 50; i++) {
    for (let j = 0; j < texts.length; j++) verifyIntegerAnswer(texts[j]!, problems[j]!.answer);
  }
});
const verifierPerS = (50 * texts.length) / verifierS;
rows.push(["verifier checks/s", verifierPerS.toFixed(0), "integer answer after </think>"]);

const overhead = values["skip-runtime"] ? undefined : await runtimeOverhead();
if (overhead) {
  rows.push([
    "runtime overhead",
    `${(100 * overhead.frac).toFixed(2)}%`,
    `of a GRPO step of the default (${overhead.step_s.toFixed(2)} s), steps 2-4`,
  ]);
}

console.log(formatTable(["measure", "value", "detail"], rows));
console.log(JSON.stringify({
  backend,
  wasm_threads: threads,
  fast_batch_matmul: !values["stock-matmul"],
  learner_tokens_per_s: tinyLearner.tokens_per_s,
  learner_gflops: tinyLearner.gflops,
  peak_gflops: machinePeak.gflops,
  peak_source: machinePeak.source,
  tfjs_matmul_gflops: wasmMatmul,
  sampler_tokens_per_s: tinySampler["64"],
  runtime_overhead_frac: overhead?.frac ?? null,
  verifier_checks_per_s: verifierPerS,
  presets: {
    default: { learner: tinyLearner, sampler_tokens_per_s: tinySampler },
    ...(large ? { large: { learner: large.learner, sampler_tokens_per_s: large.sampler } } : {}),
  },
}));
Deno.exit(0); // threaded wasm workers would keep the process alive
