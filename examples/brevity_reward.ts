/**
 * An example reward function, loaded from YAML:
 *
 * ```yaml
 * reward:
 *   functions:
 *     - name: correct
 *       weight: 1.0
 *     - name: brevity
 *       path: examples/brevity_reward.ts
 *       weight: 0.2
 * ```
 *
 * It pays for short reasoning, but only on correct answers (so it cannot be farmed by
 * answering fast and wrong), and abstains (`null`) on completions that hit the length limit,
 * which are then scored by the other functions alone.
 *
 * @module
 */
import type { RewardSample } from "../verifiers/reward.ts";

/** Characters of reasoning at which the bonus reaches 0. */
const BUDGET = 80;

/**
 * 1 − (reasoning length / 80), floored at 0, for a correct answer; 0 for a wrong one; `null`
 * when the completion was cut at the length limit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { brevity } from "./brevity_reward.ts";
 *
 * const sample = (completion: string, correct: boolean) => ({
 *   prompt: "",
 *   completion,
 *   answer: "5",
 *   metadata: { correct, finishReason: "stop" },
 * });
 * assert.equal(brevity(sample("<think>2+3=5</think>5", true)), 1 - 5 / 80);
 * assert.equal(brevity(sample("<think>2+3=6</think>6", false)), 0);
 * ```
 */
export function brevity(sample: RewardSample): number | null {
  if (sample.metadata.finishReason === "length") return null;
  if (sample.metadata.correct !== true) return 0;
  const open = sample.completion.indexOf("<think>");
  const close = sample.completion.indexOf("</think>");
  const reasoning = open >= 0 && close > open ? close - open - "<think>".length : BUDGET;
  return Math.max(0, 1 - reasoning / BUDGET);
}
