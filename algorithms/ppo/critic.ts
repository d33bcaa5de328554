/**
 * Critic: PPO's value model. For every scored batch it predicts V_t for each completion token,
 * turns the outcome rewards and the per-token KL to the reference policy into per-token rewards,
 * computes GAE advantages and returns (`algorithms/ppo/mod.ts`), trains the value model on the
 * returns with the clipped value loss for `ppo_epochs` steps, and sends the batch with its
 * per-token advantages to the Learner.
 *
 * The value model is a separate copy of the warm start with a scalar head on its last hidden
 * state (zero-initialised, so V starts at 0), trained by an AdamW of its own: value gradients
 * never touch the policy (see `ppo.value_model`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ActorLogic } from "../../actors/runtime/mod.ts";
import type { Restore, Scored, Snapshot, TrainBatch } from "../../actors/messages.ts";
import { sendSnapshot } from "../../actors/snapshot.ts";
import { decodeOptimizerState, encodeOptimizerState } from "../../actors/learner.ts";
import { decodeSafetensors, encodeSafetensors } from "../../model/safetensors.ts";
import type { Transformer } from "../../model/transformer.ts";
import { packBatch, type TokenBatch } from "../../model/sampling.ts";
import { mm } from "../../model/ops.ts";
import { AdamW } from "../../model/optimizer.ts";
import { GradientStep } from "../../model/gradient_step.ts";
import { AdaptiveKlController, klPerToken } from "./rewards.ts";
import { explainedVariance, ppoAdvantages } from "./advantages.ts";
import { type PpoConfig } from "./config.ts";
import { valueLoss } from "./loss.ts";

/** Input of {@link critic}. */
export interface CriticInput {
  /** The value model's trunk: a trainable copy of the warm start (the Critic owns it). */
  model: Transformer;
  /** Padding id of the tokenizer. */
  padId: number;
  /** The `ppo` section. */
  config: PpoConfig;
  /** Where the batch goes next. @default "learner" */
  target?: string;
}

/** State of {@link critic}. */
export interface CriticState {
  input: CriticInput;
  /** Value head `[D, 1]` and bias `[1]`. */
  head: tf.Variable;
  bias: tf.Variable;
  optimizer: AdamW;
  /** The value model's gradient step (clipped to `value_max_grad_norm`). */
  gradients: GradientStep;
  params: Map<string, tf.Variable>;
  kl: AdaptiveKlController | undefined;
}

/** V for every position of a packed batch, `[n, t]` (inside the caller's tidy). */
function valuesOf(state: CriticState, batch: TokenBatch): tf.Tensor2D {
  const ids = tf.tensor2d(batch.ids, [batch.n, batch.t], "int32");
  const { logits: hidden } = state.input.model.forward(ids, { hiddenOnly: true }); // [n·t, D]
  const v = tf.add(mm(hidden, state.head as tf.Variable<tf.Rank.R2>), state.bias); // [n·t, 1]
  return tf.reshape(v, [batch.n, batch.t]) as tf.Tensor2D; // [n, t]
}

/** Splits a `[n, t]` array into one row per sequence over its masked (completion) positions. */
function ragged(flat: Float32Array, batch: TokenBatch): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < batch.n; i++) {
    const row: number[] = [];
    for (let p = 0; p < batch.t; p++) {
      if (batch.mask[i * batch.t + p] === 1) row.push(flat[i * batch.t + p]!);
    }
    rows.push(row);
  }
  return rows;
}

/** The inverse of {@link ragged}: rows back into `[n, t]`, zeros elsewhere. */
function unragged(rows: number[][], batch: TokenBatch): Float32Array {
  const out = new Float32Array(batch.n * batch.t);
  rows.forEach((row, i) => {
    let k = 0;
    for (let p = 0; p < batch.t && k < row.length; p++) {
      if (batch.mask[i * batch.t + p] === 1) out[i * batch.t + p] = row[k++]!;
    }
  });
  return out;
}

