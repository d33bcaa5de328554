/**
 * Learner: owns the trainable policy, the optimizer and the learning-rate schedule. On a
 * scored training batch it computes advantages (through the algorithm), runs μ optimizer
 * steps over the batch in micro-batches with gradient accumulation and global-norm clipping,
 * publishes the new weights to the Sampler and the step's metrics to the driver.
 * The algorithm supplies the advantages and the loss; everything else here is shared.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ActorContext, ActorLogic } from "./runtime/mod.ts";
import type {
  Checkpoint,
  CheckpointSaved,
  Configure,
  SampleCompletion,
  SampleGroup,
  Scored,
  StepStats,
  TrainBatch,
  Weights,
} from "./messages.ts";
import type { Transformer } from "../model/transformer.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { batchLogprobs, packBatch, type TokenBatch } from "../model/sampling.ts";
import { AdamW, type AdamWState, learningRateAt } from "../model/optimizer.ts";
import { GradientStep } from "../model/gradient_step.ts";
import { decodeSafetensors, encodeSafetensors } from "../model/safetensors.ts";
import { saveCheckpoint } from "../model/checkpoint.ts";

/** Per-completion advantages an algorithm derives from a scored batch. */
export interface AdvantageResult {
  /** One advantage per rollout. */
  advantages: Float32Array;
  /**
   * Per-token advantages, one array per rollout over its completion tokens (PPO's GAE); when
   * present the loss gets `advantages` as `[N, T]` and `advantages` above is ignored.
   */
  tokenAdvantages?: ReadonlyArray<ArrayLike<number>>;
  /** Rollouts that enter the loss (e.g. false for a filtered zero-variance group). */
  keep: boolean[];
  /** Extra metrics (slash-namespaced keys). */
  metrics: Record<string, number>;
}

/**
 * Tensors given to an algorithm's loss, each `[N, T]` except `advantages`: `[N]`, or `[N, T]`
 * when the algorithm returned per-token advantages.
 */
export interface LossInputs {
  logp: tf.Tensor2D;
  oldLogp: tf.Tensor2D;
  refLogp?: tf.Tensor2D;
  advantages: tf.Tensor1D | tf.Tensor2D;
  mask: tf.Tensor2D;
}

/** What the Learner tells an algorithm about a batch besides its rollouts. */
export interface AdvantageOptions {
  /**
   * The rollouts the sender selected for the update (a training part's `keep`), one flag per
   * rollout; all when absent. A dropped rollout trains on nothing: the algorithm returns
   * `keep` false for it and leaves it out of every statistic of the others (a group mean, a
   * batch std), so the advantages are those of the selected rollouts alone.
   */
  keep?: readonly boolean[];
}

/** What the Learner needs from an algorithm. */
export interface PolicyAlgorithm {
  /**
   * Takes live settings (`PATCH /config`) between steps: an algorithm applies the
   * coefficients it has (GRPO: β, ε; PPO: the clip range) and ignores the rest.
   */
  configure?(settings: Configure): void;
  /** Advantages of a scored batch, of the rollouts `options.keep` selects. */
  advantages(scored: Scored, options?: AdvantageOptions): AdvantageResult;
  /**
   * The loss of one micro-batch: either a mean over the micro-batch, which the Learner weighs
   * by its share of the batch's rows (`rowFraction` = micro-batch rows / batch rows) so that
   * the micro-batch losses sum to the batch's, or, with `batchNormalized`, a sum already
   * divided by the whole batch's completion tokens (`numItemsInBatch`: DAPO), which the
   * Learner adds as it is.
   */
  loss(
    inputs: LossInputs,
    scale: { rowFraction: number; numItemsInBatch: number },
  ): { loss: tf.Scalar; stats: Record<string, tf.Scalar>; batchNormalized?: boolean };
}

