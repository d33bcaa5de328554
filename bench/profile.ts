/**
 * `deno task bench:profile [--backend tensorflow|wasm]`: where a Learner step and a Sampler
 * decode step spend their time, on one backend. For each of the default model (155k
 * parameters, 64 rows) and the larger preset (25.2M parameters, 8 rows) it reports:
 *
 * - the kernels one optimizer step (forward, backward, AdamW) and one decode step (batch 1
 *   and 16, KV cache) dispatch, from `tf.profile`;
 * - the wall time of each;
 * - the cost of dispatching one tiny kernel on this backend (a 1-element add, median of 2,000),
 *   so that `kernels × dispatch` says how much of a step is paid for crossing into the backend
 *   rather than for arithmetic;
 * - the time the step's matmuls would take at the backend's own plain-matmul speed, which with
 *   the dispatch estimate explains what is left.
 *
 * Prints a table and one JSON line.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type BackendName, initBackend } from "../model/backend.ts";
import { Transformer } from "../model/transformer.ts";
import { TINY_MODEL_CONFIG } from "../model/model_config.ts";
import { CharTokenizer } from "../model/char_tokenizer.ts";
import { generate, packBatch } from "../model/sampling.ts";
import { AdamW } from "../model/optimizer.ts";
import { makeProblems, workedSolution } from "../data/arithmetic.ts";
import { Rng } from "../util/rng.ts";
import { LARGE_MODEL_CONFIG, median, optimizerStep, timeIt } from "./timing.ts";
import { benchArgs } from "./cli.ts";

const values = benchArgs(
  "bench:profile",
  "Where a learner step spends its time: kernels, dispatch and matmul time, per backend.",
  {
    backend: { type: "string", default: "tensorflow", placeholder: "NAME", help: "Tensor backend" },
    threads: {
      type: "string",
      default: "0",
      placeholder: "N",
      help: "wasm threads (0 = one per core)",
    },
  },
);
const backend = await initBackend(values.backend as BackendName, {
  wasmThreads: Number(values.threads),
});
const tokenizer = new CharTokenizer();

function batchOf(n: number) {
  const problems = makeProblems(7, n, { minSteps: 2, maxSteps: 2, maxOperand: 9 });
  const prompts = problems.map((p) => tokenizer.encode(`${p.question}\n`));
  const completions = problems.map((p) => [
    ...tokenizer.encode(workedSolution(p)),
    tokenizer.imEndId,
  ]);
  return { prompts, batch: packBatch(prompts, completions, tokenizer.padId) };
}

/** Kernel count and the matmul FLOPs among them, from tf.profile's input shapes. */
async function kernels(f: () => Promise<void>): Promise<{ count: number; matmulFlops: number }> {
  let count = 0, matmulFlops = 0;
  const info = await tf.profile(async () => await f());
  for (const k of info.kernels) {
    count++;
    if (k.name === "BatchMatMul" || k.name === "_FusedMatMul" || k.name === "MatMul") {
      const out = k.outputShapes[0] ?? [];
      const a = k.inputShapes[0] ?? [];
      const inner = a.length >= 2 ? Math.min(a[a.length - 1]!, a[a.length - 2]!) : 0;
      // Output elements × 2 × the contracted size: contracted = the dimension a and b share.
      const b = k.inputShapes[1] ?? [];
      const shared = [a[a.length - 1], a[a.length - 2]].find((d) =>
        d === b[b.length - 1] || d === b[b.length - 2]
      ) ?? inner;
      matmulFlops += 2 * out.reduce((x, y) =>
        x * y, 1) *
        (shared ?? 0);
    }
  }
  return { count, matmulFlops };
}

// The cost of one dispatch: a 1-element add, read back every 100.
const one = tf.scalar(1);
const dispatchTimes: number[] = [];
for (let r = 0; r < 20; r++) {
  const t0 = performance.now();
  let x: tf.Tensor = one.clone();
  for (let i = 0; i < 100; i++) {
    const y = tf.add(x, one);
    x.dispose();
    x = y;
  }
  await x.data();
  x.dispose();
  dispatchTimes.push((performance.now() - t0) / 100 / 1000);
}
const dispatchS = median(dispatchTimes.slice(2));

// The backend's own plain matmul speed at 1024².
const a = tf.randomNormal([1024, 1024]);
const matmulS = await timeIt(async () => {
  const c = tf.matMul(a, a);
  await c.data();
  c.dispose();
}, 5);
a.dispose();
const matmulGflops = 2 * 1024 ** 3 / matmulS / 1e9;

const rows: string[][] = [];
const result: Record<string, unknown> = {
  backend,
  dispatch_us: dispatchS * 1e6,
  matmul_1024_gflops: matmulGflops,
};
for (
  const [name, config, n] of [["default", TINY_MODEL_CONFIG, 64], [
    "large",
    LARGE_MODEL_CONFIG,
    8,
  ]] as const
) {
  const model = Transformer.create({ ...config, vocab_size: tokenizer.vocabSize }, { seed: 1 });
  const { prompts, batch } = batchOf(n);
  const optimizer = new AdamW(model.params, { weightDecay: 0 });
  const step = optimizerStep(model, batch, optimizer);
  const learnerS = await timeIt(step, 3);
  const lk = await kernels(step);
  const entry: Record<string, unknown> = {
    learner_step_s: learnerS,
    learner_kernels: lk.count,
    learner_dispatch_s: lk.count * dispatchS,
    learner_matmul_s_at_plain_speed: lk.matmulFlops / (matmulGflops * 1e9),
  };
  rows.push([
    `${name}: learner step`,
    `${learnerS.toFixed(3)} s`,
    `${lk.count} kernels × ${(dispatchS * 1e6).toFixed(1)} µs = ${
      (lk.count * dispatchS).toFixed(3)
    } s dispatch; matmuls at the 1024² speed ${
      (lk.matmulFlops / (matmulGflops * 1e9)).toFixed(3)
    } s`,
  ]);
  for (const b of [1, 16]) {
    const ps = prompts.slice(0, Math.min(b, prompts.length));
    while (ps.length < b) ps.push(prompts[ps.length % prompts.length]!);
    const gen = (tokens: number) => async () => {
      await generate(model, ps, {
        maxNewTokens: tokens,
        stopIds: [],
        padId: tokenizer.padId,
        rng: new Rng(1),
      });
    };
    // One decode step = (33 new tokens − 1 new token) / 32: the prefill cancels out.
    const perToken = (await timeIt(gen(33), 3) - await timeIt(gen(1), 3)) / 32;
    const k33 = await kernels(gen(33)), k1 = await kernels(gen(1));
    const perTokenKernels = (k33.count - k1.count) / 32;
    entry[`decode_b${b}_s`] = perToken;
    entry[`decode_b${b}_kernels`] = perTokenKernels;
    rows.push([
      `${name}: decode step, batch ${b}`,
      `${(perToken * 1000).toFixed(2)} ms`,
      `${perTokenKernels.toFixed(0)} kernels × ${(dispatchS * 1e6).toFixed(1)} µs = ${
        (perTokenKernels * dispatchS * 1000).toFixed(2)
      } ms dispatch`,
    ]);
  }
  result[name] = entry;
  optimizer.dispose();
  model.dispose();
}
console.log(
  `backend ${backend}: one tiny kernel ${(dispatchS * 1e6).toFixed(1)} µs; plain 1024² matmul ${
    matmulGflops.toFixed(1)
  } GFLOP/s`,
);
for (const r of rows) console.log(r.join("  |  "));
console.log(JSON.stringify(result));
Deno.exit(0);
