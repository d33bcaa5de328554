import assert from "node:assert/strict";
import { extractFinalAnswer, verifyIntegerAnswer } from "../../verifiers/integer_answer.ts";

Deno.test("verifyIntegerAnswer() rewards the right integer after </think>", () => {
  assert.deepEqual(verifyIntegerAnswer("<think>7+5=12 12-3=9</think>9", 9), {
    reward: 1,
    correct: true,
    parsed: "9",
    reason: "correct",
  });
  assert.deepEqual(verifyIntegerAnswer("<think>7+5=12 12-3=9</think>9<|im_end|>", "9"), {
    reward: 1,
    correct: true,
    parsed: "9",
    reason: "correct",
  });
  assert.equal(verifyIntegerAnswer("<think>x</think> 42 \n<|endoftext|>", 42).reward, 1);
  assert.equal(verifyIntegerAnswer("<think>x</think>\n\n-17", -17).reward, 1);
  assert.equal(verifyIntegerAnswer("<think>x</think>+17", 17).reward, 1);
  assert.equal(verifyIntegerAnswer("<think>x</think>007", 7).reward, 1);
  assert.equal(verifyIntegerAnswer("<think>x</think>-0", 0).reward, 1);
});

Deno.test("verifyIntegerAnswer() accepts thousands separators and compares big numbers exactly", () => {
  assert.deepEqual(verifyIntegerAnswer("<think>x</think>1,234", 1234), {
    reward: 1,
    correct: true,
    parsed: "1234",
    reason: "correct",
  });
  assert.equal(verifyIntegerAnswer("<think>x</think>-1,234,567", "-1234567").correct, true);
  assert.equal(
    verifyIntegerAnswer("<think>x</think>1,23", 123).reason,
    'answer is not an integer: "1,23"',
  );
  // 2^53 + 1 differs from 2^53 although both round to the same double.
  assert.equal(
    verifyIntegerAnswer("<think>x</think>9007199254740993", "9007199254740993").correct,
    true,
  );
  assert.deepEqual(verifyIntegerAnswer("<think>x</think>9007199254740993", "9007199254740992"), {
    reward: 0,
    correct: false,
    parsed: "9007199254740993",
    reason: "wrong answer",
  });
  assert.throws(() => verifyIntegerAnswer("<think>x</think>1", 2 ** 60), RangeError);
  assert.throws(() => verifyIntegerAnswer("<think>x</think>1", 1.5), RangeError);
  assert.throws(() => verifyIntegerAnswer("<think>x</think>1", "one"), RangeError);
});

Deno.test("verifyIntegerAnswer() gives 0 and a reason for wrong or malformed outputs", () => {
  const verdict = (text: string, gold = 9) => {
    const v = verifyIntegerAnswer(text, gold);
    assert.equal(v.reward, v.correct ? 1 : 0);
    return [v.reward, v.parsed, v.reason];
  };
  assert.deepEqual(verdict("<think>7+5=12 12-3=10</think>10"), [0, "10", "wrong answer"]);
  assert.deepEqual(verdict("The answer is 9"), [0, null, "no </think> tag"]);
  assert.deepEqual(verdict("<think>7+5=12 12-3=9 so 9"), [0, null, "unclosed <think>"]);
  assert.deepEqual(verdict("<think>a</think>9<think>b"), [0, null, "unclosed <think>"]);
  assert.deepEqual(verdict("<think>a</think>"), [0, null, "empty answer"]);
  assert.deepEqual(verdict("<think>a</think>  <|im_end|>9"), [0, null, "empty answer"]);
  assert.deepEqual(verdict("<think>a</think>abc"), [0, null, 'answer is not an integer: "abc"']);
  // No "last number anywhere" fallback.
  assert.deepEqual(verdict("<think>a</think>It is 9."), [
    0,
    null,
    'answer is not an integer: "It is 9."',
  ]);
  assert.deepEqual(verdict("<think>a</think>9.5"), [0, null, 'answer is not an integer: "9.5"']);
  // Text after the end of the turn does not count.
  assert.deepEqual(verdict("<think>a</think>8<|im_end|></think>9"), [0, "8", "wrong answer"]);
  assert.deepEqual(verdict("<think>a<|im_end|></think>9"), [0, null, "unclosed <think>"]);
});

Deno.test("verifyIntegerAnswer() reads the answer after the last </think>", () => {
  // A Layer-2 style output: a first attempt, a guide phrase, then a correction.
  const text = "<think>7+5=13</think>13 Wait, let me check. 7+5=12</think>12<|im_end|>";
  assert.equal(verifyIntegerAnswer(text, 12).correct, true);
  assert.equal(extractFinalAnswer(text), "12");
  assert.equal(extractFinalAnswer("no tag"), null);
});