/** Input of {@link learner}. */
export interface LearnerInput {
  model: Transformer;
  tokenizer: Tokenizer;
  algorithm: PolicyAlgorithm;
  lr: number;
  lrSchedule: "cosine" | "linear" | "constant";
  warmupRatio: number;
  minLrRatio: number;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEps: number;
  maxGradNorm: number;
  microBatchSize: number;
  /**
   * Sampling temperature: log-probs are taken under `softmax(logits / temperature)`, the
   * distribution the Sampler drew from (TRL does the same). @default 1
   */
  temperature?: number;
  /** μ: optimizer steps per generation batch. */
  numIterations: number;
  /**
   * Mini-batches per iteration: the rows are split into this many contiguous slices and each
   * slice is one optimizer step (PPO's `num_mini_batches`). @default 1
   */
  miniBatches?: number;
  /** Training steps of the run (for the schedule). */
  totalSteps: number;
  /** Mask completions that hit the length limit out of the loss. */
  maskTruncated: boolean;
  /**
   * Stop the run (the Learner fails) after this many optimizer updates in a row were skipped
   * for a non-finite gradient; 0 never stops. @default 0
   */
  maxConsecutiveSkips?: number;
  /**
   * Prompts of each step shown to a person (`StepStats.samples`): the first this many, each
   * with all its completions, rewards and trained advantages, and every answer a following
   * part gave to them. @default 2
   */
  sampleGroupsPerStep?: number;
  /**
   * The Sampler holds this same model object (`sampler.share_weights`): `Weights` carry only
   * the new version. @default false
   */
  shareWeights?: boolean;
  /** Extra trainer state written into every checkpoint. */
  checkpointState?: () => Record<string, unknown>;
  /** Optimizer steps already taken and policy version (when resuming). */
  resume?: {
    optimizerSteps: number;
    version: number;
    optimizer?: AdamWState;
    /** Skipped updates in a row when the checkpoint was written. @default 0 */
    consecutiveSkips?: number;
  };
}

/** State of {@link learner}. */
export interface LearnerState {
  input: LearnerInput;
  optimizer: AdamW;
  /** Accumulates the micro-batches' gradients and takes the clipped AdamW step. */
  gradients: GradientStep;
  version: number;
  optimizerSteps: number;
  /** Optimizer updates skipped in a row for a non-finite gradient. */
  consecutiveSkips?: number;
}

/** Aligns per-completion-token arrays to the packed `[n, t]` positions. */
function alignTokens(
  rows: { prompt: number[]; values: number[] }[],
  t: number,
): Float32Array {
  const out = new Float32Array(rows.length * t);
  rows.forEach((r, i) => {
    const start = r.prompt.length - 1;
    out.set(r.values.slice(0, t - start), i * t + start);
  });
  return out;
}

/** File name of the optimizer moments inside a checkpoint folder. */
export const OPTIMIZER_FILE = "optimizer.safetensors";

/** Serialises AdamW's moments (`m.<name>`, `v.<name>`) and step count. */
export function encodeOptimizerState(state: AdamWState): Uint8Array {
  const tensors = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const [k, v] of Object.entries(state.m)) {
    tensors.set(`m.${k}`, { data: v, shape: [v.length] });
  }
  for (const [k, v] of Object.entries(state.v)) {
    tensors.set(`v.${k}`, { data: v, shape: [v.length] });
  }
  return encodeSafetensors(tensors, { step: String(state.step) });
}

/** Parses what {@link encodeOptimizerState} wrote. */
export function decodeOptimizerState(bytes: Uint8Array, source: string): AdamWState {
  const { tensors, metadata } = decodeSafetensors(bytes, source);
  const m: Record<string, Float32Array> = {}, v: Record<string, Float32Array> = {};
  for (const [k, t] of tensors) {
    if (k.startsWith("m.")) m[k.slice(2)] = t.data;
    else if (k.startsWith("v.")) v[k.slice(2)] = t.data;
  }
  return { step: Number(metadata.step ?? 0), m, v };
}

/**
 * Writes one checkpoint folder: the policy, the optimizer moments, the Learner's counters
 * (`step`, `policy_version`, `optimizer_steps`, which is also the LR schedule position), the
 * driver's `extra` state and the other actors' snapshots (`actors.<name>: {state, files}` in
 * `trainer_state.json`, the files as `<name>.<file>`), all under one manifest.
 */
