/**
 * Side-by-side training-step benchmark: our tfjs Learner step against the same model written
 * in `@jax-js/jax`, in one process, on the shapes of `bench/bench.ts` (issue 7).
 *
 * ```
 * deno run --allow-read --allow-write --allow-env --allow-run bench/jaxjs_step.ts \
 *   [--preset default|large|all] [--rounds 5] [--warmup 2] [--threads 0] [--append] \
 *   [--out docs/perf/jaxjs.json] [--jax-embed take|onehot] [--jax-attention matmul|einsum|sdpa]
 * ```
 *
 * `--threads` (0 = one per core) is given to both libraries: tfjs-wasm's thread count and the
 * size of jax-js's worker pool. `--append` adds this run to the file's `runs` instead of
 * replacing them.
 *
 * - **Model**: `model/transformer.ts` re-implemented op for op in jax-js (token embedding,
 *   pre-norm RMSNorm blocks, q/k/v projections with bias, RoPE, grouped-query attention with
 *   an additive causal mask, SwiGLU MLP, final RMSNorm, tied LM head).
 * - **Step**: forward, loss `-mean(log π(target))` over every position of the packed batch
 *   (as `bench.ts`), gradient of every parameter, and an AdamW update (β 0.9/0.999, ε 1e-8,
 *   weight decay 0, lr 1e-4, as `bench.ts`). The jax-js step is one `jit(...)` of all of it;
 *   the tfjs step is `bench.ts`'s: `tf.variableGrads` + `model/optimizer.ts`'s AdamW.
 * - **Same model check**: the jax-js parameters are copied from the tfjs model; the loss and
 *   every gradient are compared before any update, and the loss again after both libraries
 *   trained the same number of steps on the same batch.
 * - **Timing**: after warm-up, rounds alternate tfjs, jax-js, tfjs, jax-js...; each timed step
 *   ends when the loss and (for jax-js) every updated array are ready. Medians are reported,
 *   with model GFLOP/s counted as in `bench.ts`: 6 · parameters · tokens + 12 · L · d · T² · rows.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
// Inline on purpose: jax-js is only this benchmark's dependency, not the project's (deno.json).
// The version is repeated in JAX_VERSION below; keep them equal.
// deno-lint-ignore no-import-prefix
import type * as JaxModule from "npm:@jax-js/jax@0.1.25";
import process from "node:process";
import { initBackend } from "../model/backend.ts";
import { Transformer } from "../model/transformer.ts";
import { type ModelConfig, TINY_MODEL_CONFIG } from "../model/model_config.ts";
import { CharTokenizer } from "../model/char_tokenizer.ts";
import { batchLogprobs, packBatch, type TokenBatch } from "../model/sampling.ts";
import { ropeTables } from "../model/ops.ts";
import { AdamW } from "../model/optimizer.ts";
import { makeProblems, workedSolution } from "../data/arithmetic.ts";
import { formatTable } from "../util/table.ts";
import { arithmeticOptions, promptRenderer, REPO_ROOT } from "../training/setup.ts";
import { loadConfig } from "../training/config.ts";
import { LARGE_MODEL_CONFIG, median } from "./timing.ts";
import { benchArgs } from "./cli.ts";

/** The jax-js version imported above. */
const JAX_VERSION = "0.1.25";

type JArray = JaxModule.Array;
/** Parameters (or AdamW moments) by Hugging Face name, linear weights `[in, out]`. */
type Params = { [name: string]: JArray };
/** The constant inputs of one jax-js step. */
type JaxBatch = {
  /** Token ids, int32 `[N·T]`. */
  ids: JArray;
  /** Target ids, int32 `[N·T]`. */
  targets: JArray;
  /** RoPE cos rows, `[1, T, 1, hd]`. */
  cos: JArray;
  /** RoPE sin rows, `[1, T, 1, hd]`. */
  sin: JArray;
  /** Additive causal mask `[T, T]`: 0 on and below the diagonal, -1e9 above. */
  mask: JArray;
};
/** Per-step AdamW scalars, passed as arrays so the jitted step is compiled once. */
type Hyper = { stepSize: JArray; sqrtBiasCorrection2: JArray };

