/**
 * MGRPO (Multi-layer GRPO, arXiv 2506.04746, §3.2): the pure logic of Layer 2, the
 * self-correction layer. For every Layer-1 response o_i it builds the correction query q'_i
 * (Eq. 5), classifies each of the H corrections õ_ij (successful correction, successful
 * confirmation, unsuccessful), selects the q'_i groups that enter the Layer-2 GRPO update
 * (Eq. 6), computes their advantages and the paper's self-correction metrics.
 *
 * No actors and no tensors here: the Corrector actor and the Learner call these functions.
 *
 * @module
 */
import { z } from "zod";
import type { Rng } from "../../util/rng.ts";
import { type ChatMessage, renderChat } from "../../prompts/chat_template.ts";
import { GUIDE_PHRASES } from "../../prompts/system_prompts.ts";
import {
  buildGrpoGraph,
  type GrpoGraphInput,
  grpoGraphInput,
  keptGroupAdvantages,
  type ScaleRewards,
} from "../grpo/mod.ts";
import type { AlgorithmPlugin } from "../registry.ts";
import { mcnemarExactP } from "./self_correction.ts";
import type { Graph } from "../../actors/runtime/mod.ts";

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

// --- graph ---

/**
 * The MGRPO actor graph: the GRPO graph with a Corrector between the Verifier and the
 * (RefPolicy and) Learner. Layer-1 rollouts go to the Corrector, which asks the same Sampler
 * for H corrections of every o_i; the Verifier scores them and returns them to the Corrector,
 * which selects the Layer-2 groups and sends both layers to the Learner as one batch. One
 * shared policy is updated with `layer1_weight · L1 + layer2_weight · L2`.
 */
export function buildMgrpoGraph(
  input: Omit<GrpoGraphInput, "corrector">,
  mgrpo: MgrpoConfig,
  options: { seed: number; template?: string },
): Graph {
  return buildGrpoGraph({
    ...input,
    corrector: {
      tokenizer: input.promptSource.tokenizer,
      config: mgrpo,
      seed: options.seed,
      sampling: input.promptSource.sampling,
      ...(options.template === undefined ? {} : { template: options.template }),
      ...(input.promptSource.maxPromptTokens === undefined
        ? {}
        : { maxPromptTokens: input.promptSource.maxPromptTokens }),
      ...(input.promptSource.onLongPrompt === undefined
        ? {}
        : { onLongPrompt: input.promptSource.onLongPrompt }),
    },
  });
}

/**
 * MGRPO as a plug-in of the algorithm registry: the `grpo` section sets both layers' loss,
 * the `mgrpo` section Layer 2.
 */
export const mgrpoPlugin: AlgorithmPlugin<MgrpoConfig> = {
  name: "mgrpo",
  configSchema: MgrpoConfigSchema,
  needsReference: (config) => config.grpo.beta !== 0,
  buildGraph: (input) =>
    buildMgrpoGraph(grpoGraphInput(input), input.config.mgrpo, {
      seed: input.config.run.seed,
      ...(input.config.prompts.template === undefined
        ? {}
        : { template: input.config.prompts.template }),
    }),
};

// --- layer-2 prompt ---

/** The Layer-2 system prompt a config value stands for (`"table1"` → {@link LAYER2_SYSTEM_PROMPT}). */
export function layer2SystemPrompt(value: string): string {
  return value === "table1" ? LAYER2_SYSTEM_PROMPT : value;
}

/** Where p_guide goes in q'_i: Eq. 5's `after_answer`, or the appendix's `in_think`. */
export type GuidePosition = "after_answer" | "in_think";

/** Options of {@linkcode buildLayer2Prompt} and {@linkcode layer2Assistant}. */
export interface Layer2PromptOptions {
  /**
   * SystemPrompt_L2; `""` leaves the system message out.
   *
   * @default {LAYER2_SYSTEM_PROMPT}
   */
  systemPrompt?: string;
  /**
   * A Jinja chat template.
   *
   * @default {CHATML_TEMPLATE}
   */
  template?: string;
  /**
   * Text between o_i (or thought_i) and p_guide.
   *
   * @default {"\n"}
   */
  separator?: string;
  /**
   * `"after_answer"`: Eq. 5, `<think>thought_i</think>ans_i` + separator + p_guide.
   * `"in_think"`: the paper's appendix example (Table 3), `<think>thought_i` + separator +
   * p_guide: the thought stays open and `</think>ans_i` is dropped, so the correction
   * continues the reasoning and writes its own `</think>` and answer.
   *
   * @default {"after_answer"}
   */
  position?: GuidePosition;
}

