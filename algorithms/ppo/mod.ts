/**
 * PPO for language models (Schulman et al. 2017, arXiv 1707.06347; RLHF form of Ziegler et al.
 * 2019, arXiv 1909.08593) as TRL's `PPOTrainer`, OpenRLHF and verl compute it: config, per-token
 * KL-penalised rewards, GAE, whitening, the adaptive KL controller, and the clipped policy and
 * value losses. The Critic actor and the graph that call these live elsewhere.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import {
  type ActorFailed,
  type Graph,
  GraphBuilder,
  type Supervision,
} from "../../actors/runtime/mod.ts";
import { promptSource, type PromptSourceInput } from "../../actors/prompt_source.ts";
import { sampler, type SamplerInput } from "../../actors/sampler.ts";
import { verifier, type VerifierInput } from "../../actors/verifier.ts";
import { refPolicy, type RefPolicyInput } from "../../actors/ref_policy.ts";
import { critic, type CriticInput } from "./critic.ts";
import { learner, type LearnerInput, type PolicyAlgorithm } from "../../actors/learner.ts";
import type { AlgorithmPlugin } from "../registry.ts";

// --- config ---

/**
 * The `ppo` config section. Field names and defaults follow TRL's `PPOConfig` where TRL has
 * the field, verl/OpenRLHF otherwise.
 */
export const PpoConfigSchema = z.object({
  gamma: z.number().min(0).max(1).default(1.0).describe(
    "γ: discount factor of GAE (TRL gamma)",
  ),
  lam: z.number().min(0).max(1).default(0.95).describe(
    "λ: GAE trace parameter, 0 = one-step TD, 1 = Monte Carlo (TRL lam)",
  ),
  cliprange: z.number().gt(0).lt(1).default(0.2).describe(
    "ε: policy ratio clip range, the ratio is clipped to [1 - ε, 1 + ε] (TRL cliprange)",
  ),
  cliprange_value: z.number().positive().default(0.2).describe(
    "ε_v: value clip range, new values are clipped to old ± ε_v (TRL cliprange_value)",
  ),
  vf_coef: z.number().min(0).default(0.1).describe(
    "c_v: scale of the value loss (TRL vf_coef). With the separate value model and its own AdamW, Adam makes the step nearly independent of this scale: value_lr is the knob that matters",
  ),
  kl_coef: z.number().min(0).default(0.05).describe(
    "β: per-token KL penalty coefficient, the initial value when adaptive_kl (TRL kl_coef)",
  ),
  kl_estimator: z.enum(["k1", "k3"]).default("k1").describe(
    "Per-token KL estimator: k1 = logp - ref (unbiased, can be negative), k3 = exp(ref - logp) - (ref - logp) - 1 (unbiased, ≥ 0, lower variance) (TRL kl_estimator)",
  ),
  adaptive_kl: z.boolean().default(false).describe(
    "Adapt β toward target_kl with the Ziegler et al. 2019 proportional controller",
  ),
  target_kl: z.number().positive().default(6.0).describe(
    "KL_target: summed per-sequence KL the adaptive controller steers to (TRL target)",
  ),
  kl_horizon: z.number().positive().default(10000).describe(
    "K_β: adaptive controller horizon in samples, larger = slower β changes (TRL horizon)",
  ),
  kl_in_loss: z.boolean().default(false).describe(
    "Put β · KL in the policy loss as GRPO does (verl use_kl_loss) instead of in the reward",
  ),
  whiten_advantages: z.boolean().default(true).describe(
    "Whiten the per-token advantages over all tokens of the batch (TRL always does)",
  ),
  ppo_epochs: z.number().int().min(1).default(4).describe(
    "Optimisation passes over each generation batch (TRL num_ppo_epochs)",
  ),
  num_mini_batches: z.number().int().min(1).default(1).describe(
    "Mini-batches per PPO epoch, one optimizer step each, for the policy and the value model (TRL num_mini_batches)",
  ),
  value_model: z.enum(["separate"]).default("separate").describe(
    "separate: the Critic holds a value model of its own (a copy of the warm start with a scalar head, as TRL and OpenRLHF initialise the critic), trained with its own AdamW; value gradients never move the policy's features, at the cost of a second model. A value head on the policy trunk is not offered: it would need vf_coef to balance two losses on one set of features",
  ),
  value_lr: z.number().gt(0).default(3e-4).describe(
    "Learning rate of the value model's AdamW (constant)",
  ),
  loss_type: z.enum(["token_mean", "seq_mean_token_mean", "seq_mean_token_sum"]).default(
    "token_mean",
  ).describe(
    "Loss reduction (verl loss_agg_mode): token_mean over all tokens (TRL), seq_mean_token_mean (OpenRLHF), seq_mean_token_sum",
  ),
}).strict();

/** Parsed `ppo` config section (defaults filled in). */
export type PpoConfig = z.infer<typeof PpoConfigSchema>;

/** Per-token KL estimator: TRL's `kl_estimator`. */
export type KlEstimator = PpoConfig["kl_estimator"];

/** How the masked per-token losses are reduced to a scalar: verl's `loss_agg_mode`. */
export type PpoLossType = PpoConfig["loss_type"];

// --- graph ---

/**
 * PPO as a plug-in of the algorithm registry: B·G prompts a step with one completion each (as
 * many completions as GRPO samples), and a Critic whose value model starts as a trainable copy
 * of the Learner's policy.
 */
export const ppoPlugin: AlgorithmPlugin<PpoConfig> = {
  name: "ppo",
  configSchema: PpoConfigSchema,
  needsReference: (config) => config.ppo.kl_coef > 0,
  buildGraph(input) {
    const { config, promptSource: source, ...rest } = input;
    const g = config.grpo.num_generations;
    return buildPpoGraph({
      ...rest,
      promptSource: {
        ...source,
        promptsPerStep: source.promptsPerStep * g,
        numGenerations: 1,
        ...(source.cursor === undefined ? {} : { cursor: source.cursor * g }),
      },
      critic: {
        model: input.learner.model.clone({ trainable: true }),
        padId: input.sampler.tokenizer.padId,
      },
      config: config.ppo,
    });
  },
};