const values = benchArgs(
  "bench:jaxjs",
  "A learner step written with jax-js beside ours, on the same batch.",
  {
    preset: { type: "string", default: "all", placeholder: "NAME", help: "default, large or all" },
    rounds: { type: "string", default: "5", placeholder: "N", help: "Timed rounds" },
    warmup: { type: "string", default: "2", placeholder: "N", help: "Warm-up rounds" },
    threads: {
      type: "string",
      default: "0",
      placeholder: "N",
      help: "wasm threads (0 = one per core)",
    },
    out: {
      type: "string",
      default: "docs/perf/jaxjs.json",
      placeholder: "FILE",
      help: "Where the figures go",
    },
    append: { type: "boolean", help: "Append to --out instead of replacing it" },
    "jax-embed": {
      type: "string",
      default: "take",
      placeholder: "KIND",
      help: "jax-js embedding lookup",
    },
    "jax-attention": {
      type: "string",
      default: "matmul",
      placeholder: "KIND",
      help: "jax-js attention",
    },
  },
);
const rounds = Number(values.rounds);
const warmup = Number(values.warmup);
if (!(Number.isInteger(rounds) && rounds >= 1)) {
  throw new RangeError(
    `Cannot run: "--rounds" must be an integer >= 1: current value is ${rounds}`,
  );
}
if (!(Number.isInteger(warmup) && warmup >= 1)) {
  throw new RangeError(
    `Cannot run: "--warmup" must be an integer >= 1: current value is ${warmup}`,
  );
}
const presetNames = values.preset === "all" ? ["default", "large"] : [values.preset];
for (const p of presetNames) {
  if (p !== "default" && p !== "large") {
    throw new RangeError(
      `Cannot run: "--preset" must be "default", "large" or "all": current value is "${p}"`,
    );
  }
}

const jaxEmbed = values["jax-embed"], jaxAttention = values["jax-attention"];
if (jaxEmbed !== "take" && jaxEmbed !== "onehot") {
  throw new RangeError(
    `Cannot run: "--jax-embed" must be "take" or "onehot": current value is "${jaxEmbed}"`,
  );
}
if (jaxAttention !== "matmul" && jaxAttention !== "einsum" && jaxAttention !== "sdpa") {
  throw new RangeError(
    `Cannot run: "--jax-attention" must be "matmul", "einsum" or "sdpa": ` +
      `current value is "${jaxAttention}"`,
  );
}
const jaxOptions: JaxOptions = { embed: jaxEmbed, attention: jaxAttention };

const LR = 1e-4;
const BETA1 = 0.9, BETA2 = 0.999, EPS = 1e-8;

// --- backends ---

// Both libraries get `threads` threads. jax-js sizes its Web Worker pool from
// navigator.hardwareConcurrency when its module loads, hence the dynamic import.
const threads = Number(values.threads) || navigator.hardwareConcurrency; // 0 = one per core
const cores = navigator.hardwareConcurrency;
if (threads !== cores) {
  Object.defineProperty(navigator, "hardwareConcurrency", { value: threads, configurable: true });
}
// deno-lint-ignore no-import-prefix
const jax: typeof JaxModule = await import("npm:@jax-js/jax@0.1.25");
if (threads !== cores) delete (navigator as { hardwareConcurrency?: number }).hardwareConcurrency;
const np = jax.numpy;
const nn = jax.nn;

const jaxDevices = await jax.init();
if (!jaxDevices.includes("wasm")) {
  throw new Error(
    `Cannot run jax-js: its "wasm" device did not start: current devices are [${jaxDevices}]`,
  );
}
jax.defaultDevice("wasm");
// jax-js starts its Web Worker pool from a blob: URL on its first dispatch. Start it now: the
// tfjs threads shim (model/wasm_threads.ts) later rewrites string Blobs' URLs into `.cjs` files
// for node:worker_threads, which would break jax-js's module workers.
await np.ones([4096]).mul(2).data();

const tfBackend = await initBackend("wasm", { wasmThreads: threads });

const tokenizer = new CharTokenizer();
const config = loadConfig(undefined);
const render = promptRenderer(config.prompts);

const PRESETS: Record<string, { model: ModelConfig; rows: number }> = {
  default: { model: TINY_MODEL_CONFIG, rows: 64 },
  large: { model: LARGE_MODEL_CONFIG, rows: 8 },
};