/**
 * The assistant text q'_i holds after the chat prefix: o_i (or, `in_think`, its thought
 * without `</think>ans_i`), the separator and p_guide. A response with no `</think>` (cut
 * off by the token budget) is kept whole in both positions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layer2Assistant } from "./mod.ts";
 *
 * const o = "<think>9-6=2 2+4=6</think>6";
 * assert.equal(layer2Assistant(o, "Check.", { separator: " " }), "<think>9-6=2 2+4=6</think>6 Check.");
 * assert.equal(
 *   layer2Assistant(o, "Check.", { separator: " ", position: "in_think" }),
 *   "<think>9-6=2 2+4=6 Check.",
 * );
 * ```
 */
export function layer2Assistant(
  layer1Output: string,
  guidePhrase: string,
  options: Pick<Layer2PromptOptions, "separator" | "position"> = {},
): string {
  const { separator = "\n", position = "after_answer" } = options;
  switch (position) {
    case "after_answer":
      return layer2Answer(layer1Output, separator, guidePhrase, "");
    case "in_think": {
      const close = layer1Output.lastIndexOf("</think>");
      const thought = close < 0 ? layer1Output : layer1Output.slice(0, close);
      return thought + separator + guidePhrase;
    }
    default:
      throw new RangeError(
        `Unknown guide position: "${position as string}" (expected "after_answer" or "in_think")`,
      );
  }
}

/**
 * Builds the Layer-2 query q'_i of Eq. 5:
 * SystemPrompt_L2 + User: [q] + Assistant: [`<think>thought_i</think>ans_i`] + p_guide
 * (or, with `position: "in_think"`, the appendix form `<think>thought_i` + p_guide).
 *
 * The chat template renders the system and user turns and the opening of the assistant turn
 * (its generation prompt, exactly what o_i was sampled after in Layer 1); o_i is appended to
 * it verbatim. The assistant turn stays open (no end-of-turn marker), so the model continues
 * right after the guide phrase. o_i is never passed through the template as a message: a
 * template that strips reasoning from assistant messages (DeepSeek-R1-Distill's keeps only
 * the text after `</think>`) would drop thought_i from q'_i.
 *
 * @param question The original problem q.
 * @param layer1Output The full Layer-1 response o_i as the Sampler decodes it (special tokens
 * skipped, so without `<|im_end|>`), e.g. `<think>…</think>42`.
 * @param guidePhrase p_guide, usually from {@linkcode drawGuidePhrase}.
 * @param options System prompt, chat template, separator and position.
 * @returns The prompt text to tokenize and sample H corrections from.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildLayer2Prompt } from "./mod.ts";
 *
 * const text = buildLayer2Prompt("2+3?", "<think>2+3=6</think>6", "Wait.", { systemPrompt: "" });
 * assert.equal(
 *   text,
 *   "<|im_start|>user\n2+3?<|im_end|>\n<|im_start|>assistant\n<think>2+3=6</think>6\nWait.",
 * );
 * ```
 */
export function buildLayer2Prompt(
  question: string,
  layer1Output: string,
  guidePhrase: string,
  options: Layer2PromptOptions = {},
): string {
  const { systemPrompt = LAYER2_SYSTEM_PROMPT } = options;
  const messages: ChatMessage[] = [];
  if (systemPrompt !== "") messages.push({ role: "system", content: systemPrompt });
  messages.push({ role: "user", content: question });
  const prefix = renderChat(
    messages,
    options.template === undefined
      ? { addGenerationPrompt: true }
      : { template: options.template, addGenerationPrompt: true },
  );
  return prefix + layer2Assistant(layer1Output, guidePhrase, options);
}

/**
 * Draws p_guide uniformly from the pool (one `rng.pick`), so a seeded run draws the same
 * phrases. Drawing at random keeps the model from overfitting one template (§3.2.4).
 *
 * @throws {RangeError} When the pool is empty.
 */