async function writeCheckpoint(
  state: LearnerState,
  step: number,
  path: string,
  extra: Pick<Checkpoint, "state" | "actors"> = {},
): Promise<void> {
  const { model, tokenizer } = state.input;
  const files: Record<string, Uint8Array> = {
    [OPTIMIZER_FILE]: encodeOptimizerState(await state.optimizer.getStateAsync()),
  };
  const actors: Record<string, { state: Record<string, unknown>; files: string[] }> = {};
  for (const [name, snapshot] of Object.entries(extra.actors ?? {})) {
    actors[name] = { state: snapshot.state, files: Object.keys(snapshot.files) };
    for (const [file, bytes] of Object.entries(snapshot.files)) files[`${name}.${file}`] = bytes;
  }
  await saveCheckpoint(path, model, tokenizer, {
    step,
    policy_version: state.version,
    optimizer_steps: state.optimizerSteps,
    consecutive_skips: state.consecutiveSkips ?? 0,
    ...(state.input.checkpointState?.() ?? {}),
    ...(extra.state ?? {}),
    ...(extra.actors ? { actors } : {}),
  }, files);
}

/** One part of a training step: a scored batch, its loss weight and its metric prefix. */
type Part = TrainBatch["parts"][number];

/** A part packed for the loss. */
interface PreparedPart {
  part: Part;
  rows: number;
  batch: TokenBatch;
  oldLogp: Float32Array;
  refLogp: Float32Array | undefined;
  advantages: Float32Array;
  /** Per-token advantages aligned like `oldLogp`, `[rows, t]`, when the algorithm gives them. */
  tokenAdvantages: Float32Array | undefined;
  numItemsInBatch: number;
  /** Accumulated over micro-batches and iterations. */
  lossSum: number;
  statSums: Record<string, number>;
  entropy: number;
}

/**
 * Packs a part for the loss (`prepared`: none when every row is left out) and records, per
 * rollout, the advantage it trains with (`trained`: `null` for a row left out of the loss).
 */
function preparePart(
  input: LearnerInput,
  part: Part,
  metrics: Record<string, number>,
): { prepared: PreparedPart | undefined; trained: TrainedAdvantage } {
  const { scored, prefix } = part;
  // The sender's selection goes to the algorithm, so that the rows it drops enter no
  // statistic of the rows that train (GRPO's batch std); the filter below enforces it too.
  const adv = input.algorithm.advantages(scored, part.keep ? { keep: part.keep } : {});
  const kept = scored.rollouts.map((r, i) => ({ r, i }))
    .filter(({ i }) => adv.keep[i] && (part.keep?.[i] ?? true));
  const rewards = scored.verdicts.flatMap((v) => (v.reward === null ? [] : [v.reward]));
  const lengths = scored.rollouts.map((r) => r.completionIds.length);
  Object.assign(metrics, {
    [`${prefix}reward/mean`]: mean(rewards),
    [`${prefix}reward/std`]: std(rewards),
    [`${prefix}accuracy`]: mean(scored.verdicts.map((v) => (v.correct ? 1 : 0))),
    [`${prefix}completions/mean_length`]: mean(lengths),
    [`${prefix}completions/min_length`]: lengths.length ? Math.min(...lengths) : 0,
    [`${prefix}completions/max_length`]: lengths.length ? Math.max(...lengths) : 0,
    [`${prefix}completions/clipped_ratio`]: mean(
      scored.rollouts.map((r) => (r.finishReason === "length" ? 1 : 0)),
    ),
    [`${prefix}train/rows`]: kept.length,
    [`${prefix}completions/total_tokens`]: lengths.reduce((a, b) => a + b, 0),
    [`${prefix}reward/skipped`]: scored.verdicts.length - rewards.length,
    ...componentMeans(scored, prefix),
    ...Object.fromEntries(Object.entries(adv.metrics).map(([k, v]) => [`${prefix}${k}`, v])),
  });
  const trained = trainedAdvantages(input, part, adv, new Set(kept.map(({ i }) => i)));
  if (kept.length === 0) return { prepared: undefined, trained };
  const prompts = kept.map(({ r }) => scored.queries[r.queryIndex]!.promptIds);
  const batch = packBatch(prompts, kept.map(({ r }) => r.completionIds), input.tokenizer.padId);
  if (input.maskTruncated) {
    kept.forEach(({ r }, k) => {
      if (r.finishReason === "length") batch.mask.fill(0, k * batch.t, (k + 1) * batch.t);
    });
  }
  const oldLogp = alignTokens(
    kept.map(({ r }, k) => ({ prompt: prompts[k]!, values: r.logprobs })),
    batch.t,
  );
  const refLogp = scored.refLogprobs
    ? alignTokens(
      kept.map(({ i }, k) => ({ prompt: prompts[k]!, values: scored.refLogprobs![i]! })),
      batch.t,
    )
    : undefined;
  const prepared: PreparedPart = {
    part,
    rows: kept.length,
    batch,
    oldLogp,
    refLogp,
    advantages: Float32Array.from(kept.map(({ i }) => adv.advantages[i]!)),
    tokenAdvantages: adv.tokenAdvantages
      ? alignTokens(
        kept.map(({ i }, k) => ({
          prompt: prompts[k]!,
          values: Array.from(adv.tokenAdvantages![i]!),
        })),
        batch.t,
      )
      : undefined,
    numItemsInBatch: batch.mask.reduce((a, b) => a + b, 0),
    lossSum: 0,
    statSums: {},
    entropy: 0,
  };
  return { prepared, trained };
}