/** Scores one batch: values, KL-shaped rewards, GAE; trains the value model; returns metrics. */
async function criticStep(
  state: CriticState,
  scored: Scored,
): Promise<{ advantages: number[][]; keep: boolean[]; metrics: Record<string, number> }> {
  const { config } = state.input;
  const prompts = scored.rollouts.map((r) => scored.queries[r.queryIndex]!.promptIds);
  const batch = packBatch(prompts, scored.rollouts.map((r) => r.completionIds), state.input.padId);
  const oldFlat = await tf.tidy(() => valuesOf(state, batch)).data() as Float32Array;
  const oldValues = ragged(oldFlat, batch);

  const klCoef = state.kl?.value ?? config.kl_coef;
  const useKlReward = !config.kl_in_loss && klCoef > 0 && scored.refLogprobs !== undefined;
  const kls = scored.rollouts.map((r, i) =>
    useKlReward
      ? klPerToken(r.logprobs, scored.refLogprobs![i]!, { estimator: config.kl_estimator })
      : new Array<number>(r.completionIds.length).fill(0)
  );
  const out = ppoAdvantages(
    { scores: scored.verdicts.map((v) => v.reward), kls, values: oldValues },
    {
      klCoef: useKlReward ? klCoef : 0,
      gamma: config.gamma,
      lam: config.lam,
      whitenAdvantages: config.whiten_advantages,
    },
  );

  // --- value training: ppo_epochs steps of the clipped value loss on the kept rows ---
  const mask = Float32Array.from(batch.mask);
  out.keep.forEach((k, i) => {
    if (!k) mask.fill(0, i * batch.t, (i + 1) * batch.t);
  });
  const returnsFlat = unragged(out.returns, batch);
  let lossValue = 0, clipFrac = 0;
  const k = config.num_mini_batches, t = batch.t;
  let steps = 0;
  for (let epoch = 0; epoch < config.ppo_epochs; epoch++) {
    for (let m = 0; m < k; m++) {
      // Rows [s, e): one optimizer step of the value model per mini-batch.
      const s = Math.floor((m * batch.n) / k), e = Math.floor(((m + 1) * batch.n) / k);
      if (e <= s) continue;
      const sub: TokenBatch = {
        n: e - s,
        t,
        ids: batch.ids.subarray(s * t, e * t),
        targets: batch.targets.subarray(s * t, e * t),
        mask: batch.mask.subarray(s * t, e * t),
      };
      let clip: tf.Scalar | undefined;
      const value = state.gradients.accumulate(() => {
        const r = valueLoss({
          values: valuesOf(state, sub),
          oldValues: tf.tensor2d(oldFlat.subarray(s * t, e * t), [sub.n, t]),
          returns: tf.tensor2d(returnsFlat.subarray(s * t, e * t), [sub.n, t]),
          mask: tf.tensor2d(mask.subarray(s * t, e * t), [sub.n, t]),
        }, { cliprangeValue: config.cliprange_value });
        clip = tf.keep(r.stats.vfClipFrac);
        return tf.mul(r.loss, config.vf_coef) as tf.Scalar;
      });
      // A non-finite value gradient skips the step, as the policy's does.
      await state.gradients.apply(() => config.value_lr);
      const [v, c] = [(await value.data())[0]!, (await clip!.data())[0]!];
      tf.dispose([value, clip!]);
      if (epoch === 0) clipFrac += c / k;
      lossValue += v;
      steps++;
    }
  }
  lossValue /= Math.max(1, steps);

  const keptRows = (rows: number[][]) => rows.filter((_, i) => out.keep[i]);
  const seqKl = kls.map((row) => row.reduce((a, b) => a + b, 0));
  const meanSeqKl = seqKl.reduce((a, b) => a + b, 0) / Math.max(1, seqKl.length);
  if (state.kl && useKlReward) state.kl.update(meanSeqKl, seqKl.length);
  const allValues = keptRows(oldValues).flat();
  const allReturns = keptRows(out.returns).flat();
  const mean = (xs: number[]) => xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
  return {
    advantages: out.advantages,
    keep: out.keep,
    metrics: {
      "loss/value": lossValue,
      "value/explained_variance": explainedVariance(keptRows(oldValues), keptRows(out.returns)),
      "value/clip_ratio": clipFrac,
      "value/mean": mean(allValues),
      "returns/mean": mean(allReturns),
      "ppo/kl_coef": useKlReward ? klCoef : 0,
      "ppo/kl_per_sequence": meanSeqKl,
      "reward/kl_penalty": useKlReward ? -klCoef * meanSeqKl : 0,
    },
  };
}

/** Snapshot file names of the Critic (stored as `critic.<name>` in a checkpoint). */
const VALUE_MODEL_FILE = "model.safetensors", VALUE_OPTIMIZER_FILE = "optimizer.safetensors";