/** A packed batch of `n` default-task prompts with their worked solutions (as `bench.ts`). */
function taskBatch(n: number): TokenBatch {
  const problems = makeProblems(7, n, arithmeticOptions(config.task));
  const prompts = problems.map((p) => tokenizer.encode(render(p.question)));
  const completions = problems.map((p) => [
    ...tokenizer.encode(workedSolution(p)),
    tokenizer.imEndId,
  ]);
  return packBatch(prompts, completions, tokenizer.padId);
}

// --- the model in jax-js ---

/** RMSNorm over the last axis: `x · rsqrt(mean(x²) + ε) · w`. Consumes `x` and `w`. */
function rmsNorm(x: JArray, w: JArray, eps: number): JArray {
  const variance = np.square(x.ref).mean(-1, { keepdims: true });
  return x.mul(np.reciprocal(np.sqrt(variance.add(eps)))).mul(w);
}

/** How the jax-js model computes two of its steps (same math, different jax-js ops). */
type JaxOptions = {
  /** `take`: `np.take` (gather); `onehot`: `oneHot(ids) @ table`, as `model/ops.ts`. */
  embed: "take" | "onehot";
  /**
   * `matmul`: `np.matmul` on `[B, Hkv, g·T, hd]` as `model/transformer.ts`; `einsum`: two
   * `np.einsum`s on the unpermuted layouts; `sdpa`: `nn.dotProductAttention` with the mask as bias.
   */
  attention: "matmul" | "einsum" | "sdpa";
};

/**
 * Causal grouped-query attention of `q [B, T, H, hd]` over `k`, `v` `[B, T, Hkv, hd]` with the
 * additive `mask [T, T]`; query head `i` reads key/value head `floor(i / g)`. Returns
 * `[B, T, H, hd]`-ordered values (any shape of that size). Consumes its array arguments.
 */
function attention(
  q: JArray,
  k: JArray,
  v: JArray,
  mask: JArray,
  s: {
    n: number;
    t: number;
    hkv: number;
    g: number;
    hd: number;
    scale: number;
    kind: JaxOptions["attention"];
  },
): JArray {
  const { n, t, hkv, g, hd, scale } = s;
  switch (s.kind) {
    case "matmul": {
      const qg = q.reshape([n, t, hkv, g, hd]).transpose([0, 2, 3, 1, 4])
        .reshape([n, hkv, g * t, hd]); // [B, Hkv, g·T, hd]
      const kT = k.transpose([0, 2, 3, 1]); // [B, Hkv, hd, T]
      const scores = np.matmul(qg, kT).mul(scale); // [B, Hkv, g·T, T]
      const masked = scores.reshape([n, hkv, g, t, t]).add(mask);
      const probs = nn.softmax(masked, -1).reshape([n, hkv, g * t, t]);
      const ctx = np.matmul(probs, v.transpose([0, 2, 1, 3])); // [B, Hkv, g·T, hd]
      return ctx.reshape([n, hkv, g, t, hd]).transpose([0, 3, 1, 2, 4]); // [B, T, Hkv, g, hd]
    }
    case "einsum": {
      const q5 = q.reshape([n, t, hkv, g, hd]); // [B, T, Hkv, g, hd]
      const scores = np.einsum("btkgd,bskd->bkgts", q5, k).mul(scale); // [B, Hkv, g, T, S]
      const probs = nn.softmax(scores.add(mask), -1);
      return np.einsum("bkgts,bskd->btkgd", probs, v); // [B, T, Hkv, g, hd]
    }
    case "sdpa":
      return nn.dotProductAttention(q, k, v, { bias: mask, scale }); // [B, T, H, hd]
    default:
      throw new RangeError(`Unknown attention kind: "${s.kind as string}"`);
  }
}

/**
 * `-mean(log π(target))` of the packed batch under `model/transformer.ts`'s network.
 * Consumes `p` and `b` (jax-js ownership rules).
 */