/**
 * The advantage each rollout of a part trains with: the algorithm's, or with per-token
 * advantages their mean over the completion; `null` for a row out of `kept`, a truncated
 * completion masked out of the loss, or a value that is not finite.
 */
function trainedAdvantages(
  input: LearnerInput,
  part: Part,
  adv: AdvantageResult,
  kept: ReadonlySet<number>,
): TrainedAdvantage {
  // Asked only for the few rows the step's samples show, not computed for every row.
  return (i) => {
    const r = part.scored.rollouts[i]!;
    if (!kept.has(i) || (input.maskTruncated && r.finishReason === "length")) return null;
    const perToken = adv.tokenAdvantages?.[i];
    const a = perToken ? mean(Array.from(perToken)) : adv.advantages[i]!;
    return Number.isFinite(a) ? a : null;
  };
}

/** The advantage rollout `i` of a part trained with, `null` when it did not train. */
type TrainedAdvantage = (i: number) => number | null;

/** Rows `[start, end)` of a prepared part, as a part of its own (fresh sums). */
function slicePart(p: PreparedPart, start: number, end: number): PreparedPart {
  const t = p.batch.t;
  const mask = p.batch.mask.subarray(start * t, end * t);
  return {
    part: p.part,
    rows: end - start,
    batch: {
      n: end - start,
      t,
      ids: p.batch.ids.subarray(start * t, end * t),
      targets: p.batch.targets.subarray(start * t, end * t),
      mask,
    },
    oldLogp: p.oldLogp.subarray(start * t, end * t),
    refLogp: p.refLogp?.subarray(start * t, end * t),
    advantages: p.advantages.subarray(start, end),
    tokenAdvantages: p.tokenAdvantages?.subarray(start * t, end * t),
    numItemsInBatch: mask.reduce((a, b) => a + b, 0),
    lossSum: 0,
    statSums: {},
    entropy: 0,
  };
}

/** Adds a part's weighted gradient to the accumulated one, micro-batch by micro-batch. */
async function accumulatePart(
  state: LearnerState,
  p: PreparedPart,
  firstIteration: boolean,
): Promise<void> {
  const { input } = state;
  const { model, algorithm } = input;
  const { batch, oldLogp, refLogp, advantages, tokenAdvantages, numItemsInBatch } = p;
  const t = batch.t, mb = input.microBatchSize;
  for (let s = 0; s < batch.n; s += mb) {
    const e = Math.min(batch.n, s + mb);
    const sub = {
      n: e - s,
      t,
      ids: batch.ids.subarray(s * t, e * t),
      targets: batch.targets.subarray(s * t, e * t),
      mask: batch.mask.subarray(s * t, e * t),
    };
    let stats: Record<string, tf.Scalar> = {};
    let ent: tf.Scalar | undefined;
    const value = state.gradients.accumulate(() => {
      const { logp, entropy: tokEnt } = batchLogprobs(
        model,
        sub,
        p.part.temperature ?? input.temperature ?? 1,
      );
      const maskT = tf.tensor2d(sub.mask, [sub.n, t]);
      const rowFraction = sub.n / batch.n;
      const res = algorithm.loss({
        logp,
        oldLogp: tf.tensor2d(oldLogp.subarray(s * t, e * t), [sub.n, t]),
        ...(refLogp ? { refLogp: tf.tensor2d(refLogp.subarray(s * t, e * t), [sub.n, t]) } : {}),
        advantages: tokenAdvantages
          ? tf.tensor2d(tokenAdvantages.subarray(s * t, e * t), [sub.n, t])
          : tf.tensor1d(advantages.subarray(s, e)),
        mask: maskT,
      }, { rowFraction, numItemsInBatch });
      // Tensors made inside the gradient's function are freed on return: keep them.
      stats = Object.fromEntries(Object.entries(res.stats).map(([k, v]) => [k, tf.keep(v)]));
      ent = tf.keep(tf.sum(tf.mul(tokEnt, maskT)) as tf.Scalar);
      // A micro-batch mean weighs by its share of rows; a batch-normalized sum adds as is.
      const loss = res.batchNormalized ? res.loss : tf.mul(res.loss, rowFraction) as tf.Scalar;
      return (p.part.weight === 1 ? loss : tf.mul(loss, p.part.weight)) as tf.Scalar;
    });
    p.lossSum += (await value.data())[0]!;
    const tokens = sub.mask.reduce((a, b) => a + b, 0);
    for (const [k, v] of Object.entries(stats)) {
      p.statSums[k] = (p.statSums[k] ?? 0) + (await v.data())[0]! * tokens;
    }
    if (firstIteration) p.entropy += (await ent!.data())[0]!;
    tf.dispose([value, ...(ent ? [ent] : []), ...Object.values(stats)]);
  }
}

