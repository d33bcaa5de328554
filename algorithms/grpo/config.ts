/**
 * config: see `mod.ts`.
 *
 * @module
 */
import { z } from "zod";

// --- config ---

/**
 * The `grpo` config section. Field names and defaults follow TRL's
 * `GRPOConfig` where TRL has the field.
 */
export const GrpoConfigSchema = z.object({
  num_generations: z.number().int().min(2).default(8).describe(
    "G: completions sampled per prompt (group size)",
  ),
  loss_type: z.enum(["grpo", "bnpo", "dr_grpo", "dapo"]).default("dapo").describe(
    "Loss reduction: grpo (per-sequence mean), bnpo (per-batch token mean), dr_grpo (divide by N·T_max), dapo (token mean over the whole generation batch)",
  ),
  scale_rewards: z.enum(["group", "batch", "none"]).default("group").describe(
    "Advantage scaling: divide R - mean(R) by the group std, the batch std, or nothing",
  ),
  epsilon: z.number().positive().default(0.2).describe(
    "ε: lower clip range, the ratio is clipped to [1 - ε, 1 + ε_high]",
  ),
  epsilon_high: z.number().positive().optional().describe(
    "ε_high: upper clip range (clip-higher, DAPO uses 0.28); when absent equals ε",
  ),
  beta: z.number().min(0).default(0.0).describe(
    "β: k3 KL coefficient; 0 skips the reference model",
  ),
  num_iterations: z.number().int().min(1).default(1).describe(
    "μ: optimisation passes over each generation batch",
  ),
  mask_truncated_completions: z.boolean().default(false).describe(
    "Exclude completions that hit the max length without EOS from the loss",
  ),
  filter_groups: z.boolean().default(false).describe(
    "Drop groups whose rewards are all equal (DAPO dynamic sampling, as in verl)",
  ),
}).strict();

/** Parsed `grpo` config section (defaults filled in). */
export type GrpoConfig = z.infer<typeof GrpoConfigSchema>;
