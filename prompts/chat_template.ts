/**
 * ChatML chat templates rendered with `@huggingface/jinja`, in the form
 * Qwen2.5 uses, and the Layer-1 prompt of the MGRPO paper (Table 1).
 *
 * @module
 */

import { Template } from "@huggingface/jinja";
import { TABLE1_SYSTEM_PROMPT } from "./system_prompts.ts";

/** One chat message. */
export interface ChatMessage {
  /** Who speaks. */
  role: "system" | "user" | "assistant";
  /** What they say. */
  content: string;
}

/**
 * Qwen2.5's ChatML chat template without the tool-calling branches and
 * without the default system prompt Qwen injects when none is given. For a
 * tool-free chat that starts with a system message it renders exactly what
 * Qwen2.5's template renders.
 */
export const CHATML_TEMPLATE: string = [
  "{%- for message in messages %}",
  "    {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}",
  "{%- endfor %}",
  "{%- if add_generation_prompt %}",
  "    {{- '<|im_start|>assistant\\n' }}",
  "{%- endif %}",
].join("\n");

/** Options of {@linkcode renderChat}. */
export interface RenderChatOptions {
  /**
   * A Jinja chat template (as found in `tokenizer_config.json`).
   *
   * @default {CHATML_TEMPLATE}
   */
  template?: string;
  /**
   * Append the opening of an assistant turn, so the model writes the reply.
   *
   * @default {false}
   */
  addGenerationPrompt?: boolean;
  /**
   * Leave the final message open (no end-of-turn marker after it), so the
   * model continues it, as in `transformers`' `continue_final_message`. The
   * final message must be the assistant's. Used for the Layer-2 prompt.
   *
   * @default {false}
   */
  continueFinalMessage?: boolean;
}

const ROLES: ReadonlySet<string> = new Set(["system", "user", "assistant"]);
const CONTINUE_SENTINEL = "\u0000mgrpo-continue-final-message\u0000";
const templateCache = new Map<string, Template>();

function compile(source: string): Template {
  let template = templateCache.get(source);
  if (template === undefined) {
    try {
      template = new Template(source);
    } catch (cause) {
      throw new SyntaxError(`Cannot parse chat template: ${String(cause)}`);
    }
    if (templateCache.size >= 16) templateCache.clear();
    templateCache.set(source, template);
  }
  return template;
}

/**
 * Renders a conversation with a Jinja chat template.
 *
 * @example Layer-1 style prompt
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderChat } from "./chat_template.ts";
 *
 * const text = renderChat([{ role: "user", content: "1+1?" }], { addGenerationPrompt: true });
 * assert.equal(text, "<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n");
 * ```
 *
 * @throws {RangeError} When there are no messages, a role is unknown, or
 * `continueFinalMessage` is combined with `addGenerationPrompt` or used when
 * the last message is not the assistant's.
 */
export function renderChat(
  messages: readonly ChatMessage[],
  options: RenderChatOptions = {},
): string {
  const { template = CHATML_TEMPLATE, addGenerationPrompt = false, continueFinalMessage = false } =
    options;
  if (messages.length === 0) {
    throw new RangeError("Cannot render chat: messages must not be empty: current length is 0");
  }
  messages.forEach((message, i) => {
    if (!ROLES.has(message.role)) {
      throw new RangeError(
        `Cannot render chat: messages[${i}].role must be "system", "user" or "assistant": current value is ${
          JSON.stringify(message.role)
        }`,
      );
    }
    if (typeof message.content !== "string") {
      throw new TypeError(
        `Cannot render chat: messages[${i}].content must be a string: current value is ${
          JSON.stringify(message.content)
        }`,
      );
    }
  });
  const compiled = compile(template);
  if (!continueFinalMessage) {
    return compiled.render({
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      add_generation_prompt: addGenerationPrompt,
    });
  }
  if (addGenerationPrompt) {
    throw new RangeError(
      "Cannot render chat: continueFinalMessage and addGenerationPrompt are exclusive: current value is both true",
    );
  }
  const last = messages[messages.length - 1] as ChatMessage;
  if (last.role !== "assistant") {
    throw new RangeError(
      `Cannot render chat: continueFinalMessage needs a final assistant message: current value is ${
        JSON.stringify(last.role)
      }`,
    );
  }
  // Render with a sentinel after the final content and cut there: this works
  // for any template, and for empty or repeated content.
  const rendered = compiled.render({
    messages: messages.map((m, i) => ({
      role: m.role,
      content: i === messages.length - 1 ? m.content + CONTINUE_SENTINEL : m.content,
    })),
    add_generation_prompt: false,
  });
  const cut = rendered.lastIndexOf(CONTINUE_SENTINEL);
  if (cut < 0) {
    throw new RangeError(
      "Cannot render chat: continueFinalMessage needs a template that prints the final message content: current value is a template that drops it",
    );
  }
  return rendered.slice(0, cut);
}

/** Options of {@linkcode buildLayer1Prompt}. */
export interface Layer1PromptOptions {
  /**
   * The system prompt; `null` leaves the system message out.
   *
   * @default {TABLE1_SYSTEM_PROMPT}
   */
  systemPrompt?: string | null;
  /**
   * A Jinja chat template.
   *
   * @default {CHATML_TEMPLATE}
   */
  template?: string;
}

/**
 * Builds the Layer-1 query of the paper's Table 1: system prompt, the question
 * as the user turn, then the opening of the assistant turn.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildLayer1Prompt } from "./chat_template.ts";
 *
 * const text = buildLayer1Prompt("2+3?", { systemPrompt: "Be brief." });
 * assert.equal(
 *   text,
 *   "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+3?<|im_end|>\n<|im_start|>assistant\n",
 * );
 * ```
 */
export function buildLayer1Prompt(question: string, options: Layer1PromptOptions = {}): string {
  const systemPrompt = options.systemPrompt === undefined
    ? TABLE1_SYSTEM_PROMPT
    : options.systemPrompt;
  const messages: ChatMessage[] = [];
  if (systemPrompt !== null) messages.push({ role: "system", content: systemPrompt });
  messages.push({ role: "user", content: question });
  return renderChat(
    messages,
    options.template === undefined
      ? { addGenerationPrompt: true }
      : { template: options.template, addGenerationPrompt: true },
  );
}