export function drawGuidePhrase(rng: Rng, phrases: readonly string[]): string {
  if (phrases.length === 0) {
    throw new RangeError(
      "Cannot draw a guide phrase: the pool must not be empty: current length is 0",
    );
  }
  return rng.pick(phrases);
}

/**
 * The assistant text of Eq. 5's q'_i followed by a continuation:
 * `layer1Output + separator + guidePhrase + continuation`. With `continuation = ""` it is
 * what the assistant turn of q'_i holds when the model starts its correction (o_i, the
 * separator and p_guide); with a correction's continuation it is the whole assistant turn.
 *
 * That whole turn is NOT what the verifier scores. A correction õ_ij is scored on its
 * continuation alone, the text the Sampler generated for the Layer-2 rollout: o_i sits in the
 * prompt q'_i, and its answer ans_i must not count as the correction's answer. A correction
 * must therefore state its own final answer after its own `</think>` (as
 * {@linkcode LAYER2_SYSTEM_PROMPT} asks), also when it confirms ans_i: a continuation that
 * states no answer (e.g. one cut off by the token budget) scores as wrong even when o_i was
 * right. Scoring the whole turn would instead let a lenient extractor (last number,
 * `\boxed{}`) read ans_i back out of the prompt and credit a confirmation the model never
 * made, and would show a format reward two `<think>…</think>` blocks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layer2Answer } from "./mod.ts";
 *
 * assert.equal(
 *   layer2Answer("<think>2+3=6</think>6", "\n", "Wait.", " 2+3=5.</think>5"),
 *   "<think>2+3=6</think>6\nWait. 2+3=5.</think>5",
 * );
 * ```
 */
export function layer2Answer(
  layer1Output: string,
  separator: string,
  guidePhrase: string,
  continuation: string,
): string {
  return layer1Output + separator + guidePhrase + continuation;
}

// --- dynamic verification and selection ---

/** The paper's three outcomes of one correction attempt (o_i, õ_ij), §3.2.4. */
export type CorrectionOutcome = "correction" | "confirmation" | "unsuccessful";

/**
 * Classifies one correction attempt: o_i wrong and õ_ij right is a successful `"correction"`
 * (i→c); o_i right and õ_ij right a successful `"confirmation"` (c→c); o_i right and õ_ij
 * wrong (c→i) or both wrong (i→i) is `"unsuccessful"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifyCorrection } from "./mod.ts";
 *
 * assert.equal(classifyCorrection(false, true), "correction");
 * assert.equal(classifyCorrection(true, false), "unsuccessful");
 * ```
 */
export function classifyCorrection(
  layer1Correct: boolean,
  layer2Correct: boolean,
): CorrectionOutcome {
  if (!layer2Correct) return "unsuccessful";
  return layer1Correct ? "confirmation" : "correction";
}

/**
 * One keep flag per Layer-2 group q'_i. `"paper"` (§3.2.4, Selection) discards a group iff
 * o_i was wrong AND all H corrections õ_i1…õ_iH are wrong; every other group, including a
 * right o_i whose corrections all went wrong, is kept. `"keep_all"` keeps every group.
 *
 * @param layer1Correct correct(o_i), one per Layer-1 response.
 * @param layer2Correct correct(õ_ij): for each i, the H verdicts of its corrections.
 * @param selection The selection policy.
 * @throws {TypeError} When there is not one group per o_i, or the groups do not all hold the
 * same number H ≥ 1 of verdicts (the message names the index).
 * @throws {RangeError} When `selection` is unknown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { selectLayer2Groups } from "./mod.ts";
 *
 * const keep = selectLayer2Groups([false, false, true], [[false, false], [false, true], [false, false]], "paper");
 * assert.deepEqual(keep, [false, true, true]);
 * ```
 */
export function selectLayer2Groups(
  layer1Correct: readonly boolean[],
  layer2Correct: readonly (readonly boolean[])[],
  selection: Layer2Selection,
): boolean[] {
  checkGroupShape("select Layer-2 groups", layer1Correct.length, layer2Correct, "layer2Correct");
  switch (selection) {
    case "paper":
      return layer1Correct.map((right, i) => right || layer2Correct[i]!.some(Boolean));
    case "keep_all":
      return layer1Correct.map(() => true);
    default:
      throw new RangeError(
        `Unknown selection: "${selection as string}" (expected "paper" or "keep_all")`,
      );
  }
}

