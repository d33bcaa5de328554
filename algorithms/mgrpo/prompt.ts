/**
 * prompt: see `mod.ts`.
 *
 * @module
 */
import type { Rng } from "../../util/rng.ts";
import { type ChatMessage, renderChat } from "../../prompts/chat_template.ts";
import { LAYER2_SYSTEM_PROMPT } from "./config.ts";

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
