import assert from "node:assert/strict";
import { checkFormat, formatReward } from "../../verifiers/format_reward.ts";

Deno.test("formatReward() gives 1 to the Table 1 structure", () => {
  const good = [
    "<think>7+5=12, 12-3=9</think>9",
    "<think>7+5=12, 12-3=9</think>9<|im_end|>",
    "<think>7+5=12, 12-3=9</think>9<|endoftext|>",
    "  \n<think>\nJanet sells 16 - 3 - 4 = 9 eggs; 9 * 2 = 18.\n</think>\n\nShe makes $18.\n<|im_end|>\n",
    "<think>x</think>The answer is $\\boxed{\\frac{1}{2}}$.",
    "<think>a</think> b ",
  ];
  for (const completion of good) {
    assert.deepEqual(checkFormat(completion), { ok: true, reason: "ok" }, completion);
    assert.equal(formatReward(completion), 1, completion);
  }
});

Deno.test("checkFormat() names what breaks the structure", () => {
  const bad: [string, string][] = [
    ["The answer is 9.", "no <think> tag"],
    ["", "no <think> tag"],
    ["7+5=12</think>12", "no <think> tag"],
    ["Let me think. <think>7+5=12</think>12", "text before <think>"],
    ["<think>7+5=12, the answer is 12", "no </think> tag"],
    ["<think>7+5=12<|im_end|></think>12", "text after <|im_end|>"],
    ["<think></think>12", "empty reasoning"],
    ["<think> \n </think>12", "empty reasoning"],
    ["<think>7+5=12</think>", "empty answer"],
    ["<think>7+5=12</think>\n\n<|im_end|>", "empty answer"],
    ["<think>a</think>12<think>b</think>12", "more than one <think> tag"],
    ["<think>a<think>b</think>12", "more than one <think> tag"],
    ["<think>a</think>b</think>12", "more than one </think> tag"],
    ["<think>a</think>12<|im_end|>more text", "text after <|im_end|>"],
    ["<think>a</think>12<|endoftext|>\n<think>b</think>", "text after <|endoftext|>"],
    ["<think>a</think>12<|im_end|><|endoftext|>", "text after <|im_end|>"],
    ["<think>a</think> <|im_end|>12", "text after <|im_end|>"],
    ["<THINK>a</THINK>12", "no <think> tag"],
  ];
  for (const [completion, reason] of bad) {
    assert.deepEqual(checkFormat(completion), { ok: false, reason }, completion);
    assert.equal(formatReward(completion), 0, completion);
  }
});