function jaxLoss(
  p: Params,
  b: JaxBatch,
  c: ModelConfig,
  shape: { n: number; t: number },
  opts: JaxOptions,
): JArray {
  const { n, t } = shape;
  const d = c.hidden_size, h = c.num_attention_heads, hkv = c.num_key_value_heads;
  const g = h / hkv, hd = d / h, half = hd / 2;
  const scale = 1 / Math.sqrt(hd);
  const { cos, sin, mask } = b;
  const w = (name: string): JArray => {
    const a = p[name];
    if (a === undefined) throw new TypeError(`Missing tensor "${name}"`);
    return a;
  };
  const table = w("model.embed_tokens.weight"); // [V, D]
  let x = opts.embed === "take"
    ? np.take(table.ref, b.ids, 0) // [B·T, D]
    : np.matmul(nn.oneHot(b.ids, c.vocab_size), table.ref); // [B·T, D], as model/ops.ts

  const rope = (y: JArray, heads: number): JArray => {
    const y4 = y.reshape([n, t, heads, hd]); // [B, T, heads, hd]
    const rotated = np.concatenate([
      y4.ref.slice([], [], [], [half]).neg(),
      y4.ref.slice([], [], [], [0, half]),
    ], 3); // rotate_half(y) = concat(-y₂, y₁)
    return y4.mul(cos.ref).add(rotated.mul(sin.ref));
  };

  for (let i = 0; i < c.num_hidden_layers; i++) {
    const l = (name: string) => w(`model.layers.${i}.${name}`);
    const linear = (xin: JArray, name: string, bias: boolean): JArray => {
      const y = np.matmul(xin, l(`${name}.weight`));
      return bias ? y.add(l(`${name}.bias`)) : y;
    };
    const qkvBias = c.attention_bias;

    // --- attention: x = x + attn(norm1(x)) ---
    const xn = rmsNorm(x.ref, l("input_layernorm.weight"), c.rms_norm_eps);
    const q = rope(linear(xn.ref, "self_attn.q_proj", qkvBias), h); // [B, T, H, hd]
    const k = rope(linear(xn.ref, "self_attn.k_proj", qkvBias), hkv); // [B, T, Hkv, hd]
    const v = linear(xn, "self_attn.v_proj", qkvBias).reshape([n, t, hkv, hd]); // [B, T, Hkv, hd]
    const merged = attention(q, k, v, mask.ref, { n, t, hkv, g, hd, scale, kind: opts.attention })
      .reshape([n * t, d]); // [B·T, H·hd]
    x = x.add(linear(merged, "self_attn.o_proj", false));

    // --- MLP: x = x + down(silu(gate(norm2(x))) · up(norm2(x))) ---
    const xm = rmsNorm(x.ref, l("post_attention_layernorm.weight"), c.rms_norm_eps);
    const gated = nn.silu(linear(xm.ref, "mlp.gate_proj", false))
      .mul(linear(xm, "mlp.up_proj", false));
    x = x.add(linear(gated, "mlp.down_proj", false));
  }
  cos.dispose();
  sin.dispose();
  mask.dispose();

  const hidden = rmsNorm(x, w("model.norm.weight"), c.rms_norm_eps);
  const head = c.tie_word_embeddings ? table.transpose() : (table.dispose(), w("lm_head.weight"));
  const logits = np.matmul(hidden, head); // [B·T, V]
  const logProbs = nn.logSoftmax(logits, -1);
  const logp = logProbs.mul(nn.oneHot(b.targets, c.vocab_size)).sum(-1); // [B·T]
  return logp.mean().neg();
}

/** Builds the constant inputs of the jax-js step from a packed batch. */
function jaxBatch(batch: TokenBatch, c: ModelConfig): JaxBatch {
  const hd = c.hidden_size / c.num_attention_heads;
  const { cos, sin } = ropeTables(batch.t, hd, c.rope_theta);
  const mask = new Float32Array(batch.t * batch.t);
  for (let i = 0; i < batch.t; i++) {
    for (let j = i + 1; j < batch.t; j++) mask[i * batch.t + j] = -1e9;
  }
  return {
    ids: np.array(new Int32Array(batch.ids), { dtype: np.int32 }),
    targets: np.array(new Int32Array(batch.targets), { dtype: np.int32 }),
    cos: np.array(new Float32Array(cos), { shape: [1, batch.t, 1, hd] }),
    sin: np.array(new Float32Array(sin), { shape: [1, batch.t, 1, hd] }),
    mask: np.array(mask, { shape: [batch.t, batch.t] }),
  };
}