/**
 * Clips and applies the accumulated gradients; returns the pre-clip norm. A non-finite
 * gradient skips the update, names the offending tensors on stderr, and after
 * `maxConsecutiveSkips` skips in a row fails the Learner.
 */
async function applyGradients(
  state: LearnerState,
  metrics: Record<string, number>,
  step: number,
  position: number,
): Promise<number> {
  const { input } = state;
  const { norm, applied, nonFinite } = await state.gradients.apply(() => {
    // The schedule follows training steps (μ iterations × mini-batches each), not optimizer
    // steps: a sequential MGRPO step takes one optimizer step per part, and counting those
    // ended the schedule halfway through the run (the second half at the floor).
    const lr = learningRateAt(position, {
      lr: input.lr,
      totalSteps: input.totalSteps * input.numIterations * (input.miniBatches ?? 1),
      warmupRatio: input.warmupRatio,
      schedule: input.lrSchedule,
      minLrRatio: input.minLrRatio,
    });
    metrics["learning_rate"] = lr;
    return lr;
  });
  if (applied) {
    state.consecutiveSkips = 0;
  } else {
    metrics["train/skipped_updates"] = (metrics["train/skipped_updates"] ?? 0) + 1;
    const skips = (state.consecutiveSkips ?? 0) + 1;
    state.consecutiveSkips = skips;
    const where = nonFinite.length ? nonFinite.map((n) => `"${n}"`).join(", ") : "the loss";
    console.error(`learner: step ${step}: update skipped: non-finite gradient in ${where}`);
    const max = input.maxConsecutiveSkips ?? 0;
    if (max > 0 && skips >= max) {
      throw new RangeError(
        `Cannot train: ${skips} updates in a row were skipped for non-finite gradients ` +
          `(the last at step ${step}, in ${where}): lower learner.lr or check the rewards ` +
          `(learner.max_consecutive_skips is ${max})`,
      );
    }
  }
  state.optimizerSteps++;
  return norm;
}

/**
 * One training step over one or more parts: μ iterations, each either one optimizer step on
 * the weighted sum of the parts' losses (`joint`) or one step per part (`sequential`); then
 * publishes the weights and the metrics. Checkpoints are the Trainer's (`Checkpoint`).
 */