/** What {@link buildPpoGraph} wires together. */
export interface PpoGraphInput {
  promptSource: PromptSourceInput;
  sampler: SamplerInput;
  /** Needed when β > 0 (KL in the reward or in the loss); omitted otherwise. */
  refPolicy?: RefPolicyInput;
  /** The value model (a trainable copy of the warm start) and the tokenizer's pad id. */
  critic: Omit<CriticInput, "config" | "target">;
  learner: Omit<LearnerInput, "algorithm" | "numIterations">;
  config: PpoConfig;
  mailboxCapacity: number;
  onFailure?: (report: ActorFailed) => void;
  /** Supervision and injected faults (`runtime.max_restarts`, `faults:`). @default {} */
  supervision?: Supervision;
  /** The Verifier's scorer. @default exact integer match */
  score?: VerifierInput["score"];
}

/**
 * The PPO actor graph: PromptSource → Sampler → Verifier → (RefPolicy) → Critic → Learner,
 * the same actors as GRPO plus the Critic, which turns outcome rewards into per-token GAE
 * advantages and trains the value model. The Learner runs `ppo_epochs` optimizer steps of
 * the clipped surrogate on each batch. Sinks as in GRPO: `stats`, `eval`, `events`.
 *
 * @throws {TypeError} When β > 0 and no reference policy is given.
 */
export function buildPpoGraph(input: PpoGraphInput): Graph {
  const useRef = input.config.kl_coef > 0;
  if (useRef && !input.refPolicy) {
    throw new TypeError("Cannot build the PPO graph: kl_coef > 0 needs a reference policy");
  }
  const builder = new GraphBuilder({
    capacity: input.mailboxCapacity,
    ...(input.onFailure ? { onFailure: input.onFailure } : {}),
    ...input.supervision,
  })
    .actor("prompt_source", promptSource, input.promptSource)
    .actor("sampler", sampler, input.sampler)
    .actor("verifier", verifier, {
      trainTarget: useRef ? "ref_policy" : "critic",
      ...(input.score ? { score: input.score } : {}),
    })
    .actor("critic", critic, { ...input.critic, config: input.config, target: "learner" })
    .actor("learner", learner, {
      ...input.learner,
      numIterations: input.config.ppo_epochs,
      miniBatches: input.config.num_mini_batches,
      algorithm: ppoAlgorithm(input.config),
    });
  if (useRef) builder.actor("ref_policy", refPolicy, { ...input.refPolicy!, target: "critic" });
  return builder.sink("stats").sink("eval").sink("events").build();
}

/**
 * PPO's side of the Learner: the per-token advantages the Critic attached, and the clipped
 * surrogate loss (with the KL term when `kl_in_loss`).
 */
export function ppoAlgorithm(initial: PpoConfig): PolicyAlgorithm {
  let config = initial;
  return {
    configure(settings) {
      if (settings.cliprange !== undefined) config = { ...config, cliprange: settings.cliprange };
    },
    advantages(scored, options = {}) {
      if (scored.tokenAdvantages === undefined) {
        throw new TypeError(
          "Cannot train PPO: the batch has no per-token advantages (is the Critic in the graph?)",
        );
      }
      return {
        advantages: new Float32Array(scored.rollouts.length),
        tokenAdvantages: scored.tokenAdvantages,
        // The Critic whitened GAE over the whole batch before any selection, so `options.keep`
        // can only mask rows out of the loss (PPO's graph has no sender that selects rows).
        keep: scored.verdicts.map((v, i) => (options.keep?.[i] ?? true) && v.reward !== null),
        metrics: {},
      };
    },
    loss(inputs, scale) {
      if (inputs.advantages.rank !== 2) {
        throw new TypeError(
          `Cannot compute the PPO loss: advantages must be [N, T]: current shape is [${inputs.advantages.shape}]`,
        );
      }
      const useKl = config.kl_in_loss && config.kl_coef > 0 && inputs.refLogp !== undefined;
      const out = ppoPolicyLoss({
        logp: inputs.logp,
        oldLogp: inputs.oldLogp,
        advantages: inputs.advantages as tf.Tensor2D,
        mask: inputs.mask,
        ...(useKl ? { refLogp: inputs.refLogp! } : {}),
      }, {
        cliprange: config.cliprange,
        lossType: config.loss_type,
        ...(useKl ? { klCoef: config.kl_coef, klEstimator: config.kl_estimator } : {}),
        numItemsInBatch: scale.numItemsInBatch,
      });
      // token_mean already divides by the tokens of the whole batch; the sequence means are
      // per micro-batch, weighted by the micro-batch's share of rows.
      const loss = config.loss_type === "token_mean"
        ? out.loss
        : tf.mul(out.loss, scale.rowFraction) as tf.Scalar;
      return {
        loss,
        stats: {
          "clip_ratio": out.stats.clipFrac,
          "approx_kl": out.stats.approxKl,
          "ratio/mean": out.stats.ratioMean,
          "kl": out.stats.kl,
        },
      };
    },
  };
}

// --- rewards ---

/**
 * The per-token KL between the policy and the reference on the sampled tokens:
 *
 * - `"k1"`: `logp - ref` (TRL's default; unbiased, can be negative per token);
 * - `"k3"`: `exp(ref - logp) - (ref - logp) - 1` (Schulman's k3; unbiased, never negative).
 *
 * @param logp log π_θ_old of the sampled tokens of one sequence.
 * @param refLogp log π_ref of the same tokens.
 * @param options The estimator.
 * @returns One KL value per token.
 * @throws {TypeError} When the lengths differ.
 * @throws {RangeError} When the estimator is unknown.
 *
 * @example
 * ```ts
 * import { klPerToken } from "./mod.ts";
 * const kl = klPerToken([-1, -2], [-1.5, -1], { estimator: "k1" });
 * if (kl[0] !== 0.5 || kl[1] !== -1) throw new Error(String(kl));
 * ```
 */