/** One jitted AdamW training step: `[loss, params, m, v]` after the update. */
function makeJaxStep(c: ModelConfig, n: number, t: number) {
  return jax.jit((p: Params, m: Params, v: Params, b: JaxBatch, hyper: Hyper) => {
    const [loss, grads] = jax.valueAndGrad((pp: Params, bb: JaxBatch) =>
      jaxLoss(pp, bb, c, { n, t }, jaxOptions)
    )(
      jax.tree.ref(p),
      b,
    );
    const pNew: Params = {}, mNew: Params = {}, vNew: Params = {};
    for (const name of Object.keys(p)) {
      const gr = grads[name]!;
      const m1 = m[name]!.mul(BETA1).add(gr.ref.mul(1 - BETA1));
      const v1 = v[name]!.mul(BETA2).add(np.square(gr).mul(1 - BETA2));
      const denom = np.sqrt(v1.ref).div(hyper.sqrtBiasCorrection2.ref).add(EPS);
      pNew[name] = p[name]!.sub(m1.ref.div(denom).mul(hyper.stepSize.ref));
      mNew[name] = m1;
      vNew[name] = v1;
    }
    hyper.stepSize.dispose();
    hyper.sqrtBiasCorrection2.dispose();
    return { loss, p: pNew, m: mNew, v: vNew };
  });
}

// --- comparison helpers ---

/** The 1, 5 and 15 minute load averages (`cat`, as Deno reads /proc only with --allow-all). */
async function loadAverage(): Promise<number[] | null> {
  try {
    const out = await new Deno.Command("cat", { args: ["/proc/loadavg"], stderr: "null" }).output();
    return new TextDecoder().decode(out.stdout).trim().split(/\s+/).slice(0, 3).map(Number);
  } catch {
    return null; // not Linux
  }
}

/** Relative L2 distance `‖a - b‖ / ‖a‖` over several arrays. */
function relL2(a: Float32Array[], b: Float32Array[]): number {
  let num = 0, den = 0;
  for (let k = 0; k < a.length; k++) {
    const x = a[k]!, y = b[k]!;
    for (let i = 0; i < x.length; i++) {
      num += (x[i]! - y[i]!) ** 2;
      den += x[i]! ** 2;
    }
  }
  return Math.sqrt(num / den);
}

/** The tfjs loss of `model` on `batch` (no gradient). */
async function tfLoss(model: Transformer, batch: TokenBatch): Promise<number> {
  const loss = tf.tidy(() => tf.neg(tf.mean(batchLogprobs(model, batch).logp)));
  const value = (await loss.data())[0]!;
  loss.dispose();
  return value;
}

/** Step times of one library on one preset. */
interface LibraryFigures {
  median_s: number;
  min_s: number;
  times_s: number[];
  /** Process CPU seconds (user + system, every thread) per step: median and each round. */
  cpu_median_s: number;
  cpu_times_s: number[];
  /** Model GFLOP/s at the median. */
  gflops: number;
  tokens_per_s: number;
}

/** Figures from timed steps (wall and CPU seconds) of a step of `flops` on `tokens` tokens. */
function figures(
  times: number[],
  cpu: number[],
  flops: number,
  tokens: number,
): LibraryFigures {
  const med = median(times);
  return {
    median_s: med,
    min_s: Math.min(...times),
    times_s: times,
    cpu_median_s: median(cpu),
    cpu_times_s: cpu,
    gflops: flops / med / 1e9,
    tokens_per_s: tokens / med,
  };
}

/** What one preset measured. */
interface PresetResult {
  config: ModelConfig;
  parameters: number;
  jax_parameters: number;
  rows: number;
  tokens_per_row: number;
  tokens: number;
  model_gflop_per_step: number;
  check: {
    tfjs_loss: number;
    jax_loss: number;
    loss_rel_diff: number;
    grad_rel_l2: number;
    grad_worst_tensor: { name: string; rel_l2: number };
    steps_trained: number;
    tfjs_loss_after: number;
    jax_loss_after: number;
    loss_after_rel_diff: number;
    update_rel_l2: number;
    same_model: boolean;
  };
  /** The first jax-js step: tracing, compiling and running it. */
  jax_first_step_s: number;
  loadavg_before: number[] | null;
  loadavg_after: number[] | null;
  tfjs: LibraryFigures;
  jax: LibraryFigures;
  /** tfjs median / jax-js median: above 1 means jax-js is faster. */
  speedup_jax_over_tfjs: number;
  /** Median over rounds of (tfjs time / jax-js time) of the same round. */
  speedup_paired_median: number;
  /** tfjs fastest step / jax-js fastest step (the least disturbed by other load). */
  speedup_best: number;
}