async function trainStep(
  state: LearnerState,
  ctx: ActorContext,
  step: number,
  parts: Part[],
  options: { update: "joint" | "sequential"; metrics?: Record<string, number> },
): Promise<void> {
  const t0 = performance.now();
  const { input } = state;
  const main = parts[0]!.scored;
  const metrics: Record<string, number> = {
    "policy_version/sampler": main.policyVersion,
    "train/skipped_updates": 0,
    ...options.metrics,
  };
  for (const part of parts) {
    for (const [k, v] of Object.entries(part.scored.timings)) {
      metrics[`time/${k}`] = (metrics[`time/${k}`] ?? 0) + v;
    }
  }
  const packed = parts.map((part) => preparePart(input, part, metrics));
  const prepared = packed.map((p) => p.prepared)
    .filter((p): p is PreparedPart => p !== undefined);
  const miniBatches = input.miniBatches ?? 1;
  // Where this step's updates sit on the learning-rate schedule (see applyGradients).
  const base = (step - 1) * input.numIterations * miniBatches;
  for (let iter = 0; iter < input.numIterations; iter++) {
    const position = base + iter * miniBatches;
    if (miniBatches > 1 && prepared.length === 1) {
      // One optimizer step per slice of rows; the slices' sums are added back for the metrics.
      const whole = prepared[0]!;
      for (let k = 0; k < miniBatches; k++) {
        const start = Math.floor((k * whole.rows) / miniBatches);
        const end = Math.floor(((k + 1) * whole.rows) / miniBatches);
        if (end <= start) continue;
        const slice = slicePart(whole, start, end);
        await accumulatePart(state, slice, iter === 0);
        metrics["grad_norm"] = await applyGradients(state, metrics, step, position + k);
        whole.lossSum += slice.lossSum * (slice.numItemsInBatch / whole.numItemsInBatch);
        whole.entropy += slice.entropy;
        for (const [key, v] of Object.entries(slice.statSums)) {
          whole.statSums[key] = (whole.statSums[key] ?? 0) + v;
        }
      }
    } else if (options.update === "joint") {
      for (const p of prepared) await accumulatePart(state, p, iter === 0);
      if (prepared.length > 0) {
        metrics["grad_norm"] = await applyGradients(state, metrics, step, position);
      }
    } else {
      for (const p of prepared) {
        await accumulatePart(state, p, iter === 0);
        metrics[`${p.part.prefix}grad_norm`] = await applyGradients(
          state,
          metrics,
          step,
          position,
        );
      }
    }
  }
  for (const p of prepared) {
    const { prefix } = p.part;
    const denom = p.numItemsInBatch * input.numIterations;
    for (const [k, v] of Object.entries(p.statSums)) {
      metrics[`${prefix}${k}`] = denom > 0 ? v / denom : 0;
    }
    metrics[`${prefix}entropy`] = p.numItemsInBatch > 0 ? p.entropy / p.numItemsInBatch : 0;
    metrics[`${prefix}loss/policy`] = p.lossSum / input.numIterations;
  }
  state.version++;
  const weights: Weights = {
    type: "Weights",
    version: state.version,
    // A Sampler that shares this model object needs only the new version.
    tensors: input.shareWeights ? {} : Object.fromEntries(
      [...(await input.model.exportWeights())].map((
        [k, v],
      ) => [k, v.data as Float32Array<ArrayBuffer>]),
    ),
  };
  await ctx.send("sampler", weights);
  metrics["time/learner"] = (performance.now() - t0) / 1000;
  const stats: StepStats = {
    type: "StepStats",
    step,
    policyVersion: state.version,
    metrics,
    samples: stepSamples(step, parts, packed.map((p) => p.trained), {
      groups: input.sampleGroupsPerStep ?? 2,
    }),
  };
  await ctx.send("stats", stats);
}

/**
 * The step's first `options.groups` prompts of its first part, each with all its rollouts, their
 * rewards, verdicts and `trained` advantages. When a part follows the first (its queries were
 * built from the first part's rollouts, as in MGRPO), each rollout also carries the guide
 * phrase of the query built from it, every answer to that query, and `discarded` when none of
 * those answers entered the update.
 */