export function klPerToken(
  logp: ArrayLike<number>,
  refLogp: ArrayLike<number>,
  options: { estimator: KlEstimator },
): number[] {
  checkSameLength("compute the per-token KL", "logp", logp, "refLogp", refLogp);
  const kl = new Array<number>(logp.length);
  for (let t = 0; t < logp.length; t++) {
    const logRatio = refLogp[t]! - logp[t]!; // log π_ref / π_θ
    switch (options.estimator) {
      case "k1":
        kl[t] = -logRatio;
        break;
      case "k3":
        kl[t] = Math.exp(logRatio) - logRatio - 1;
        break;
      default:
        throw new RangeError(
          `Unknown KL estimator: "${options.estimator as string}" (expected "k1" or "k3")`,
        );
    }
  }
  return kl;
}

/** Result of {@linkcode tokenRewards}. */
export interface TokenRewards {
  /** r_t per token of every sequence, the shape of the `kls` given. */
  rewards: number[][];
  /** Sequences that enter the update: false for a skipped sample or an empty sequence. */
  keep: boolean[];
}

/**
 * Per-token rewards as TRL's `PPOTrainer` builds them: the KL penalty at every token, plus the
 * outcome score at the last token of each sequence:
 *
 * ```
 * r_t = -β · KL_t            for t < T_i - 1
 * r_t = -β · KL_t + score_i  for t = T_i - 1
 * ```
 *
 * Skipped samples: a `null` or `NaN` score (every reward function abstained, as in GRPO) gives
 * that sequence all-zero rewards and `keep[i] = false`; so does a sequence with no tokens (there
 * is no last token to carry its score). The caller leaves those rows out of the loss.
 *
 * @param scores One outcome score per sequence, `null`/`NaN` for a skipped sample.
 * @param kls Per-token KL of each sequence (see {@linkcode klPerToken}), ragged.
 * @param options β, the KL coefficient (0 for no penalty, or when `kl_in_loss`).
 * @returns The ragged per-token rewards and the `keep` flags.
 * @throws {TypeError} When `scores` and `kls` have different lengths.
 * @throws {RangeError} When β is negative or not finite.
 *
 * @example
 * ```ts
 * import { tokenRewards } from "./mod.ts";
 * const { rewards, keep } = tokenRewards([1, null], [[0.2, 0.4], [0.1]], { klCoef: 0.5 });
 * // [-0.1, -0.2 + 1], skipped: [0]
 * if (rewards[0]![1] !== 0.8 || rewards[1]![0] !== 0 || keep[1] !== false) throw new Error();
 * ```
 */
export function tokenRewards(
  scores: ArrayLike<number | null>,
  kls: ReadonlyArray<ArrayLike<number>>,
  options: { klCoef: number },
): TokenRewards {
  const what = "Cannot compute token rewards";
  if (scores.length !== kls.length) {
    throw new TypeError(
      `${what}: "kls" must have one row per score (${scores.length}): current length is ${kls.length}`,
    );
  }
  const { klCoef } = options;
  if (!(Number.isFinite(klCoef) && klCoef >= 0)) {
    throw new RangeError(`${what}: "klCoef" must be >= 0: current value is ${klCoef}`);
  }
  const rewards: number[][] = [];
  const keep: boolean[] = [];
  for (let i = 0; i < kls.length; i++) {
    const kl = kls[i]!;
    const score = scores[i] ?? NaN;
    const skipped = Number.isNaN(score) || kl.length === 0;
    const row = new Array<number>(kl.length).fill(0);
    if (!skipped) {
      for (let t = 0; t < kl.length; t++) row[t] = -klCoef * kl[t]!;
      row[kl.length - 1] = row[kl.length - 1]! + score;
    }
    rewards.push(row);
    keep.push(!skipped);
  }
  return { rewards, keep };
}

/**
 * The adaptive KL controller of Ziegler et al. 2019 (TRL's `AdaptiveKLController`): a
 * proportional controller that moves β so the observed KL tracks `target`:
 *
 * ```
 * e_t = clip(KL_t / KL_target - 1, -0.2, 0.2)
 * β  ← β · (1 + K_β⁻¹ · e_t · n_steps)
 * ```
 *
 * @example
 * ```ts
 * import { AdaptiveKlController } from "./mod.ts";
 * const ctl = new AdaptiveKlController({ initKlCoef: 0.1, target: 6, horizon: 10000 });
 * ctl.update(12, 100); // error clipped to 0.2: β = 0.1 · (1 + 0.2 · 100 / 10000)
 * if (Math.abs(ctl.value - 0.1002) > 1e-12) throw new Error(String(ctl.value));
 * ```
 */
export class AdaptiveKlController {
  #value: number;
  readonly #target: number;
  readonly #horizon: number;

  /**
   * @param options Initial β (`kl_coef`), `target_kl` and `kl_horizon`.
   * @throws {RangeError} When β < 0 or the target or horizon is not > 0.
   */
  constructor(options: { initKlCoef: number; target: number; horizon: number }) {
    const what = "Cannot create the adaptive KL controller";
    const { initKlCoef, target, horizon } = options;
    if (!(Number.isFinite(initKlCoef) && initKlCoef >= 0)) {
      throw new RangeError(`${what}: "initKlCoef" must be >= 0: current value is ${initKlCoef}`);
    }
    if (!(Number.isFinite(target) && target > 0)) {
      throw new RangeError(`${what}: "target" must be > 0: current value is ${target}`);
    }
    if (!(Number.isFinite(horizon) && horizon > 0)) {
      throw new RangeError(`${what}: "horizon" must be > 0: current value is ${horizon}`);
    }
    this.#value = initKlCoef;
    this.#target = target;
    this.#horizon = horizon;
  }

  /** β, the current KL coefficient. */
  get value(): number {
    return this.#value;
  }

