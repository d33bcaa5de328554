/**
 * System prompts and Layer-2 guiding phrases from the MGRPO paper
 * (arXiv 2506.04746, Table 1 and §3.2.4), plus short variants for the tiny
 * embedded model whose context is a few hundred characters.
 *
 * @module
 */

/**
 * The Layer-1 system prompt of the paper's Table 1, with its line breaks,
 * including the line break before `<|im_end|>` that the table shows.
 */
export const TABLE1_SYSTEM_PROMPT: string = [
  "You are a helpful AI assistant. A conversation between User and Assistant.",
  "The User asks a mathematical question, and the Assistant solves it step-by-step.",
  "The Assistant must first output a detailed step-by-step reasoning process enclosed within",
  "<think></think> tags. After the </think> tag, the Assistant must provide the final answer",
  "based on the reasoning.",
  "",
].join("\n");

/** A one-line system prompt for the tiny embedded model, where every token costs time. */
export const SHORT_SYSTEM_PROMPT = "Think in <think></think>, then answer.";

/**
 * The paper's seven Layer-2 guiding phrases p_guide (§3.2.4), exact text. The
 * first is one phrase of two sentences.
 */
export const GUIDE_PHRASES: readonly string[] = [
  "Where might I have gone wrong this time? Let me double-check carefully.",
  "Wait, let me double-check that.",
  "Wait a minute, let me make sure I didn't make a mistake.",
  "Hmm, let me think if there's another way to approach this problem.",
  "Wait, maybe I can think about it like this:",
  "Another thought: maybe I can",
  "But wait, let me just make sure I didn't miss anything in the original problem.",
];

/** Short guiding phrases for the tiny embedded model (supervised warm-up and Layer 2). */
export const SHORT_GUIDE_PHRASES: readonly string[] = [
  "Wait, let me check.",
  "Let me recheck.",
  "Hmm, check again.",
];