function stepSamples(
  step: number,
  parts: readonly Part[],
  trained: readonly TrainedAdvantage[],
  options: { groups: number },
): SampleGroup[] {
  const main = parts[0]!.scored;
  // The following part's rows by the rollout of the first part they answer.
  const f = parts.findIndex((p) => p.follows === 0);
  const follower = f < 0 ? undefined : parts[f]!;
  const answers = new Map<number, number[]>();
  const askedBy = new Map<number, number>();
  follower?.scored.rollouts.forEach((r, j) => {
    const i = follower.sources?.[r.queryIndex] ?? r.queryIndex;
    askedBy.set(i, r.queryIndex);
    if (!answers.has(i)) answers.set(i, []);
    answers.get(i)!.push(j);
  });
  // The rows of each prompt, in prompt order, until `options.groups` prompts have rows.
  const rows = new Map<number, number[]>();
  main.rollouts.forEach((r, i) => {
    if (!rows.has(r.queryIndex)) rows.set(r.queryIndex, []);
    rows.get(r.queryIndex)!.push(i);
  });
  return [...rows].sort(([a], [b]) => a - b).slice(0, options.groups)
    .map(([q, group]) => ({
      step,
      prompt: main.queries[q]!.question,
      completions: group.map((i) => {
        const own = sampleCompletion(main, i, trained[0]!(i));
        if (!follower) return own;
        const js = answers.get(i) ?? [];
        const k = askedBy.get(i);
        const phrase = k === undefined ? undefined : follower.scored.queries[k]?.guidePhrase;
        return {
          ...own,
          ...(phrase === undefined ? {} : { guidePhrase: phrase }),
          discarded: js.every((j) => !(follower.keep?.[j] ?? true)),
          corrections: js.map((j) => sampleCompletion(follower.scored, j, trained[f]!(j))),
        };
      }),
    }));
}

/** Rollout `i` of `scored` as a person reads it, with the advantage it trained with. */
function sampleCompletion(scored: Scored, i: number, advantage: number | null): SampleCompletion {
  const verdict = scored.verdicts[i]!;
  return {
    text: scored.rollouts[i]!.text,
    reward: verdict.reward,
    advantage,
    correct: verdict.correct,
    reason: verdict.reason,
  };
}

/** The Learner actor. */
export const learner: ActorLogic<
  LearnerState,
  Scored | TrainBatch | Checkpoint | Configure,
  LearnerInput
> = {
  accepts: ["Scored", "TrainBatch", "Checkpoint", "Configure"],
  init(input) {
    const optimizer = new AdamW(input.model.trainableParams, {
      beta1: input.adamBeta1,
      beta2: input.adamBeta2,
      eps: input.adamEps,
      weightDecay: input.weightDecay,
      noDecay: (name) => name.endsWith("norm.weight") || name.endsWith(".bias"),
    });
    if (input.resume?.optimizer) optimizer.setState(input.resume.optimizer);
    return {
      input,
      optimizer,
      gradients: new GradientStep(input.model.trainableParams, optimizer, {
        maxGradNorm: input.maxGradNorm,
      }),
      version: input.resume?.version ?? 0,
      optimizerSteps: input.resume?.optimizerSteps ?? 0,
      consecutiveSkips: input.resume?.consecutiveSkips ?? 0,
    };
  },

  async handle(state, message, ctx) {
    switch (message.type) {
      case "Checkpoint": {
        await writeCheckpoint(state, message.step, message.path, message);
        const saved: CheckpointSaved = {
          type: "CheckpointSaved",
          step: message.step,
          path: message.path,
        };
        await ctx.send("events", saved);
        return state;
      }
      case "Configure":
        // Live settings: the next step's schedule peaks at the new lr, log-probs are taken at
        // the new temperature, the algorithm takes its own coefficients.
        if ("learner.lr" in message.values) state.input.lr = message.values["learner.lr"] as number;
        if ("sampler.temperature" in message.values) {
          state.input.temperature = message.values["sampler.temperature"] as number;
        }
        state.input.algorithm.configure?.(message);
        return state;
      case "Scored":
        await trainStep(state, ctx, message.step, [{ scored: message, weight: 1, prefix: "" }], {
          update: "joint",
        });
        return state;
      case "TrainBatch":
        await trainStep(state, ctx, message.step, message.parts, {
          update: message.update,
          metrics: message.metrics,
        });
        return state;
      default:
        throw new TypeError(`Unknown message type: "${(message as { type: string }).type}"`);
    }
  },

  close(state) {
    state.gradients.discard();
    state.optimizer.dispose();
  },
};

/** `rewards/<name>/mean` of every reward function, over the samples it did not abstain on. */
function componentMeans(scored: Scored, prefix: string): Record<string, number> {
  const values = new Map<string, number[]>();
  for (const v of scored.verdicts) {
    for (const [name, value] of Object.entries(v.components ?? {})) {
      if (!values.has(name)) values.set(name, []);
      if (value !== null) values.get(name)!.push(value);
    }
  }
  return Object.fromEntries(
    [...values].map(([name, xs]) => [`${prefix}rewards/${name}/mean`, xs.length ? mean(xs) : NaN]),
  );
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

function std(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}
