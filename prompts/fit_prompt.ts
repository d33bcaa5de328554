/**
 * `prompts.max_prompt_tokens` and `prompts.on_long_prompt` applied to one prompt: the one rule
 * the PromptSource, the Corrector and the self-correction evaluation share.
 *
 * @module
 */

/** What to do with a prompt longer than the limit: leave it out, or keep its last tokens. */
export type OnLongPrompt = "reject" | "truncate";

/**
 * A prompt's ids within `maxTokens`: as they are when they fit; cut to their last `maxTokens`
 * with `"truncate"` (the end of a prompt, where the answer starts, matters most); `undefined`
 * with `"reject"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fitPrompt } from "./fit_prompt.ts";
 *
 * assert.deepEqual(fitPrompt([1, 2, 3], 3), { ids: [1, 2, 3], truncated: false });
 * assert.deepEqual(fitPrompt([1, 2, 3], 2, "truncate"), { ids: [2, 3], truncated: true });
 * assert.equal(fitPrompt([1, 2, 3], 2, "reject"), undefined);
 * ```
 */
export function fitPrompt(
  ids: readonly number[],
  maxTokens: number,
  onLongPrompt: OnLongPrompt = "reject",
): { ids: readonly number[]; truncated: boolean } | undefined {
  if (ids.length <= maxTokens) return { ids, truncated: false };
  if (onLongPrompt === "reject") return undefined;
  return { ids: ids.slice(ids.length - maxTokens), truncated: true };
}