async function runPreset(name: string): Promise<PresetResult> {
  const preset = PRESETS[name]!;
  const loadBefore = await loadAverage();
  const c: ModelConfig = { ...preset.model, vocab_size: tokenizer.vocabSize };
  const batch = taskBatch(preset.rows);
  const { n, t } = batch;
  const model = Transformer.create(c, { seed: 1 });
  const names = [...model.params.keys()];
  const parameters = model.numParameters;

  // Copy the tfjs weights (internal `[in, out]` layout) into jax-js.
  const initial = new Map<string, Float32Array>();
  for (const [pn, v] of model.params) initial.set(pn, (await v.data()) as Float32Array);
  const params: Params = {};
  for (const [pn, v] of model.params) {
    params[pn] = np.array(new Float32Array(initial.get(pn)!), { shape: [...v.shape] });
  }
  const jaxParameters = Object.values(params).reduce((a, x) => a + x.size, 0);
  if (jaxParameters !== model.numParameters) {
    throw new Error(
      `Cannot compare: the jax-js model must have the tfjs model's ${model.numParameters} ` +
        `parameters: current value is ${jaxParameters}`,
    );
  }

  // --- same model check: loss and gradients on the same weights and input ---
  const vars = [...model.params.values()];
  const nameOf = new Map([...model.params].map(([pn, v]) => [v.name, pn]));
  const tfGrads = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(
      () => tf.neg(tf.mean(batchLogprobs(model, batch).logp)) as tf.Scalar,
      vars,
    );
    const named: Record<string, tf.Tensor> = {};
    for (const [id, gr] of Object.entries(grads)) named[nameOf.get(id)!] = gr;
    return { value, named };
  });
  const tfjsLoss = (await tfGrads.value.data())[0]!;
  const tfG = new Map<string, Float32Array>();
  for (const pn of names) tfG.set(pn, (await tfGrads.named[pn]!.data()) as Float32Array);
  tf.dispose([tfGrads.value, ...Object.values(tfGrads.named)]);

  const lossAndGrad = jax.jit(
    jax.valueAndGrad((pp: Params, bb: JaxBatch) => jaxLoss(pp, bb, c, { n, t }, jaxOptions)),
  );
  const [jLoss, jGrads] = lossAndGrad(jax.tree.ref(params), jaxBatch(batch, c));
  const jaxLossValue = (await jLoss.data())[0]!; // data() consumes the array
  const jG = new Map<string, Float32Array>();
  for (const pn of names) jG.set(pn, (await jGrads[pn]!.data()) as Float32Array); // consumed
  let worst = { name: "", rel_l2: 0 };
  for (const pn of names) {
    const r = relL2([tfG.get(pn)!], [jG.get(pn)!]);
    if (r > worst.rel_l2) worst = { name: pn, rel_l2: r };
  }
  const gradRel = relL2(names.map((x) => tfG.get(x)!), names.map((x) => jG.get(x)!));
  const lossRel = Math.abs(jaxLossValue - tfjsLoss) / Math.abs(tfjsLoss);
  console.log(
    `[${name}] same-model check: tfjs loss ${tfjsLoss.toFixed(6)}, jax-js loss ${
      jaxLossValue.toFixed(6)
    }, rel diff ${lossRel.toExponential(2)}; grads rel L2 ${gradRel.toExponential(2)} ` +
      `(worst ${worst.name} ${worst.rel_l2.toExponential(2)})`,
  );

  // --- the two training steps ---
  const optimizer = new AdamW(model.params, { weightDecay: 0 });
  const tfStep = async () => {
    const loss = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () => tf.neg(tf.mean(batchLogprobs(model, batch).logp)) as tf.Scalar,
        vars,
      );
      const named: Record<string, tf.Tensor> = {};
      for (const [id, gr] of Object.entries(grads)) named[nameOf.get(id)!] = gr;
      optimizer.step(named, LR);
      return value;
    });
    await loss.data();
    loss.dispose();
  };

  const jaxStep = makeJaxStep(c, n, t);
  let state = {
    p: params,
    m: Object.fromEntries(names.map((pn) => [pn, np.zerosLike(params[pn]!.ref)])) as Params,
    v: Object.fromEntries(names.map((pn) => [pn, np.zerosLike(params[pn]!.ref)])) as Params,
  };
  let jaxSteps = 0;
  const jaxStepOnce = async () => {
    const s = jaxSteps + 1;
    const out = jaxStep(state.p, state.m, state.v, jaxBatch(batch, c), {
      stepSize: np.array(LR / (1 - BETA1 ** s)),
      sqrtBiasCorrection2: np.array(Math.sqrt(1 - BETA2 ** s)),
    });
    await jax.blockUntilReady(out);
    await out.loss.data(); // consumes the loss
    state = { p: out.p, m: out.m, v: out.v };
    jaxSteps = s;
  };

  /** Wall seconds of `f`; its process CPU seconds (all threads) are pushed to `cpu`. */
  const timed = async (f: () => Promise<void>, cpu: number[] = []) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await f();
    const wall = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
    return wall;
  };
  const compileS = await timed(jaxStepOnce); // first call traces and compiles
  for (let i = 0; i < warmup; i++) {
    await tfStep();
    if (i > 0) await jaxStepOnce();
  }
  const tfTimes: number[] = [], jaxTimes: number[] = [];
  const tfCpu: number[] = [], jaxCpu: number[] = [];
  for (let r = 0; r < rounds; r++) {
    tfTimes.push(await timed(tfStep, tfCpu));
    jaxTimes.push(await timed(jaxStepOnce, jaxCpu));
    console.log(
      `[${name}] round ${r + 1}/${rounds}: tfjs ${tfTimes.at(-1)!.toFixed(3)} s ` +
        `(CPU ${tfCpu.at(-1)!.toFixed(2)} s), jax-js ${jaxTimes.at(-1)!.toFixed(3)} s ` +
        `(CPU ${jaxCpu.at(-1)!.toFixed(2)} s)`,
    );
  }
  const steps = optimizer.stepCount;
  if (steps !== jaxSteps) {
    throw new Error(
      `Cannot compare trained models: tfjs took ${steps} steps, jax-js: current value is ${jaxSteps}`,
    );
  }

  // --- same training check: loss and weight updates after the same steps ---
  const tfjsAfter = await tfLoss(model, batch);
  const lossAfter = jax.jit((pp: Params, bb: JaxBatch) => jaxLoss(pp, bb, c, { n, t }, jaxOptions));
  const jAfter = lossAfter(jax.tree.ref(state.p), jaxBatch(batch, c));
  const jaxAfter = (await jAfter.data())[0]!;
  const tfDelta: Float32Array[] = [], jaxDelta: Float32Array[] = [];
  for (const pn of names) {
    const p0 = initial.get(pn)!;
    const a = (await model.params.get(pn)!.data()) as Float32Array;
    const b = (await state.p[pn]!.ref.data()) as Float32Array;
    tfDelta.push(a.map((x, i) => x - p0[i]!));
    jaxDelta.push(b.map((x, i) => x - p0[i]!));
  }
  const updateRel = relL2(tfDelta, jaxDelta);
  const lossAfterRel = Math.abs(jaxAfter - tfjsAfter) / Math.abs(tfjsAfter);
  console.log(
    `[${name}] after ${steps} steps each: tfjs loss ${tfjsAfter.toFixed(6)}, jax-js loss ${
      jaxAfter.toFixed(6)
    }, rel diff ${lossAfterRel.toExponential(2)}; weight updates rel L2 ${
      updateRel.toExponential(2)
    }`,
  );

  jax.tree.dispose(state);
  jaxStep.dispose();
  lossAndGrad.dispose();
  lossAfter.dispose();
  optimizer.dispose();
  model.dispose();

  const tokens = n * t;
  const flops = 6 * parameters * tokens +
    12 * c.num_hidden_layers * c.hidden_size * t * t * n;
  const tfMed = median(tfTimes), jaxMed = median(jaxTimes);
  return {
    config: c,
    parameters,
    jax_parameters: jaxParameters,
    rows: n,
    tokens_per_row: t,
    tokens,
    model_gflop_per_step: flops / 1e9,
    check: {
      tfjs_loss: tfjsLoss,
      jax_loss: jaxLossValue,
      loss_rel_diff: lossRel,
      grad_rel_l2: gradRel,
      grad_worst_tensor: worst,
      steps_trained: steps,
      tfjs_loss_after: tfjsAfter,
      jax_loss_after: jaxAfter,
      loss_after_rel_diff: lossAfterRel,
      update_rel_l2: updateRel,
      same_model: lossRel < 1e-3 && lossAfterRel < 1e-3,
    },
    jax_first_step_s: compileS,
    loadavg_before: loadBefore,
    loadavg_after: await loadAverage(),
    tfjs: figures(tfTimes, tfCpu, flops, tokens),
    jax: figures(jaxTimes, jaxCpu, flops, tokens),
    speedup_jax_over_tfjs: tfMed / jaxMed,
    speedup_paired_median: median(tfTimes.map((x, i) => x / jaxTimes[i]!)),
    speedup_best: Math.min(...tfTimes) / Math.min(...jaxTimes),
  };
}

