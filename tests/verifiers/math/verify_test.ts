import assert from "node:assert/strict";
import { MAX_ANSWER_LENGTH, verifyMath } from "../../../verifiers/math/verify.ts";

Deno.test("verifyMath() extracts both answers and reports the verdict", () => {
  assert.deepEqual(verifyMath("... so the area is $\\boxed{\\dfrac{1}{2}}$.", "$0.5$"), {
    equal: true,
    predAnswer: "\\dfrac{1}{2}",
    goldAnswer: "0.5",
    reason: "equal",
  });
  assert.deepEqual(verifyMath("The answer is $\\boxed{3}$.", "So $x = \\boxed{4}$."), {
    equal: false,
    predAnswer: "3",
    goldAnswer: "4",
    reason: "not equal",
  });
  assert.deepEqual(verifyMath("", "4"), {
    equal: false,
    predAnswer: null,
    goldAnswer: "4",
    reason: "no answer found",
  });
  assert.deepEqual(verifyMath("4", " "), {
    equal: false,
    predAnswer: "4",
    goldAnswer: null,
    reason: "no reference answer",
  });
});

Deno.test("verifyMath() rejects 0.5 for 50% and the interval (1,2) for (1,2]", () => {
  assert.equal(verifyMath("\\boxed{0.5}", "50\\%").equal, false);
  assert.equal(verifyMath("\\boxed{50}", "50\\%").equal, true);
  assert.equal(verifyMath("\\boxed{50}", "50\\%", { percent: "strict" }).equal, false);
  assert.equal(verifyMath("\\boxed{(1,2)}", "(1,2]").equal, false);
  assert.equal(verifyMath("\\boxed{\\{2, 1\\}}", "1, 2").equal, true);
  assert.equal(verifyMath("\\boxed{(2, 1)}", "(1, 2)").equal, false);
});

Deno.test("verifyMath() passes its options through", () => {
  assert.equal(verifyMath("\\boxed{4.49e33}", "4.5e33").equal, false);
  assert.equal(verifyMath("\\boxed{4.49e33}", "4.5e33", { relativeTolerance: 1e-2 }).equal, true);
  const prose = "so the number is 10 which is 1,000.99m²";
  assert.equal(verifyMath(prose, "1000.99").equal, false);
  assert.equal(verifyMath(prose, "1000.99", { extraction: ["boxed", "last_number"] }).equal, true);
});

Deno.test("verifyMath() decides huge powers without evaluating them", () => {
  assert.equal(verifyMath("\\boxed{10^{10^{10}}}", "10^{10^{10}}").equal, true);
  assert.equal(verifyMath("\\boxed{10^{10^{10}}}", "10^{10^{11}}").equal, false);
  assert.equal(verifyMath("\\boxed{2^{2^{2^{2^{2^{2}}}}}}", "5").equal, false);
  assert.equal(verifyMath("\\boxed{9999999999!}", "1").equal, false);
  assert.equal(verifyMath("\\boxed{\\sum_{k=1}^{10^{9}} k}", "1").equal, false);
  assert.equal(verifyMath("\\boxed{1e99999999}", "1e99999999").equal, true);
});

Deno.test("verifyMath() decides 100 000-character responses", () => {
  assert.equal(verifyMath(`${"Let us think. ".repeat(8000)}\\boxed{7}`, "7").equal, true);
  assert.equal(verifyMath("x".repeat(100_000), "1").reason, "answer too long");
  assert.equal(verifyMath("1+".repeat(50_000) + "1", "1").reason, "answer too long");
  assert.equal(verifyMath("$".repeat(100_000), "1").reason, "answer too long");
  assert.equal(
    verifyMath(`\\boxed{${"9".repeat(MAX_ANSWER_LENGTH + 1)}}`, "9").reason,
    "answer too long",
  );
  assert.equal(
    verifyMath("\\(".repeat(50_000), "1", { extraction: ["last_math", "last_number"] }).equal,
    false,
  );
});

