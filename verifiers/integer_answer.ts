/**
 * Rule-based rewards for completions of the form `<think>…</think>answer`
 * whose answer is an integer.
 *
 * @module
 */

/** The verdict on one completion. */
export interface IntegerVerdict {
  /** 1 when correct, else 0. */
  reward: number;
  /** Whether the parsed answer equals the gold answer. */
  correct: boolean;
  /**
   * The answer as a canonical integer (no sign for positives, no separators,
   * no leading zeros), or `null` when no integer could be read.
   */
  parsed: string | null;
  /** `"correct"`, `"wrong answer"`, or why the completion could not be read. */
  reason: string;
}

const END_MARKERS: readonly string[] = ["<|im_end|>", "<|endoftext|>"];
const INTEGER = /^([+-]?)(\d{1,3}(?:,\d{3})+|\d+)$/;

/** Cuts a completion at the first end-of-turn or end-of-text marker. */
function cutAtEnd(completion: string): string {
  let end = completion.length;
  for (const marker of END_MARKERS) {
    const at = completion.indexOf(marker);
    if (at >= 0 && at < end) end = at;
  }
  return completion.slice(0, end);
}

/** Parses `"-1,234"` / `"+7"` / `"007"` to a canonical integer string, or `null`. */
function parseInteger(text: string): string | null {
  const match = INTEGER.exec(text);
  if (match === null) return null;
  const value = BigInt(`${match[1] ?? ""}${(match[2] ?? "").replaceAll(",", "")}`);
  return value.toString();
}

function canonicalGold(gold: number | string): string {
  if (typeof gold === "number") {
    if (!Number.isSafeInteger(gold)) {
      throw new RangeError(
        `Cannot verify answer: a numeric gold answer must be a safe integer (pass larger ones as strings): current value is ${gold}`,
      );
    }
    return BigInt(gold).toString();
  }
  const parsed = parseInteger(gold.trim());
  if (parsed === null) {
    throw new RangeError(
      `Cannot verify answer: the gold answer must be an integer: current value is ${
        JSON.stringify(gold)
      }`,
    );
  }
  return parsed;
}

/**
 * The final-answer text of a completion: what follows the last `</think>`,
 * cut at `<|im_end|>` / `<|endoftext|>`, trimmed; `null` when there is no
 * `</think>`.
 */
export function extractFinalAnswer(completion: string): string | null {
  const text = cutAtEnd(completion);
  const close = text.lastIndexOf("</think>");
  if (close < 0) return null;
  return text.slice(close + "</think>".length).trim();
}

/**
 * Scores a completion against an integer gold answer: reward 1 when the text
 * after the last `</think>` is exactly that integer (optional sign, optional
 * thousands separators, compared exactly as big integers), else 0 with a
 * reason. There is no "last number anywhere" fallback.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { verifyIntegerAnswer } from "./integer_answer.ts";
 *
 * assert.deepEqual(verifyIntegerAnswer("<think>7+5=12 12-3=9</think>9<|im_end|>", 9), {
 *   reward: 1,
 *   correct: true,
 *   parsed: "9",
 *   reason: "correct",
 * });
 * assert.equal(verifyIntegerAnswer("The answer is 9", 9).reason, "no </think> tag");
 * ```
 *
 * @throws {RangeError} When the gold answer is not an integer.
 */
export function verifyIntegerAnswer(completion: string, gold: number | string): IntegerVerdict {
  const expected = canonicalGold(gold);
  const text = cutAtEnd(completion);
  const close = text.lastIndexOf("</think>");
  if (close < 0) {
    const reason = text.includes("<think>") ? "unclosed <think>" : "no </think> tag";
    return { reward: 0, correct: false, parsed: null, reason };
  }
  const answer = text.slice(close + "</think>".length).trim();
  if (answer.includes("<think>")) {
    return { reward: 0, correct: false, parsed: null, reason: "unclosed <think>" };
  }
  if (answer === "") {
    return { reward: 0, correct: false, parsed: null, reason: "empty answer" };
  }
  const parsed = parseInteger(answer);
  if (parsed === null) {
    return {
      reward: 0,
      correct: false,
      parsed: null,
      reason: `answer is not an integer: ${JSON.stringify(answer)}`,
    };
  }
  const correct = parsed === expected;
  return { reward: correct ? 1 : 0, correct, parsed, reason: correct ? "correct" : "wrong answer" };
}
