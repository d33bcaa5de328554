/**
 * Chat templates, the Layer-1 system prompt and the Layer-2 guiding phrases.
 *
 * @module
 */

export * from "./chat_template.ts";
export * from "./system_prompts.ts";
export * from "./fit_prompt.ts";
