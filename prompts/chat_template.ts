/**
 * Chat templates rendered with `@huggingface/jinja`: the ChatML form Qwen2.5
 * uses, the real templates of Hugging Face checkpoints (loaded from
 * `tokenizer_config.json` or `chat_template.jinja` and rendered as
 * `transformers`' `apply_chat_template` renders them), and the Layer-1 prompt of
 * the MGRPO paper (Table 1).
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

/**
 * The named special tokens a chat template may read (`{{ bos_token }}`), as
 * `transformers` passes them: the ones `tokenizer_config.json` sets.
 */
export interface ChatSpecialTokens {
  /** Beginning of sequence (DeepSeek-R1-Distill: `<｜begin▁of▁sentence｜>`). */
  bos_token?: string;
  /** End of sequence. */
  eos_token?: string;
  /** Unknown token. */
  unk_token?: string;
  /** Separator. */
  sep_token?: string;
  /** Padding. */
  pad_token?: string;
  /** Classifier token. */
  cls_token?: string;
  /** Mask token. */
  mask_token?: string;
}

/** The names of {@linkcode ChatSpecialTokens}, in `transformers`' order. */
const SPECIAL_TOKEN_FIELDS = [
  "bos_token",
  "eos_token",
  "unk_token",
  "sep_token",
  "pad_token",
  "cls_token",
  "mask_token",
] as const;

/** A checkpoint's chat template, as {@linkcode loadChatTemplate} returns it. */
export interface HfChatTemplate {
  /** The Jinja source. */
  template: string;
  /** The special tokens the template is rendered with. */
  specialTokens: ChatSpecialTokens;
  /** The template's name (`"default"` unless the checkpoint names its templates). */
  name: string;
  /** Where it was read from, e.g. `"ckpt/chat_template.jinja"`. */
  source: string;
}