/**
 * Checks that `groups` holds `n` arrays of the same length H ≥ 1 and returns H (0 when n = 0).
 */
function checkGroupShape(
  what: string,
  n: number,
  groups: readonly (ArrayLike<unknown>)[],
  name: string,
): number {
  if (groups.length !== n) {
    throw new TypeError(
      `Cannot ${what}: ${name} must hold one group per Layer-1 response (${n}): current length is ${groups.length}`,
    );
  }
  const h = groups[0]?.length ?? 0;
  groups.forEach((group, i) => {
    if (group.length === 0) {
      throw new TypeError(
        `Cannot ${what}: ${name}[${i}] must hold at least one correction: current length is 0`,
      );
    }
    if (group.length !== h) {
      throw new TypeError(
        `Cannot ${what}: ${name}[${i}] must hold H = ${h} corrections like ${name}[0]: current length is ${group.length}`,
      );
    }
  });
  return h;
}

// --- metrics ---

/**
 * Training-time self-correction metrics of one MGRPO step, over N Layer-1 responses o_i and
 * their H corrections õ_ij each. With c_i = correct(o_i) and c̃_ij = correct(õ_ij) as 0/1:
 *
 * - `mgrpo/acc_t1` (Acc@t1) = (1/N) Σ_i c_i.
 * - `mgrpo/acc_t1_prime` (Acc@t1') = (1/N) Σ_i (1/H) Σ_j c̃_ij: the expected accuracy of ONE
 *   correction attempt. The paper scores a problem corrected several times with "half of the
 *   points", which is ambiguous for H > 2 and not an expectation; averaging over the H
 *   attempts is its unbiased generalisation (for H = 1 both agree).
 * - `mgrpo/delta_t1_t1_prime` = Acc@t1' − Acc@t1.
 * - `mgrpo/delta_i_to_c` (Δ^{i→c}) = (1/(N·H)) Σ_{i,j} [¬c_i ∧ c̃_ij].
 * - `mgrpo/delta_c_to_i` (Δ^{c→i}) = (1/(N·H)) Σ_{i,j} [c_i ∧ ¬c̃_ij].
 *   Since c̃ − c = [¬c ∧ c̃] − [c ∧ ¬c̃] for 0/1 values, Acc@t1' − Acc@t1 = Δ^{i→c} − Δ^{c→i}
 *   exactly: the Δ's are the same per-attempt expectation as Acc@t1'.
 * - `mgrpo/correction_rate` = #{i : ¬c_i ∧ ∃j c̃_ij} / #{i : ¬c_i}: the fraction of wrong o_i
 *   that at least one attempt corrects (0 when no o_i is wrong).
 * - `mgrpo/confirmation_rate` = #{i : c_i ∧ ∀j c̃_ij} / #{i : c_i}: the fraction of right o_i
 *   that every attempt confirms (0 when no o_i is right).
 * - `mgrpo/discarded_frac` = #{i : ¬keep_i} / N: the q'_i groups left out of Layer 2.
 * - `mgrpo/n_correction`, `mgrpo/n_confirmation`, `mgrpo/n_unsuccessful`: how many of the N·H
 *   pairs (o_i, õ_ij) fall in each case of {@linkcode classifyCorrection}.
 * - `mgrpo/n_groups` = N.
 *
 * Acc@t2, the accuracy of the policy after the update, is measured by evaluation
 * ({@linkcode twoTurnMetrics}), not here.
 *
 * @param layer1Correct c_i, one per o_i.
 * @param layer2Correct c̃_ij, H per o_i.
 * @param keep The selection, one flag per o_i (from {@linkcode selectLayer2Groups}).
 * @throws {TypeError} When the shapes disagree (the message names the index).
 * @throws {RangeError} When there is no Layer-1 response.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mgrpoMetrics } from "./mod.ts";
 *
 * const m = mgrpoMetrics([true, false], [[true, false], [true, true]], [true, true]);
 * assert.equal(m["mgrpo/acc_t1"], 0.5); // 1/2
 * assert.equal(m["mgrpo/acc_t1_prime"], 0.75); // (1/2 + 1) / 2
 * assert.equal(m["mgrpo/delta_i_to_c"], 0.5); // 2 of 4 pairs
 * assert.equal(m["mgrpo/delta_c_to_i"], 0.25); // 1 of 4 pairs
 * ```
 */