  /**
   * One controller step.
   *
   * @param currentKl The observed KL: TRL uses the batch mean of the per-sequence SUMMED KL.
   * @param nSteps Samples since the last update (TRL: the batch size).
   * @returns The new β.
   * @throws {RangeError} When `currentKl` is not finite or `nSteps` is negative.
   */
  update(currentKl: number, nSteps: number): number {
    const what = "Cannot update the adaptive KL controller";
    if (!Number.isFinite(currentKl)) {
      throw new RangeError(`${what}: "currentKl" must be finite: current value is ${currentKl}`);
    }
    if (!(Number.isFinite(nSteps) && nSteps >= 0)) {
      throw new RangeError(`${what}: "nSteps" must be >= 0: current value is ${nSteps}`);
    }
    const proportionalError = Math.min(Math.max(currentKl / this.#target - 1, -0.2), 0.2);
    const mult = 1 + proportionalError * nSteps / this.#horizon;
    this.#value *= mult;
    return this.#value;
  }
}

// --- advantages ---

/** Advantages and value targets of {@linkcode gae}. */
export interface GaeResult {
  /** Â_t, one per token. */
  advantages: number[];
  /** R_t = Â_t + V_t, the value targets. */
  returns: number[];
}

/** γ and λ of {@linkcode gae}. */
export interface GaeOptions {
  /** γ, the discount factor, in [0, 1]. */
  gamma: number;
  /** λ, the GAE trace parameter, in [0, 1]. */
  lam: number;
}

/**
 * Generalized Advantage Estimation (Schulman et al. 2016, arXiv 1506.02438) over one sequence,
 * as TRL's `PPOTrainer` runs it; the value after the last token is 0 (terminal):
 *
 * ```
 * δ_t = r_t + γ · V_{t+1} - V_t          (V_T = 0)
 * Â_t = δ_t + γλ · Â_{t+1}               (Â_T = 0)
 * R_t = Â_t + V_t
 * ```
 *
 * @param rewards r_t per token (see {@linkcode tokenRewards}).
 * @param values V_t per token, the critic's values at sampling time.
 * @param options γ and λ.
 * @returns The advantages and returns.
 * @throws {TypeError} When the lengths differ.
 * @throws {RangeError} When γ or λ is outside [0, 1].
 *
 * @example
 * ```ts
 * import { gae } from "./mod.ts";
 * // δ_1 = 1 - 0.5 = 0.5, δ_0 = 0 + 0.5 - 0.25 = 0.25, Â_0 = 0.25 + 0.5 · 0.5 = 0.5
 * const { advantages, returns } = gae([0, 1], [0.25, 0.5], { gamma: 1, lam: 0.5 });
 * if (advantages[0] !== 0.5 || returns[0] !== 0.75) throw new Error(String(advantages));
 * ```
 */
export function gae(
  rewards: ArrayLike<number>,
  values: ArrayLike<number>,
  options: GaeOptions,
): GaeResult {
  checkGaeOptions(options);
  checkSameLength("compute GAE", "rewards", rewards, "values", values);
  const { gamma, lam } = options;
  const n = rewards.length;
  const advantages = new Array<number>(n);
  const returns = new Array<number>(n);
  let lastGaeLam = 0;
  for (let t = n - 1; t >= 0; t--) {
    const nextValue = t < n - 1 ? values[t + 1]! : 0;
    const delta = rewards[t]! + gamma * nextValue - values[t]!;
    lastGaeLam = delta + gamma * lam * lastGaeLam;
    advantages[t] = lastGaeLam;
    returns[t] = lastGaeLam + values[t]!;
  }
  return { advantages, returns };
}

/** Advantages and value targets of {@linkcode gaeBatch}, ragged like its inputs. */
export interface GaeBatchResult {
  /** Â per token of every sequence. */
  advantages: number[][];
  /** R = Â + V per token of every sequence. */
  returns: number[][];
}

/**
 * {@linkcode gae} over each sequence of a batch.
 *
 * @param rewards r_t per token of every sequence, ragged.
 * @param values V_t per token of every sequence, the same lengths.
 * @param options γ and λ.
 * @returns Ragged advantages and returns.
 * @throws {TypeError} When the number of rows or a row's length differs.
 * @throws {RangeError} When γ or λ is outside [0, 1].
 *
 * @example
 * ```ts
 * import { gaeBatch } from "./mod.ts";
 * const { returns } = gaeBatch([[1], [0, 2]], [[0], [0, 0]], { gamma: 0.5, lam: 1 });
 * if (returns[1]![0] !== 1) throw new Error(String(returns)); // 0 + 0.5 · 2
 * ```
 */
export function gaeBatch(
  rewards: ReadonlyArray<ArrayLike<number>>,
  values: ReadonlyArray<ArrayLike<number>>,
  options: GaeOptions,
): GaeBatchResult {
  if (rewards.length !== values.length) {
    throw new TypeError(
      `Cannot compute GAE: "values" must have one row per "rewards" row (${rewards.length}): current length is ${values.length}`,
    );
  }
  const advantages: number[][] = [];
  const returns: number[][] = [];
  for (let i = 0; i < rewards.length; i++) {
    const out = gae(rewards[i]!, values[i]!, options);
    advantages.push(out.advantages);
    returns.push(out.returns);
  }
  return { advantages, returns };
}

/** Added to the variance before the reciprocal square root, as TRL's `masked_whiten`. */
const WHITEN_EPSILON = 1e-8;

/**
 * Whitens per-token values over ALL tokens of the batch, as TRL's `masked_whiten`:
 *
 * ```
 * x̂ = (x - mean) · rsqrt(var + 1e-8)      (+ mean when shiftMean is false)
 * ```
 *
 * where mean and var run over every token of every row (the rows are ragged: each holds only its
 * real tokens, so padding is already out). The variance is unbiased (Bessel's correction,
 * divides by n - 1), as TRL's `masked_var(unbiased=True)`, which `masked_whiten` calls. Where
 * TRL fails, this does not: no token at all returns the (empty) rows as they are (TRL raises),
 * and a single token counts as variance 0 (TRL divides 0 by 0 and gets NaN).
 *
 * @param values Per-token values of every sequence, ragged.
 * @param options `shiftMean` (@default true): when false the mean is added back, so only the
 * scale changes (TRL uses that for `whiten_rewards`).
 * @returns New ragged rows of the same shape.
 *
 * @example
 * ```ts
 * import { whiten } from "./mod.ts";
 * // mean 2, unbiased var (1 + 0 + 1) / 2 = 1
 * const w = whiten([[1, 2], [3]]);
 * if (Math.abs(w[1]![0]! - 1) > 1e-6) throw new Error(String(w));
 * ```
 */
export function whiten(
  values: ReadonlyArray<ArrayLike<number>>,
  options: { shiftMean?: boolean } = {},
): number[][] {
  const shiftMean = options.shiftMean ?? true;
  let n = 0;
  let sum = 0;
  for (const row of values) {
    for (let t = 0; t < row.length; t++) sum += row[t]!;
    n += row.length;
  }
  if (n === 0) return values.map(() => []);
  const mean = sum / n;
  let sq = 0;
  for (const row of values) {
    for (let t = 0; t < row.length; t++) sq += (row[t]! - mean) ** 2;
  }
  const variance = n < 2 ? 0 : sq / (n - 1);
  const scale = 1 / Math.sqrt(variance + WHITEN_EPSILON);
  return values.map((row) => Array.from(row, (x) => (x - mean) * scale + (shiftMean ? 0 : mean)));
}

/**
 * The fraction of the variance of the returns the values explain (as CleanRL logs it):
 * `1 - Var(R - V) / Var(R)` over all tokens of the batch. 1 is a perfect critic, 0 no better
 * than a constant, negative worse; `NaN` when the returns do not vary (or there are none).
 *
 * @param values V per token of every sequence, ragged.
 * @param returns R per token of every sequence, the same lengths.
 * @returns The explained variance.
 * @throws {TypeError} When the number of rows or a row's length differs.
 *
 * @example
 * ```ts
 * import { explainedVariance } from "./mod.ts";
 * // residuals [0, 0, 2]: var 8/9; returns [1, 2, 3]: var 2/3
 * const ev = explainedVariance([[1, 2], [1]], [[1, 2], [3]]);
 * if (Math.abs(ev - (1 - (8 / 9) / (2 / 3))) > 1e-12) throw new Error(String(ev));
 * ```
 */
export function explainedVariance(
  values: ReadonlyArray<ArrayLike<number>>,
  returns: ReadonlyArray<ArrayLike<number>>,
): number {
  const what = "compute the explained variance";
  if (values.length !== returns.length) {
    throw new TypeError(
      `Cannot ${what}: "returns" must have one row per "values" row (${values.length}): current length is ${returns.length}`,
    );
  }
  const residuals: number[] = [];
  const targets: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const r = returns[i]!;
    checkSameLength(what, "values", v, "returns", r);
    for (let t = 0; t < v.length; t++) {
      residuals.push(r[t]! - v[t]!);
      targets.push(r[t]!);
    }
  }
  const varReturns = variance(targets);
  return varReturns > 0 ? 1 - variance(residuals) / varReturns : NaN;
}

/** Biased (n) variance; the n cancels in {@linkcode explainedVariance}. */
function variance(x: number[]): number {
  if (x.length === 0) return NaN;
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  return x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
}

/** Inputs of {@linkcode ppoAdvantages}: one row per sequence, ragged. */
export interface PpoAdvantageInputs {
  /** Outcome score per sequence, `null`/`NaN` for a skipped sample. */
  scores: ArrayLike<number | null>;
  /** Per-token KL of each sequence ({@linkcode klPerToken}); zeros when `kl_in_loss`. */
  kls: ReadonlyArray<ArrayLike<number>>;
  /** V_t per token of each sequence, from the critic at sampling time. */
  values: ReadonlyArray<ArrayLike<number>>;
}

/** Result of {@linkcode ppoAdvantages}, ragged like the inputs. */
export interface PpoAdvantages {
  /** r_t per token (all 0 for a dropped sequence). */
  rewards: number[][];
  /** Â per token, whitened over the kept tokens when asked (all 0 for a dropped sequence). */
  advantages: number[][];
  /** R = Â + V before whitening, the value targets (all 0 for a dropped sequence). */
  returns: number[][];
  /** Sequences that enter the update. */
  keep: boolean[];
}

/**
 * The whole PPO advantage pass of TRL's `PPOTrainer`: {@linkcode tokenRewards} →
 * {@linkcode gaeBatch} → {@linkcode whiten} (advantages only, over the kept sequences' tokens;
 * the returns stay raw).
 *
 * @param inputs Scores, per-token KL and per-token values.
 * @param options β, γ, λ and whether to whiten.
 * @returns Rewards, advantages, returns and `keep`.
 * @throws {TypeError} When the rows or their lengths disagree.
 * @throws {RangeError} When an option is out of range.
 *
 * @example
 * ```ts
 * import { ppoAdvantages } from "./mod.ts";
 * const out = ppoAdvantages(
 *   { scores: [1], kls: [[0, 0]], values: [[0, 0]] },
 *   { klCoef: 0.1, gamma: 1, lam: 1, whitenAdvantages: false },
 * );
 * if (out.advantages[0]![0] !== 1) throw new Error(String(out.advantages));
 * ```
 */
export function ppoAdvantages(
  inputs: PpoAdvantageInputs,
  options: GaeOptions & { klCoef: number; whitenAdvantages: boolean },
): PpoAdvantages {
  const { rewards, keep } = tokenRewards(inputs.scores, inputs.kls, options);
  const kept = (rows: number[][]): number[][] => rows.map((row, i) => keep[i] ? row : []);
  const out = gaeBatch(rewards, inputs.values, options);
  const advantages = options.whitenAdvantages ? whiten(kept(out.advantages)) : out.advantages;
  const zeroDropped = (rows: number[][]): number[][] =>
    rows.map((row, i) => keep[i] ? row : new Array<number>(rewards[i]!.length).fill(0));
  return {
    rewards,
    advantages: zeroDropped(advantages),
    returns: zeroDropped(out.returns),
    keep,
  };
}

function checkGaeOptions(options: GaeOptions): void {
  for (const name of ["gamma", "lam"] as const) {
    const v = options[name];
    if (!(v >= 0 && v <= 1)) {
      throw new RangeError(
        `Cannot compute GAE: "${name}" must be in [0, 1]: current value is ${v}`,
      );
    }
  }
}

function checkSameLength(
  what: string,
  nameA: string,
  a: ArrayLike<unknown>,
  nameB: string,
  b: ArrayLike<unknown>,
): void {
  if (a.length !== b.length) {
    throw new TypeError(
      `Cannot ${what}: "${nameB}" must have the length of "${nameA}" (${a.length}): current length is ${b.length}`,
    );
  }
}

// --- loss ---

/**
 * Inputs of {@linkcode ppoPolicyLoss}. `[N, T]`: N completions padded to T tokens; padded
 * entries must be finite (0 is fine).
 */
export interface PpoPolicyLossInputs {
  /** log π_θ(o_t | q, o_<t), `[N, T]`: the only input gradients flow into. */
  logp: tf.Tensor2D;
  /** log π_θ_old, `[N, T]`: the policy that sampled the completions (a constant). */
  oldLogp: tf.Tensor2D;
  /** Â_t, `[N, T]`: per-token advantages (a constant). */
  advantages: tf.Tensor2D;
  /** `[N, T]` float32, 1 for a completion token in the loss, 0 for padding. */
  mask: tf.Tensor2D;
  /** log π_ref, `[N, T]`: required when `klCoef` ≠ 0 (a constant). */
  refLogp?: tf.Tensor2D;
}

/** Options of {@linkcode ppoPolicyLoss}. */
export interface PpoPolicyLossOptions {
  /** ε: the ratio is clipped to `[1 - ε, 1 + ε]`. */
  cliprange: number;
  /** Reduction of the masked per-token loss (see {@linkcode ppoPolicyLoss}). */
  lossType: PpoLossType;
  /**
   * β of a KL term in the loss (`kl_in_loss`, verl's `use_kl_loss`); 0 skips it.
   * @default 0
   */
  klCoef?: number;
  /**
   * Estimator of the in-loss KL term.
   * @default "k3"
   */
  klEstimator?: KlEstimator;
  /**
   * `token_mean` denominator: the active tokens of ALL the micro-batches accumulated into one
   * optimizer step, clamped to ≥ 1, so their losses can be summed.
   * @default the sum of this call's `mask`
   */
  numItemsInBatch?: number;
}

/** Logged statistics of {@linkcode ppoPolicyLoss}: masked token means, no gradient. */
export interface PpoPolicyLossStats {
  /** `policy/clipfrac`: fraction of tokens where the clipped term is the larger loss. */
  clipFrac: tf.Scalar;
  /** `policy/approxkl`: `0.5 · mean((logp - oldLogp)²)`, TRL's estimator (k2). */
  approxKl: tf.Scalar;
  /** `ratio/mean`: masked mean of π_θ / π_θ_old. */
  ratioMean: tf.Scalar;
  /** `kl`: masked mean of the in-loss KL term (0 when `klCoef` = 0). */
  kl: tf.Scalar;
}

/** Result of {@linkcode ppoPolicyLoss}. */
export interface PpoPolicyLossOutput {
  /** The scalar to minimise. */
  loss: tf.Scalar;
  /** Statistics to log; they do not depend on the gradient path. */
  stats: PpoPolicyLossStats;
}

/**
 * The PPO clipped surrogate policy loss, as TRL's `PPOTrainer` computes it:
 *
 * ```
 * ratio        = exp(logp - oldLogp)
 * pgLosses     = -Â · ratio
 * pgLosses2    = -Â · clip(ratio, 1 - ε, 1 + ε)
 * perTokenLoss = max(pgLosses, pgLosses2)
 * perTokenLoss = perTokenLoss + β · perTokenKl      // only when klCoef ≠ 0 (kl_in_loss)
 * ```
 *
 * reduced over the mask `m` by `lossType` (verl's `loss_agg_mode`):
 * - `token_mean`: `Σ m·ℓ / max(1, numItemsInBatch ?? Σ m)` (TRL, verl's default);
 * - `seq_mean_token_mean`: mean over rows of `Σ_t m·ℓ / max(1, Σ_t m)` (OpenRLHF);
 * - `seq_mean_token_sum`: mean over rows of `Σ_t m·ℓ`.
 *
 * `approxKl` is TRL's `approxkl`, the k2 estimator `0.5 · (logp - oldLogp)²`, masked mean.
 * Gradients flow into `logp` only; statistics come from values off the gradient path. All
 * returned tensors belong to the caller (dispose them, or call inside `tf.tidy`).
 *
 * @param inputs Per-token log-probs, advantages and mask.
 * @param options Clip range, reduction and the optional in-loss KL.
 * @returns The loss scalar and the logged statistics.
 * @throws {TypeError} When shapes disagree or `refLogp` is missing with `klCoef` ≠ 0.
 * @throws {RangeError} When an option is out of range.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { ppoPolicyLoss } from "./mod.ts";
 * const logp = tf.tensor2d([[-1, -2]]);
 * const { loss } = ppoPolicyLoss(
 *   { logp, oldLogp: logp, advantages: tf.tensor2d([[0.5, 1.5]]), mask: tf.tensor2d([[1, 1]]) },
 *   { cliprange: 0.2, lossType: "token_mean" },
 * );
 * // ratio 1 everywhere: loss = -mean(Â) = -1
 * if (Math.abs(loss.dataSync()[0]! + 1) > 1e-6) throw new Error("wrong loss");
 * ```
 */
export function ppoPolicyLoss(
  inputs: PpoPolicyLossInputs,
  options: PpoPolicyLossOptions,
): PpoPolicyLossOutput {
  const what = "Cannot compute PPO policy loss";
  const klCoef = options.klCoef ?? 0;
  const klEstimator = options.klEstimator ?? "k3";
  checkTokenTensors(what, "logp", inputs.logp, {
    oldLogp: inputs.oldLogp,
    advantages: inputs.advantages,
    mask: inputs.mask,
    ...(klCoef !== 0 || inputs.refLogp ? { refLogp: inputs.refLogp } : {}),
  });
  const { cliprange, numItemsInBatch } = options;
  if (!(cliprange > 0 && cliprange < 1)) {
    throw new RangeError(`${what}: "cliprange" must be in (0, 1): current value is ${cliprange}`);
  }
  if (!(Number.isFinite(klCoef) && klCoef >= 0)) {
    throw new RangeError(`${what}: "klCoef" must be >= 0: current value is ${klCoef}`);
  }
  checkNumItems(what, numItemsInBatch);
  const scalars = tf.tidy(() => {
    const logp = inputs.logp; // [N, T]
    const oldLogp = stopGradient(inputs.oldLogp); // [N, T]
    const advantages = stopGradient(inputs.advantages); // [N, T]
    const mask = stopGradient(inputs.mask); // [N, T]

    const logRatio = tf.sub(logp, oldLogp); // [N, T]
    const ratio = tf.exp(logRatio);
    const pgLosses = tf.neg(tf.mul(advantages, ratio));
    const pgLosses2 = tf.neg(
      tf.mul(advantages, tf.clipByValue(ratio, 1 - cliprange, 1 + cliprange)),
    );
    let perTokenLoss = tf.maximum(pgLosses, pgLosses2); // [N, T]
    let perTokenKl: tf.Tensor | undefined;
    if (klCoef !== 0) {
      const ref = stopGradient(inputs.refLogp!);
      perTokenKl = klEstimator === "k1"
        ? tf.sub(logp, ref)
        : tf.sub(tf.sub(tf.exp(tf.sub(ref, logp)), tf.sub(ref, logp)), 1);
      perTokenLoss = tf.add(perTokenLoss, tf.mul(klCoef, perTokenKl));
    }
    const loss = aggregateLoss(perTokenLoss, mask, options.lossType, numItemsInBatch);

    // Statistics, from values off the gradient path.
    const isClipped = tf.greater(stopGradient(pgLosses2), stopGradient(pgLosses));
    const logRatioValue = stopGradient(logRatio);
    return [
      loss,
      maskedMean(tf.cast(isClipped, "float32"), mask),
      tf.mul(0.5, maskedMean(tf.square(logRatioValue), mask)),
      maskedMean(tf.exp(logRatioValue), mask),
      perTokenKl === undefined ? tf.scalar(0) : maskedMean(stopGradient(perTokenKl), mask),
    ] as tf.Scalar[];
  });
  const [loss, clipFrac, approxKl, ratioMean, kl] = scalars as [
    tf.Scalar,
    tf.Scalar,
    tf.Scalar,
    tf.Scalar,
    tf.Scalar,
  ];
  return { loss, stats: { clipFrac, approxKl, ratioMean, kl } };
}

/** Inputs of {@linkcode valueLoss}, all `[N, T]` (padded entries must be finite). */
export interface ValueLossInputs {
  /** V_θ, `[N, T]`: the critic's new predictions, the only input gradients flow into. */
  values: tf.Tensor2D;
  /** V_old, `[N, T]`: the critic's values at sampling time (a constant). */
  oldValues: tf.Tensor2D;
  /** R_t = Â_t + V_old, `[N, T]`: the value targets, unwhitened (a constant). */
  returns: tf.Tensor2D;
  /** `[N, T]` float32, 1 for a completion token in the loss, 0 for padding. */
  mask: tf.Tensor2D;
}

/** Options of {@linkcode valueLoss}. */
export interface ValueLossOptions {
  /** ε_v: new values are clipped to `oldValues ± ε_v`. */
  cliprangeValue: number;
  /**
   * Reduction, as in {@linkcode ppoPolicyLoss}.
   * @default "token_mean"
   */
  lossType?: PpoLossType;
  /**
   * `token_mean` denominator over all accumulated micro-batches, as in {@linkcode ppoPolicyLoss}.
   * @default the sum of this call's `mask`
   */
  numItemsInBatch?: number;
}

/** Logged statistics of {@linkcode valueLoss}: masked token means, no gradient. */
export interface ValueLossStats {
  /** `val/clipfrac`: fraction of tokens where the clipped squared error is the larger one. */
  vfClipFrac: tf.Scalar;
  /**
   * `val/explained_variance` of the new predictions `values` over the masked tokens, as
   * {@linkcode explainedVariance}; `NaN` when the returns do not vary.
   */
  explainedVariance: tf.Scalar;
}

/** Result of {@linkcode valueLoss}. */
export interface ValueLossOutput {
  /** The scalar to minimise (not yet weighted by `vf_coef`). */
  loss: tf.Scalar;
  /** Statistics to log; they do not depend on the gradient path. */
  stats: ValueLossStats;
}

/**
 * The clipped value loss, as TRL's `PPOTrainer` computes it:
 *
 * ```
 * vpredClipped = clip(V_θ, V_old - ε_v, V_old + ε_v)
 * vfLosses1    = (V_θ - R)²
 * vfLosses2    = (vpredClipped - R)²
 * loss         = 0.5 · reduce(max(vfLosses1, vfLosses2))
 * ```
 *
 * with the reductions of {@linkcode ppoPolicyLoss} (TRL: `token_mean`). The total PPO loss is
 * `pgLoss + vf_coef · loss` for a shared trunk; a separate critic minimises `vf_coef · loss`
 * with its own optimizer (or just `loss`). Gradients flow into `values` only.
 *
 * @param inputs New and old values, returns and mask.
 * @param options Value clip range and reduction.
 * @returns The loss scalar and the logged statistics.
 * @throws {TypeError} When shapes disagree.
 * @throws {RangeError} When an option is out of range.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { valueLoss } from "./mod.ts";
 * const { loss } = valueLoss(
 *   {
 *     values: tf.tensor2d([[1]]),
 *     oldValues: tf.tensor2d([[1]]),
 *     returns: tf.tensor2d([[3]]),
 *     mask: tf.tensor2d([[1]]),
 *   },
 *   { cliprangeValue: 0.2 },
 * );
 * // 0.5 · (1 - 3)² = 2
 * if (Math.abs(loss.dataSync()[0]! - 2) > 1e-6) throw new Error("wrong loss");
 * ```
 */
export function valueLoss(inputs: ValueLossInputs, options: ValueLossOptions): ValueLossOutput {
  const what = "Cannot compute PPO value loss";
  checkTokenTensors(what, "values", inputs.values, {
    oldValues: inputs.oldValues,
    returns: inputs.returns,
    mask: inputs.mask,
  });
  const { cliprangeValue, numItemsInBatch } = options;
  if (!(Number.isFinite(cliprangeValue) && cliprangeValue > 0)) {
    throw new RangeError(
      `${what}: "cliprangeValue" must be > 0: current value is ${cliprangeValue}`,
    );
  }
  checkNumItems(what, numItemsInBatch);
  const scalars = tf.tidy(() => {
    const vpred = inputs.values; // [N, T]
    const oldValues = stopGradient(inputs.oldValues); // [N, T]
    const returns = stopGradient(inputs.returns); // [N, T]
    const mask = stopGradient(inputs.mask); // [N, T]

    const vpredClipped = tf.minimum(
      tf.maximum(vpred, tf.sub(oldValues, cliprangeValue)),
      tf.add(oldValues, cliprangeValue),
    );
    const vfLosses1 = tf.square(tf.sub(vpred, returns)); // [N, T]
    const vfLosses2 = tf.square(tf.sub(vpredClipped, returns));
    const vfLossMax = tf.maximum(vfLosses1, vfLosses2);
    const loss = tf.mul(
      0.5,
      aggregateLoss(vfLossMax, mask, options.lossType ?? "token_mean", numItemsInBatch),
    );

    // Statistics, from values off the gradient path.
    const isClipped = tf.greater(stopGradient(vfLosses2), stopGradient(vfLosses1));
    const maskedVar = (x: tf.Tensor): tf.Scalar =>
      maskedMean(tf.square(tf.sub(x, maskedMean(x, mask))), mask);
    const varReturns = maskedVar(returns);
    const ev = tf.sub(1, tf.div(maskedVar(tf.sub(returns, stopGradient(vpred))), varReturns));
    return [
      loss,
      maskedMean(tf.cast(isClipped, "float32"), mask),
      tf.where(tf.greater(varReturns, 0), ev, tf.scalar(NaN)),
    ] as tf.Scalar[];
  });
  const [loss, vfClipFrac, explainedVariance] = scalars as [tf.Scalar, tf.Scalar, tf.Scalar];
  return { loss, stats: { vfClipFrac, explainedVariance } };
}

/** Reduces a masked per-token loss `[N, T]` to a scalar, verl's `agg_loss`. */
function aggregateLoss(
  perTokenLoss: tf.Tensor,
  mask: tf.Tensor,
  lossType: PpoLossType,
  numItemsInBatch: number | undefined,
): tf.Scalar {
  const maskedLoss = tf.mul(perTokenLoss, mask); // [N, T]
  switch (lossType) {
    case "token_mean": {
      const numItems = numItemsInBatch === undefined
        ? tf.maximum(tf.sum(mask), 1)
        : tf.scalar(Math.max(numItemsInBatch, 1));
      return tf.div(tf.sum(maskedLoss), numItems);
    }
    case "seq_mean_token_mean":
      return tf.mean(tf.div(tf.sum(maskedLoss, 1), tf.maximum(tf.sum(mask, 1), 1))); // [N] → []
    case "seq_mean_token_sum":
      return tf.mean(tf.sum(maskedLoss, 1)); // [N] → []
    default:
      throw new RangeError(`Unknown loss type: "${lossType as string}"`);
  }
}

/** Mean of `x` over the tokens where `mask` is 1 (0 when there are none). */
function maskedMean(x: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.div(tf.sum(tf.mul(x, mask)), tf.maximum(tf.sum(mask), 1));
}

/** Identity forward, zero gradient backward: torch's `.detach()` for tfjs tapes. */
function stopGradient<T extends tf.Tensor>(x: T): T {
  return detach(x) as T;
}

const detach = tf.customGrad((x, _save) => ({
  value: tf.clone(x as tf.Tensor),
  gradFunc: (dy) => tf.zerosLike(dy),
}));

function checkTokenTensors(
  what: string,
  refName: string,
  ref: tf.Tensor,
  others: Record<string, tf.Tensor | undefined>,
): void {
  if (ref.rank !== 2) {
    throw new TypeError(`${what}: "${refName}" must be [N, T]: current shape is ${fmtShape(ref)}`);
  }
  for (const [name, t] of Object.entries(others)) {
    if (t === undefined) {
      throw new TypeError(
        `${what}: "${name}" is required when klCoef != 0: current value is undefined`,
      );
    }
    if (t.rank !== 2 || t.shape[0] !== ref.shape[0] || t.shape[1] !== ref.shape[1]) {
      throw new TypeError(
        `${what}: "${name}" must have the shape of "${refName}" ${
          fmtShape(ref)
        }: current shape is ${fmtShape(t)}`,
      );
    }
  }
}

function checkNumItems(what: string, numItemsInBatch: number | undefined): void {
  if (
    numItemsInBatch !== undefined && !(Number.isFinite(numItemsInBatch) && numItemsInBatch >= 0)
  ) {
    throw new RangeError(
      `${what}: "numItemsInBatch" must be >= 0: current value is ${numItemsInBatch}`,
    );
  }
}

function fmtShape(t: tf.Tensor): string {
  return `[${t.shape.join(", ")}]`;
}