// --- run ---

const results: Record<string, PresetResult> = {};
for (const name of presetNames) results[name] = await runPreset(name);

const rows: (string | number)[][] = [];
for (const [name, r] of Object.entries(results)) {
  const detail = `${r.rows}x${r.tokens_per_row} tokens, ${r.parameters} params`;
  rows.push([
    name,
    "tfjs",
    r.tfjs.median_s.toFixed(3),
    r.tfjs.min_s.toFixed(3),
    r.tfjs.gflops.toFixed(2),
    r.tfjs.tokens_per_s.toFixed(0),
    detail,
  ]);
  rows.push([
    name,
    "jax-js",
    r.jax.median_s.toFixed(3),
    r.jax.min_s.toFixed(3),
    r.jax.gflops.toFixed(2),
    r.jax.tokens_per_s.toFixed(0),
    `jax-js speed-up: medians ${r.speedup_jax_over_tfjs.toFixed(2)}x, paired ${
      r.speedup_paired_median.toFixed(2)
    }x, best ${r.speedup_best.toFixed(2)}x; loss rel diff ${
      r.check.loss_rel_diff.toExponential(1)
    }, same model: ${r.check.same_model}`,
  ]);
}
console.log(
  formatTable(
    ["preset", "library", "median s/step", "min s/step", "GFLOP/s", "tokens/s", "detail"],
    rows,
  ),
);