Deno.test("verifyMath() decides 10 000 nested braces and unbalanced braces", () => {
  const nested = `\\boxed{${"{".repeat(10_000)}1${"}".repeat(10_000)}}`;
  assert.equal(verifyMath(nested, "1").equal, false);
  assert.equal(verifyMath("{".repeat(10_000), "1").equal, false);
  assert.equal(verifyMath(`${"{".repeat(900)}1${"}".repeat(900)}`, "1").equal, false);
  assert.equal(verifyMath(`\\boxed{${"(".repeat(800)}1${")".repeat(800)}}`, "1").equal, false);
  assert.equal(verifyMath("}}}{{{\\boxed{5}", "5").equal, true);
  assert.equal(verifyMath("\\boxed{5}}}}", "5").equal, true);
  assert.equal(verifyMath("\\boxed{5", "5").equal, false);
  assert.equal(verifyMath("\\boxed{\\frac{1}{2}", "\\frac{1}{2}").equal, false);
});

Deno.test("verifyMath() bounds long lists and deep expressions", () => {
  const up = Array.from({ length: 450 }, (_, k) => k).join(",");
  const down = Array.from({ length: 450 }, (_, k) => 449 - k).join(",");
  assert.equal(verifyMath(`\\boxed{${up}}`, down).equal, true);
  assert.equal(verifyMath(`\\boxed{${up}}`, down.replace("449", "450")).equal, false);
  assert.equal(
    verifyMath(`\\boxed{${"\\sqrt{".repeat(250)}x${"}".repeat(250)}}`, "x").equal,
    false,
  );
  assert.equal(verifyMath(`\\boxed{${"x^".repeat(500)}x}`, "1").equal, false);
});

Deno.test("verifyMath() reads a Minerva-style dollar amount $\\$10$ as 10", () => {
  const minerva = (answer: string): string =>
    `Final Answer: The final answer is $${answer}$. I hope it is correct.`;
  assert.equal(verifyMath(minerva("\\$10"), "10").equal, true);
  assert.equal(verifyMath(minerva("\\$1,000"), "1000").equal, true);
  assert.equal(verifyMath(minerva("\\$18.50"), "18.5").equal, true);
  assert.equal(verifyMath(minerva("\\$10"), "11").equal, false);
  assert.equal(verifyMath(minerva("\\$1,000"), "1").equal, false);
});

Deno.test("verifyMath() counts a final answer boxed twice as one answer", () => {
  assert.equal(verifyMath("So $x = \\boxed{5}$\n\n\\boxed{5}", "5").equal, true);
  assert.equal(verifyMath("\\boxed{5}, \\boxed{5}", "5").equal, true);
  assert.equal(verifyMath("\\boxed{5}, \\boxed{5}", "6").equal, false);
  assert.equal(verifyMath("\\boxed{5}, \\boxed{6}", "5").equal, false);
  assert.equal(verifyMath("$a = \\boxed{-2}$ and $b = \\boxed{-2}$", "-2,-2").equal, true);
});

Deno.test("verifyMath() answers undecided when sampling cannot decide", () => {
  assert.deepEqual(verifyMath("\\boxed{(x+1)^{1000000}}", "(1+x)^{1000000}"), {
    equal: false,
    predAnswer: "(x+1)^{1000000}",
    goldAnswer: "(1+x)^{1000000}",
    reason: "undecided",
  });
  assert.equal(verifyMath("\\boxed{(x+1)^{1000}}", "(1+x)^{1000}").reason, "equal");
  assert.equal(
    verifyMath("\\boxed{\\frac{(x+1)^{1000000}}{(x+1)^{999999}}}", "x+1").reason,
    "undecided",
  );
  assert.equal(verifyMath("\\boxed{2^{2^{2^{2^{2^{2}}}}}}", "5").reason, "undecided");
  // A difference seen at a point where both sides are finite is still decided, and so is
  // a value that is infinite or undefined for real.
  assert.equal(verifyMath("\\boxed{x+1}", "x+2").reason, "not equal");
  assert.equal(verifyMath("\\boxed{\\arcsin(x)}", "x").reason, "not equal");
  assert.equal(verifyMath("\\boxed{\\frac{\\pi}{0}}", "\\frac{\\pi}{9}").reason, "not equal");
  assert.equal(verifyMath("\\boxed{\\infty}", "-\\infty").reason, "not equal");
  assert.equal(verifyMath("\\boxed{\\infty}", "10^{400}").reason, "not equal");
});