/** Options of {@linkcode renderChat}. */
export interface RenderChatOptions {
  /**
   * A Jinja chat template (as found in `tokenizer_config.json`), or a template
   * loaded with {@linkcode loadChatTemplate}, whose special tokens then apply.
   *
   * @default {CHATML_TEMPLATE}
   */
  template?: string | HfChatTemplate;
  /**
   * Special tokens the template may read (`bos_token`, ...). They replace those
   * of a loaded `template`.
   *
   * @default {template.specialTokens, or none}
   */
  specialTokens?: ChatSpecialTokens;
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
  /**
   * More variables for the template, as the keyword arguments of `transformers`'
   * `apply_chat_template` (Qwen3's `{ enable_thinking: false }`). They may replace
   * the special tokens, as in `transformers`, but not `messages` or
   * `add_generation_prompt`.
   *
   * @default {{}}
   */
  variables?: Record<string, unknown>;
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

function render(compiled: Template, context: Record<string, unknown>): string {
  try {
    return compiled.render(context);
  } catch (cause) {
    throw new Error(
      `Cannot render chat: the template failed: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
  }
}

/**
 * Renders a conversation with a Jinja chat template, as `transformers`'
 * `apply_chat_template(messages, tokenize=False, ...)` does: the template sees
 * `messages`, `add_generation_prompt`, `tools` and `documents` (both `none`),
 * the special tokens and `options.variables`, with `trim_blocks` and
 * `lstrip_blocks` on.
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
 * the last message is not the assistant's, or `variables` sets `messages` or
 * `add_generation_prompt`.
 * @throws {Error} When the template fails while rendering (`raise_exception`, or
 * a runtime error such as a missing variable's attribute).
 */
export function renderChat(
  messages: readonly ChatMessage[],
  options: RenderChatOptions = {},
): string {
  const { template = CHATML_TEMPLATE, addGenerationPrompt = false, continueFinalMessage = false } =
    options;
  const source = typeof template === "string" ? template : template.template;
  const specialTokens = options.specialTokens ??
    (typeof template === "string" ? {} : template.specialTokens);
  const variables = options.variables ?? {};
  for (const key of ["messages", "add_generation_prompt"]) {
    if (Object.hasOwn(variables, key)) {
      throw new RangeError(
        `Cannot render chat: options.variables must not set "${key}": current value is ${
          JSON.stringify(variables[key])
        }`,
      );
    }
  }
  const context = { tools: null, documents: null, ...specialTokens, ...variables };
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
  const compiled = compile(source);
  if (!continueFinalMessage) {
    return render(compiled, {
      ...context,
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
  const rendered = render(compiled, {
    ...context,
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
   * A Jinja chat template, or one loaded with {@linkcode loadChatTemplate}.
   *
   * @default {CHATML_TEMPLATE}
   */
  template?: string | HfChatTemplate;
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

// --- Hugging Face checkpoints ---

/** Options of {@linkcode chatTemplateFromConfig}. */
export interface ChatTemplateFromConfigOptions {
  /**
   * Which template, when the checkpoint has several (the list form
   * `[{ "name": ..., "template": ... }]`).
   *
   * @default {"default"}
   */
  name?: string;
  /**
   * Where the config came from, for error messages and {@linkcode HfChatTemplate.source}.
   *
   * @default {"tokenizer_config.json"}
   */
  source?: string;
}

/** Options of {@linkcode loadChatTemplate}. */
export interface LoadChatTemplateOptions {
  /**
   * Which template, when the checkpoint has several (`additional_chat_templates/`
   * or the list form in `tokenizer_config.json`).
   *
   * @default {"default"}
   */
  name?: string;
}

function describe(value: unknown): string {
  if (value === undefined) return "undefined";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The special tokens `tokenizer_config.json` sets: strings or `AddedToken` objects. */
function specialTokensOf(config: Record<string, unknown>, where: string): ChatSpecialTokens {
  const tokens: ChatSpecialTokens = {};
  for (const field of SPECIAL_TOKEN_FIELDS) {
    const value = config[field];
    if (value === undefined || value === null) continue;
    if (typeof value === "string") tokens[field] = value;
    else if (isObject(value) && typeof value.content === "string") tokens[field] = value.content;
    else {
      throw new TypeError(
        `Cannot load chat template ${where}: field "${field}" must be a string or an object with a string "content": current value is ${
          describe(value)
        }`,
      );
    }
  }
  return tokens;
}

/** The templates of a `chat_template` field, by name (a lone string is `"default"`). */
function templatesOf(config: Record<string, unknown>, where: string): Map<string, string> {
  const value = config.chat_template;
  if (typeof value === "string") return new Map([["default", value]]);
  if (Array.isArray(value)) {
    const templates = new Map<string, string>();
    value.forEach((entry, i) => {
      if (
        !isObject(entry) || typeof entry.name !== "string" || typeof entry.template !== "string"
      ) {
        throw new TypeError(
          `Cannot load chat template ${where}: field "chat_template[${i}]" must be an object with string "name" and "template": current value is ${
            describe(entry)
          }`,
        );
      }
      templates.set(entry.name, entry.template);
    });
    return templates;
  }
  if (value === undefined || value === null) {
    throw new RangeError(
      `Cannot load chat template ${where}: the checkpoint has no chat template: field "chat_template" is missing and there is no chat_template.jinja: current value is ${
        describe(value)
      }`,
    );
  }
  throw new TypeError(
    `Cannot load chat template ${where}: field "chat_template" must be a string or a list of { name, template }: current value is ${
      describe(value)
    }`,
  );
}

function pick(
  templates: Map<string, string>,
  name: string | undefined,
  where: string,
): [string, string] {
  const key = name ?? "default";
  const template = templates.get(key);
  if (template === undefined) {
    throw new RangeError(
      `Cannot load chat template ${where}: ${
        name === undefined
          ? 'the checkpoint has several templates and none is named "default"; pass options.name'
          : `no template is named ${JSON.stringify(name)}`
      }: current value is one of ${describe([...templates.keys()])}`,
    );
  }
  return [key, template];
}

/**
 * Picks the chat template out of a parsed `tokenizer_config.json` (its
 * `chat_template`, a string or a list of named templates) together with the
 * special tokens it sets.
 *
 * @example DeepSeek-R1-Distill's template reads `bos_token`
 * ```ts
 * import assert from "node:assert/strict";
 * import { chatTemplateFromConfig, renderChat } from "./chat_template.ts";
 *
 * const template = chatTemplateFromConfig({
 *   bos_token: { __type: "AddedToken", content: "<s>" },
 *   chat_template: "{{ bos_token }}{% for m in messages %}[{{ m.content }}]{% endfor %}",
 * });
 * assert.equal(renderChat([{ role: "user", content: "hi" }], { template }), "<s>[hi]");
 * ```
 *
 * @throws {TypeError} When a field has the wrong shape.
 * @throws {RangeError} When there is no template, or none of that name.
 */
export function chatTemplateFromConfig(
  config: unknown,
  options: ChatTemplateFromConfigOptions = {},
): HfChatTemplate {
  const source = options.source ?? "tokenizer_config.json";
  const where = JSON.stringify(source);
  if (!isObject(config)) {
    throw new TypeError(
      `Cannot load chat template ${where}: expected a JSON object: current value is ${
        describe(config)
      }`,
    );
  }
  const [name, template] = pick(templatesOf(config, where), options.name, where);
  return { template, specialTokens: specialTokensOf(config, where), name, source };
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) return undefined;
    throw new Error(
      `Cannot load chat template ${JSON.stringify(path)}: the file cannot be read: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
  }
}

/**
 * Loads a checkpoint's chat template as `transformers` does: the files
 * `chat_template.jinja` (named `"default"`) and `additional_chat_templates/*.jinja`
 * (named after the file) when there are any, else the `chat_template` field of
 * `tokenizer_config.json`. The special tokens always come from
 * `tokenizer_config.json`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadChatTemplate, renderChat } from "./chat_template.ts";
 *
 * const template = await loadChatTemplate("tests/fixtures/tokenizers/tiny-qwen2");
 * const text = renderChat([{ role: "user", content: "1+1?" }], {
 *   template,
 *   addGenerationPrompt: true,
 * });
 * assert.ok(text.startsWith("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud."));
 * assert.ok(text.endsWith("<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n"));
 * ```
 *
 * @throws {SyntaxError} When `tokenizer_config.json` is not valid JSON.
 * @throws {TypeError} When a field has the wrong shape.
 * @throws {RangeError} When there is no template, or none of that name.
 */
export async function loadChatTemplate(
  dir: string,
  options: LoadChatTemplateOptions = {},
): Promise<HfChatTemplate> {
  const base = dir.replace(/\/+$/, "");
  const configPath = `${base}/tokenizer_config.json`;
  const configText = await readIfExists(configPath);
  let config: unknown = {};
  if (configText !== undefined) {
    try {
      config = JSON.parse(configText);
    } catch (cause) {
      throw new SyntaxError(
        `Cannot load chat template ${JSON.stringify(configPath)}: the file is not valid JSON: ${
          cause instanceof Error ? cause.message : String(cause)
        }`,
      );
    }
  }
  if (!isObject(config)) {
    throw new TypeError(
      `Cannot load chat template ${
        JSON.stringify(configPath)
      }: expected a JSON object: current value is ${describe(config)}`,
    );
  }
  const specialTokens = specialTokensOf(config, JSON.stringify(configPath));

  // Template files take priority over the config, as in transformers.
  const files = new Map<string, [string, string]>();
  const mainPath = `${base}/chat_template.jinja`;
  const main = await readIfExists(mainPath);
  if (main !== undefined) files.set("default", [main, mainPath]);
  const extraDir = `${base}/additional_chat_templates`;
  try {
    for await (const entry of Deno.readDir(extraDir)) {
      if (!entry.isFile || !entry.name.endsWith(".jinja")) continue;
      const path = `${extraDir}/${entry.name}`;
      files.set(entry.name.slice(0, -".jinja".length), [await Deno.readTextFile(path), path]);
    }
  } catch (cause) {
    if (!(cause instanceof Deno.errors.NotFound)) throw cause;
  }
  if (files.size > 0) {
    const texts = new Map([...files].map(([name, [text]]) => [name, text]));
    const [name, template] = pick(texts, options.name, JSON.stringify(base));
    return { template, specialTokens, name, source: (files.get(name) as [string, string])[1] };
  }
  if (configText === undefined) {
    throw new RangeError(
      `Cannot load chat template ${
        JSON.stringify(base)
      }: the directory has no chat_template.jinja and no tokenizer_config.json: current value is ${
        describe(base)
      }`,
    );
  }
  const picked = chatTemplateFromConfig(
    config,
    options.name === undefined
      ? { source: configPath }
      : { source: configPath, name: options.name },
  );
  return picked;
}

/**
 * A chat template as one self-contained Jinja string: the template's special tokens are set
 * at its top (`{% set bos_token = "..." %}`), so code that carries templates as strings (the
 * `prompts.template` config field, the Corrector's Layer-2 prompts) renders them as
 * transformers would.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderChat, selfContainedTemplate } from "./chat_template.ts";
 *
 * const template = selfContainedTemplate({
 *   template: "{{ bos_token }}{{ messages[0].content }}",
 *   specialTokens: { bos_token: "<s>" },
 *   name: "default",
 *   source: "inline",
 * });
 * assert.equal(renderChat([{ role: "user", content: "hi" }], { template }), "<s>hi");
 * ```
 */
export function selfContainedTemplate(template: HfChatTemplate): string {
  const sets = Object.entries(template.specialTokens)
    .filter(([, v]) => typeof v === "string")
    .map(([k, v]) => `{%- set ${k} = ${JSON.stringify(v)} -%}`);
  return sets.join("") + template.template;
}