export function mgrpoMetrics(
  layer1Correct: readonly boolean[],
  layer2Correct: readonly (readonly boolean[])[],
  keep: readonly boolean[],
): Record<string, number> {
  const what = "compute MGRPO metrics";
  const n = layer1Correct.length;
  if (n === 0) {
    throw new RangeError(
      `Cannot ${what}: there must be at least one Layer-1 response: current count is 0`,
    );
  }
  const h = checkGroupShape(what, n, layer2Correct, "layer2Correct");
  if (keep.length !== n) {
    throw new TypeError(
      `Cannot ${what}: keep must hold one flag per Layer-1 response (${n}): current length is ${keep.length}`,
    );
  }
  let right = 0;
  let correctedGroups = 0;
  let confirmedGroups = 0;
  let discarded = 0;
  const counts = { correction: 0, confirmation: 0, unsuccessful: 0 };
  let iToC = 0;
  let cToI = 0;
  layer1Correct.forEach((c, i) => {
    const attempts = layer2Correct[i]!;
    if (c) right++;
    if (!keep[i]) discarded++;
    for (const ct of attempts) {
      counts[classifyCorrection(c, ct)]++;
      if (!c && ct) iToC++;
      if (c && !ct) cToI++;
    }
    if (!c && attempts.some(Boolean)) correctedGroups++;
    if (c && attempts.every(Boolean)) confirmedGroups++;
  });
  const pairs = n * h;
  const accT1 = right / n;
  // Σ_ij c̃_ij = c→c pairs + i→c pairs.
  const accT1Prime = (counts.confirmation + counts.correction) / pairs;
  const wrong = n - right;
  return {
    "mgrpo/acc_t1": accT1,
    "mgrpo/acc_t1_prime": accT1Prime,
    "mgrpo/delta_t1_t1_prime": accT1Prime - accT1,
    "mgrpo/delta_i_to_c": iToC / pairs,
    "mgrpo/delta_c_to_i": cToI / pairs,
    "mgrpo/correction_rate": wrong === 0 ? 0 : correctedGroups / wrong,
    "mgrpo/confirmation_rate": right === 0 ? 0 : confirmedGroups / right,
    "mgrpo/discarded_frac": discarded / n,
    "mgrpo/n_correction": counts.correction,
    "mgrpo/n_confirmation": counts.confirmation,
    "mgrpo/n_unsuccessful": counts.unsuccessful,
    "mgrpo/n_groups": n,
  };
}

/** One problem of an evaluation table: its verdict after each turn. */
export interface TwoTurnVerdict {
  /** The first answer is right. */
  t1: boolean;
  /** The answer after one correction prompt is right. */
  t1Prime: boolean;
  /** The answer after a second correction prompt (or the second-turn policy) is right. */
  t2?: boolean;
}

/**
 * The paper's Table 2 columns from an evaluation table; every value is a fraction of ALL
 * problems. The t2 columns are present only when every row has `t2`.
 */
export interface TwoTurnMetrics {
  /** Acc@t1 = #{t1} / N. */
  acc_t1: number;
  /** Acc@t1' = #{t1'} / N. */
  acc_t1_prime: number;
  /** Acc@t2 = #{t2} / N. */
  acc_t2?: number;
  /** Δ(t1', t2) = Acc@t2 − Acc@t1'. */
  delta_t1_prime_t2?: number;
  /** Δ^{i→c}(t1', t2) = #{¬t1' ∧ t2} / N. */
  delta_i_to_c?: number;
  /** Δ^{c→i}(t1', t2) = #{t1' ∧ ¬t2} / N. */
  delta_c_to_i?: number;
  /** McNemar's exact two-sided p of t1' against t2 on the N problems. */
  mcnemar_p?: number;
}

