/**
 * config: see `mod.ts`.
 *
 * @module
 */
import { z } from "zod";

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
  value_max_grad_norm: z.number().min(0).default(1).describe(
    "Global gradient-norm clip of the value model's steps; 0 = no clipping",
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