const run = {
  date: new Date().toISOString(),
  versions: {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    tfjs: tf.version_core,
    jax_js: JAX_VERSION,
  },
  backends: {
    tfjs: `${tfBackend} (tfjs-backend-wasm, XNNPACK SIMD, ${threads} thread${
      threads > 1 ? "s" : ""
    }, fast BatchMatMul kernels of model/wasm_kernels.ts)`,
    jax_js: `wasm (jax-js's generated Wasm kernels run by a pool of ${threads} Web Worker${
      threads > 1 ? "s" : ""
    }), whole step in one jit; devices reported by init(): [${jaxDevices}]`,
  },
  rounds,
  warmup,
  jax_options: jaxOptions,
  hardware_concurrency: navigator.hardwareConcurrency,
  threads,
  presets: results,
};
const outPath = values.out.startsWith("/") ? values.out : `${REPO_ROOT}${values.out}`;
let previous: { runs?: unknown[] } = {};
if (values.append) {
  try {
    previous = JSON.parse(await Deno.readTextFile(outPath));
  } catch {
    previous = {};
  }
}
const doc = {
  description: "One training step (forward, -mean log-prob loss, gradients, AdamW) of " +
    "model/transformer.ts in tfjs and the same model in @jax-js/jax, interleaved in one " +
    "process (bench/jaxjs_step.ts). speedup_jax_over_tfjs = tfjs median / jax-js median; " +
    "above 1 means jax-js is faster.",
  not_measured: "jax-js webgpu: where Deno's WebGPU adapter is Mesa llvmpipe (software " +
    "Vulkan, as on the CPU-only machines these runs used) it is not a CPU comparison",
  flop_formula: "6 * parameters * tokens + 12 * layers * d_model * T^2 * rows (as bench/bench.ts)",
  runs: [...(previous.runs ?? []), run],
};
await Deno.writeTextFile(outPath, JSON.stringify(doc, null, 2) + "\n");
console.log(`wrote ${outPath}`);
Deno.exit(0); // threaded wasm workers would keep the process alive