/**
 * Evaluation metrics of a two-turn (solve → self-correct) run, the columns of the paper's
 * Table 2: Acc@t1, Acc@t1', Acc@t2, Δ(t1', t2), Δ^{i→c}(t1', t2), Δ^{c→i}(t1', t2), each
 * a fraction of all N problems, so Δ(t1', t2) = Δ^{i→c} − Δ^{c→i}, and McNemar's exact p of
 * t1' against t2. For the intrinsic self-correction baseline t1' is the answer after the first
 * correction prompt and t2 after the second; for MGRPO (the paper's Table 2 caption) t1 and t1'
 * are the first answer and one correction of the policy before Layer-2 training, and t2 one
 * correction of the policy after MGRPO (see `docs/self-correction.md`).
 *
 * @throws {RangeError} When the table is empty.
 * @throws {TypeError} When some rows have `t2` and others do not (the message names the index).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { twoTurnMetrics } from "./mod.ts";
 *
 * const m = twoTurnMetrics([
 *   { t1: false, t1Prime: false, t2: true },
 *   { t1: true, t1Prime: true, t2: true },
 * ]);
 * assert.equal(m.delta_i_to_c, 0.5);
 * assert.equal(m.delta_t1_prime_t2, 0.5);
 * ```
 */
export function twoTurnMetrics(table: readonly TwoTurnVerdict[]): TwoTurnMetrics {
  const n = table.length;
  if (n === 0) {
    throw new RangeError(
      "Cannot compute two-turn metrics: the table must not be empty: current length is 0",
    );
  }
  const hasT2 = table[0]!.t2 !== undefined;
  let t1 = 0, t1Prime = 0, t2 = 0, iToC = 0, cToI = 0;
  table.forEach((row, i) => {
    if ((row.t2 !== undefined) !== hasT2) {
      throw new TypeError(
        `Cannot compute two-turn metrics: table[${i}].t2 must be ${
          hasT2 ? "set" : "absent"
        } like table[0].t2: current value is ${String(row.t2)}`,
      );
    }
    if (row.t1) t1++;
    if (row.t1Prime) t1Prime++;
    if (row.t2) t2++;
    if (hasT2 && !row.t1Prime && row.t2) iToC++;
    if (hasT2 && row.t1Prime && !row.t2) cToI++;
  });
  const metrics: TwoTurnMetrics = { acc_t1: t1 / n, acc_t1_prime: t1Prime / n };
  if (!hasT2) return metrics;
  return {
    ...metrics,
    acc_t2: t2 / n,
    delta_t1_prime_t2: (t2 - t1Prime) / n,
    delta_i_to_c: iToC / n,
    delta_c_to_i: cToI / n,
    mcnemar_p: mcnemarExactP(cToI, iToC),
  };
}

// --- advantages ---

/**
 * Layer-2 advantages (Eq. 6): GRPO within each kept q'_i group, over its H corrections; a
 * discarded group gets all zeros (and must also be masked out of the loss: its zeros are not
 * a learning signal). For `"batch"` scaling the std is taken over the rewards of the KEPT
 * groups only, the Layer-2 batch that is trained on.
 *
 * This is {@linkcode keptGroupAdvantages} with one flag per group instead of per correction,
 * the function GRPO's Learner side calls: the Learner hands the Layer-2 part's selection to
 * the algorithm, so these are exactly the advantages that train.
 *
 * @param rewards R(õ_ij): for each q'_i, the rewards of its H corrections.
 * @param keep One flag per q'_i (from {@linkcode selectLayer2Groups}).
 * @param scaleRewards Std scaling, as in the `grpo` section.
 * @returns One array of H advantages per q'_i.
 * @throws {TypeError} When the shapes disagree (the message names the index).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layer2Advantages } from "./mod.ts";
 *
 * const a = layer2Advantages([[1, 0], [0, 0]], [true, false], "none");
 * assert.deepEqual(a.map((g) => [...g]), [[0.5, -0.5], [0, 0]]);
 * ```
 */
export function layer2Advantages(
  rewards: readonly (readonly number[])[],
  keep: readonly boolean[],
  scaleRewards: ScaleRewards,
): Float32Array[] {
  const h = checkGroupShape("compute Layer-2 advantages", keep.length, rewards, "rewards");
  const advantages = keptGroupAdvantages(rewards.flat(), Math.max(1, h), { // [N · H]
    scaleRewards,
    keep: rewards.flatMap((group, i) => group.map(() => keep[i]!)),
  });
  return rewards.map((_, i) => advantages.slice(i * h, (i + 1) * h)); // [N][H]
}