/** The value model (trunk in Hugging Face layout, head and bias) and its AdamW, as files. */
async function criticFiles(state: CriticState): Promise<Record<string, Uint8Array<ArrayBuffer>>> {
  const weights = await state.input.model.exportWeights();
  for (const v of [state.head, state.bias]) {
    weights.set(v.name, { data: (await v.data()) as Float32Array, shape: [...v.shape] });
  }
  return {
    [VALUE_MODEL_FILE]: encodeSafetensors(weights) as Uint8Array<ArrayBuffer>,
    [VALUE_OPTIMIZER_FILE]: encodeOptimizerState(
      await state.optimizer.getStateAsync(),
    ) as Uint8Array<
      ArrayBuffer
    >,
  };
}

/** Loads what {@link criticFiles} wrote; names the missing file. */
function restoreCritic(state: CriticState, message: Restore): void {
  const file = (name: string) => {
    const bytes = message.files[name];
    if (!bytes) {
      throw new TypeError(`Cannot restore actor "critic": missing file "critic.${name}"`);
    }
    return bytes;
  };
  const { tensors } = decodeSafetensors(file(VALUE_MODEL_FILE), `critic.${VALUE_MODEL_FILE}`);
  const weights: Record<string, Float32Array> = {};
  for (const [name, t] of tensors) weights[name] = t.data;
  for (const v of [state.head, state.bias]) {
    const data = weights[v.name];
    if (!data || data.length !== v.size) {
      throw new TypeError(
        `Cannot restore actor "critic": tensor "${v.name}" is missing or has the wrong size`,
      );
    }
    v.assign(tf.tensor(data, v.shape));
  }
  state.input.model.loadWeights(weights);
  state.optimizer.setState(
    decodeOptimizerState(file(VALUE_OPTIMIZER_FILE), `critic.${VALUE_OPTIMIZER_FILE}`),
  );
  const kl = message.state["kl_coef"];
  if (state.kl && typeof kl === "number") {
    state.kl = new AdaptiveKlController({
      initKlCoef: kl,
      target: state.input.config.target_kl,
      horizon: state.input.config.kl_horizon,
    });
  }
}

/** The Critic actor. */
export const critic: ActorLogic<CriticState, Scored | Snapshot | Restore, CriticInput> = {
  accepts: ["Scored", "Snapshot", "Restore"],
  init(input) {
    const d = input.model.config.hidden_size;
    const head = tf.variable(tf.zeros([d, 1]), true, "value_head.weight");
    const bias = tf.variable(tf.zeros([1]), true, "value_head.bias");
    const params = new Map([...input.model.params, ["value_head.weight", head], [
      "value_head.bias",
      bias,
    ]]);
    const optimizer = new AdamW(params, { weightDecay: 0 });
    return {
      input,
      head,
      bias,
      params,
      optimizer,
      gradients: new GradientStep(params, optimizer, {
        maxGradNorm: input.config.value_max_grad_norm,
      }),
      kl: input.config.adaptive_kl
        ? new AdaptiveKlController({
          initKlCoef: input.config.kl_coef,
          target: input.config.target_kl,
          horizon: input.config.kl_horizon,
        })
        : undefined,
    };
  },
  async handle(state, message, ctx) {
    switch (message.type) {
      case "Snapshot":
        await sendSnapshot(
          ctx,
          message.step,
          state.kl ? { kl_coef: state.kl.value } : {},
          await criticFiles(state),
        );
        return state;
      case "Restore":
        restoreCritic(state, message);
        return state;
      case "Scored": {
        const t0 = performance.now();
        const { advantages, keep, metrics } = await criticStep(state, message);
        const seconds = (performance.now() - t0) / 1000;
        const batch: TrainBatch = {
          type: "TrainBatch",
          step: message.step,
          parts: [{
            scored: {
              ...message,
              tokenAdvantages: advantages,
              timings: { ...message.timings, critic: seconds },
            },
            weight: 1,
            prefix: "",
            keep,
          }],
          update: "joint",
          metrics,
        };
        await ctx.send(state.input.target ?? "learner", batch);
        return state;
      }
      default:
        throw new TypeError(`Unknown message type: "${(message as { type: string }).type}"`);
    }
  },
  close(state) {
    state.gradients.discard();
    state.optimizer.dispose();
    state.input.model.dispose();
    tf.dispose([state.head, state.bias]);
  },
};
