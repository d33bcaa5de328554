/**
 * The format reward of the paper's Table 1 prompt: reasoning inside one
 * `<think>…</think>` block, then a final answer, then at most an end-of-turn marker.
 *
 * @module
 */

/** The markers a completion may end with. */
const END_MARKERS: readonly string[] = ["<|im_end|>", "<|endoftext|>"];
const OPEN = "<think>";
const CLOSE = "</think>";

/** The outcome of {@linkcode checkFormat}. */
export interface FormatCheck {
  /** Whether the completion has the Table 1 structure. */
  ok: boolean;
  /**
   * `"ok"`, or what is wrong: `"text before <think>"`, `"no <think> tag"`,
   * `"no </think> tag"`, `"more than one <think> tag"`, `"empty reasoning"`,
   * `"more than one </think> tag"`, `"empty answer"`, `"text after <|im_end|>"` (or
   * `<|endoftext|>`).
   */
  reason: string;
}

/**
 * Checks the Table 1 structure: optional leading whitespace, then `<think>`, non-empty
 * reasoning, `</think>`, a non-empty answer, optionally one `<|im_end|>` or `<|endoftext|>`,
 * and nothing after it but whitespace. There must be exactly one `<think>` and one
 * `</think>`; emptiness ignores whitespace.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkFormat } from "./format_reward.ts";
 *
 * assert.deepEqual(checkFormat("<think>7+5=12</think>12<|im_end|>"), { ok: true, reason: "ok" });
 * assert.deepEqual(checkFormat("<think>7+5=12</think>\n"), { ok: false, reason: "empty answer" });
 * ```
 */
export function checkFormat(completion: string): FormatCheck {
  let text = completion;
  let end = -1;
  let marker = "";
  for (const m of END_MARKERS) {
    const at = text.indexOf(m);
    if (at >= 0 && (end < 0 || at < end)) [end, marker] = [at, m];
  }
  if (end >= 0) {
    if (text.slice(end + marker.length).trim() !== "") return fail(`text after ${marker}`);
    text = text.slice(0, end);
  }
  text = text.trimStart();
  if (!text.startsWith(OPEN)) {
    return fail(text.includes(OPEN) ? "text before <think>" : "no <think> tag");
  }
  const close = text.indexOf(CLOSE);
  if (close < 0) return fail("no </think> tag");
  const reasoning = text.slice(OPEN.length, close);
  if (reasoning.includes(OPEN)) return fail("more than one <think> tag");
  if (reasoning.trim() === "") return fail("empty reasoning");
  const answer = text.slice(close + CLOSE.length);
  if (answer.includes(OPEN)) return fail("more than one <think> tag");
  if (answer.includes(CLOSE)) return fail("more than one </think> tag");
  if (answer.trim() === "") return fail("empty answer");
  return { ok: true, reason: "ok" };
}

/**
 * The format reward: 1 when {@linkcode checkFormat} accepts the completion, else 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatReward } from "./format_reward.ts";
 *
 * assert.equal(formatReward("\n<think>2+2=4</think>\nThe answer is 4.<|endoftext|>"), 1);
 * assert.equal(formatReward("The answer is 4."), 0);
 * ```
 */
export function formatReward(completion: string): number {
  return checkFormat(completion).ok ? 1 : 0;
}

function fail(reason: string): FormatCheck {
  return { ok: false, reason };
}
