/**
 * config: see `mod.ts`.
 *
 * @module
 */
import { z } from "zod";
import { GUIDE_PHRASES } from "../../prompts/system_prompts.ts";

// --- config ---

/**
 * The default SystemPrompt_L2 of Eq. 5, written in the style of the paper's Table 1 (which
 * shows only the Layer-1 prompt). It tells the model that its turn already holds its previous
 * attempt and that it must restate the final answer after a new `</think>`: the verifier scores
 * the correction's own text alone, not o_i before it (see {@linkcode layer2Answer}).
 */
export const LAYER2_SYSTEM_PROMPT: string = [
  "You are a helpful AI assistant. A conversation between User and Assistant.",
  "The User asks a mathematical question, and the Assistant solves it step-by-step.",
  "The Assistant's previous answer is already written in its turn, followed by a prompt to",
  "reconsider it. The Assistant must check that answer step-by-step and correct any mistake,",
  "then close the check with a </think> tag. After the </think> tag, the Assistant must provide",
  "the final answer, also when it is unchanged.",
  "",
].join("\n");

/**
 * Which Layer-2 groups enter the update: `"paper"` drops a q'_i whose o_i was wrong and whose
 * H corrections are all wrong (§3.2.4, Selection); `"keep_all"` keeps every group.
 */
export type Layer2Selection = "paper" | "keep_all";

/** The `mgrpo` config section: Layer 2 on top of the `grpo` section (which drives Layer 1). */
export const MgrpoConfigSchema = z.object({
  num_corrections: z.number().int().min(1).default(4).describe(
    "H: corrections sampled per Layer-2 query q'_i (the Layer-2 group size)",
  ),
  guide_phrases: z.array(z.string().min(1)).min(1).default(() => [...GUIDE_PHRASES]).describe(
    "p_guide pool: one phrase is drawn at random (seeded) per q'_i; default the paper's seven",
  ),
  layer2_system_prompt: z.string().default("").describe(
    'SystemPrompt_L2 of Eq. 5: "" leaves the system turn out (the embedded model\'s context is short), "table1" is LAYER2_SYSTEM_PROMPT (Table 1\'s style, for real models), anything else is used as written',
  ),
  guide_separator: z.string().default("\n").describe(
    "Text between o_i (or thought_i, with guide_position: in_think) and p_guide in q'_i",
  ),
  guide_position: z.enum(["after_answer", "in_think"]).default("after_answer").describe(
    'Where p_guide goes in q\'_i: "after_answer" is Eq. 5 (<think>thought_i</think>ans_i + p_guide); "in_think" is the form of the paper\'s appendix example (Table 3): <think>thought_i + p_guide, the thought left open and ans_i dropped',
  ),
  layer2_temperature: z.number().gt(0).optional().describe(
    "τ₂: sampling temperature of the H corrections (the Learner and RefPolicy score Layer 2 at it); sampler.temperature when unset, as in the paper, which uses one temperature",
  ),
  layer2_max_new_tokens: z.number().int().min(1).optional().describe(
    "Most new tokens of each correction (Layer 2), in training and in the guided-correction evaluations (train's own, deno task eval --two-turn); unset: sampler.max_new_tokens in training and eval.max_new_tokens in evaluation. A Layer-1 answer keeps the shorter budget, so a correction may write a slower check than a first answer can",
  ),
  selection: z.enum(["paper", "keep_all"]).default("paper").describe(
    'Layer-2 group selection: "paper" discards q\'_i when o_i and all H corrections are wrong; "keep_all" keeps every group',
  ),
  layer1_weight: z.number().min(0).default(1).describe(
    "w1: weight of the Layer-1 GRPO loss (Eq. 4)",
  ),
  layer2_weight: z.number().min(0).default(1).describe(
    "w2: weight of the Layer-2 GRPO loss (Eq. 6)",
  ),
  update: z.enum(["joint", "sequential"]).default("joint").describe(
    'How the shared policy is updated: "joint" takes one optimizer step on w1·L1 + w2·L2; "sequential" takes a Layer-1 step, then a Layer-2 step',
  ),
}).strict();

/** Parsed `mgrpo` config section (defaults filled in). */
export type MgrpoConfig = z.infer<typeof MgrpoConfigSchema>;
