import assert from "node:assert/strict";
import {
  DEFAULT_EXTRACTION,
  extractAnswer,
  extractGoldAnswer,
  unwrapMath,
} from "../../../verifiers/math/extract.ts";
import type { ExtractionRule } from "../../../verifiers/math/types.ts";

const WITH_FALLBACKS: readonly ExtractionRule[] = [
  ...DEFAULT_EXTRACTION,
  "last_math",
  "last_number",
];

Deno.test("extractAnswer() reads the last boxed answer, with nested braces", () => {
  assert.equal(extractAnswer("First $\\boxed{3}$, then $\\boxed{\\frac{1}{2}}$."), "\\frac{1}{2}");
  assert.equal(
    extractAnswer("so $x = \\boxed{\\{1\\pm\\sqrt{5},-2\\}}.$"),
    "\\{1\\pm\\sqrt{5},-2\\}",
  );
  assert.equal(extractAnswer("\\boxed{\\boxed{7}}"), "\\boxed{7}");
  assert.equal(extractAnswer("The answer is \\boxed 5."), "5");
  assert.equal(extractAnswer("\\fbox{12}"), "12");
  assert.equal(
    extractAnswer("the result is $\\\\boxed{\\\\left( 3, \\\\frac{\\\\pi}{2} \\\\right)}.$"),
    "\\\\left( 3, \\\\frac{\\\\pi}{2} \\\\right)",
  );
});

Deno.test("extractAnswer() merges boxes separated only by filler", () => {
  assert.equal(extractAnswer("\\boxed{1} and \\boxed{2} and \\boxed{3}"), "1, 2, 3");
  assert.equal(extractAnswer("\\[ \\boxed{-2} \\quad \\text{and} \\quad \\boxed{1}. \\]"), "-2, 1");
  assert.equal(extractAnswer("\\boxed{(1, 2)}, \\boxed{(2, 1)}"), "(1, 2), (2, 1)");
  assert.equal(extractAnswer("$\\boxed{1}\\boxed{2}$"), "1, 2");
  // Text that reads as a correction or a new sentence keeps only the last box.
  assert.equal(extractAnswer("\\boxed{3}. Wait, the answer is \\boxed{5}"), "5");
  assert.equal(extractAnswer("\\boxed{3} is wrong, so \\boxed{5}"), "5");
  assert.equal(extractAnswer("\\boxed{1} no no no no no \\boxed{2}"), "2");
  assert.equal(extractAnswer("\\boxed{3}, then \\boxed{5}"), "5");
  assert.equal(extractAnswer("\\(y_1 = \\boxed{2x} \\) and \\( y_2 = \\boxed{3x} \\)"), "2x, 3x");
  assert.equal(
    extractAnswer("\\boxed{(3, 3)} \\text{ for part (a) and } \\boxed{(1, 1)}"),
    "(3, 3), (1, 1)",
  );
});

Deno.test("extractAnswer() collapses a final answer boxed twice in a row to one", () => {
  assert.equal(extractAnswer("The answer is $\\boxed{5}$\n\n\\boxed{5}"), "5");
  assert.equal(extractAnswer("\\boxed{5}, \\boxed{5}"), "5");
  assert.equal(extractAnswer("\\[\\boxed{x + 1}\\] \\[ \\boxed{x+1} \\]"), "x + 1");
  // Different values, or the same value given for two names or parts, stay a list.
  assert.equal(extractAnswer("\\boxed{1}, \\boxed{1}, \\boxed{2}"), "1, 1, 2");
  assert.equal(extractAnswer("$a = \\boxed{-2}$ and $b = \\boxed{-2}$"), "-2, -2");
  assert.equal(extractAnswer("\\boxed{3} and \\boxed{3}"), "3, 3");
  assert.equal(extractGoldAnswer("$\\boxed{7}$ $\\boxed{7}$"), "7");
});

Deno.test("extractAnswer() skips unclosed boxes and survives unbalanced braces", () => {
  assert.equal(extractAnswer("\\boxed{4} and later \\boxed{5"), "4");
  assert.equal(extractAnswer("}}}{{{\\boxed{5}"), "5");
  assert.equal(extractAnswer("\\boxed{5}}}}"), "5");
  assert.equal(extractAnswer("\\boxed{5"), "\\boxed{5");
});

Deno.test("extractAnswer() reads 'The final answer is' and 'Final Answer:' lines", () => {
  assert.equal(
    extractAnswer("Final Answer: The final answer is $(0, 1)$. I hope it is correct."),
    "(0, 1)",
  );
  assert.equal(
    extractAnswer("Final Answer: The final answer is 12,000,023. I hope it is correct."),
    "12,000,023",
  );
  assert.equal(extractAnswer("... Final Answer: The final answer is 7.78."), "7.78");
  assert.equal(
    extractAnswer("Final Answer: The volume of $ABCDEFGH$ is 120. I hope it is correct."),
    "120",
  );
  assert.equal(extractAnswer("**Final Answer**: 42"), "42");
});

Deno.test("extractAnswer() reads an escaped dollar inside a math span as part of it", () => {
  assert.equal(
    extractAnswer("Final Answer: The final answer is $\\$10$. I hope it is correct."),
    "\\$10",
  );
  assert.equal(extractAnswer("The final answer is $\\$1,000$."), "\\$1,000");
  assert.equal(extractAnswer("The answer is $\\$5.50$ per cup."), "\\$5.50");
  assert.equal(extractAnswer("The answer is $$\\$7$$"), "\\$7");
  assert.equal(extractAnswer("$\\$18$"), "\\$18");
  assert.equal(extractAnswer("It costs $\\$3$ in all.", { extraction: ["last_math"] }), "\\$3");
  // A row break \\ before the closing $ does not escape it.
  assert.equal(extractAnswer("The answer is $1 \\\\$ and more"), "1 \\\\");
});

Deno.test("extractAnswer() reads 'The answer is', '####' and the text after </think>", () => {
  assert.equal(extractAnswer("So the answer is $16,\\!386.20$. Done"), "16,\\!386.20");
  assert.equal(extractAnswer("The answer is: **42**"), "42");
  assert.equal(extractAnswer("Answer: x = 3\nsomething else"), "x = 3");
  assert.equal(extractAnswer("She makes 9 * 2 = $18.\n#### 18"), "18");
  assert.equal(extractAnswer("<think>It is 7? no, 12.</think>\n\n12<|im_end|>junk"), "12");
  assert.equal(extractAnswer("<think>\\boxed{7}</think> So \\boxed{12}."), "12");
  // A box inside the thinking does not count once the thinking is closed.
  assert.equal(extractAnswer("<think>\\boxed{7}</think>I am not sure."), "I am not sure");
});

Deno.test("extractAnswer() follows the order of the rules it is given", () => {
  const text = "The answer is 4.\n\\boxed{6}\n#### 7";
  assert.equal(extractAnswer(text), "6");
  assert.equal(extractAnswer(text, { extraction: ["answer_is", "boxed"] }), "4");
  assert.equal(
    extractAnswer("Final Answer: 5\n\\boxed{6}", { extraction: ["final_answer_is"] }),
    "5",
  );
  assert.equal(extractAnswer(text, { extraction: ["hash", "boxed"] }), "7");
  // The last occurrence of a marker counts: "final answer is 5" also says "answer is 5".
  assert.equal(
    extractAnswer("The answer is 4. The final answer is 5.", { extraction: ["answer_is"] }),
    "5",
  );
  assert.throws(
    () => extractAnswer("x", { extraction: ["nope" as ExtractionRule] }),
    /unknown extraction rule "nope"/,
  );
});

Deno.test("extractAnswer() reads the last number or math span only when asked", () => {
  const prose = "the number is not 10 which is 1,000.99€";
  assert.equal(extractAnswer(prose), prose);
  assert.equal(extractAnswer(prose, { extraction: ["last_number"] }), "1,000.99");
  assert.equal(extractAnswer("AZYUK2A", { extraction: ["last_number"] }), "AZYUK2A");
  assert.equal(
    extractAnswer("Therefore $x \\geq 5$ is the solution.", { extraction: ["last_math"] }),
    "x \\geq 5",
  );
  assert.equal(extractAnswer("Answer \\[ \n 9 \n \\]", { extraction: ["last_math"] }), "9");
  // Inline $…$ does not cross a line break.
  assert.equal(
    extractAnswer("Answer $ \n 9 \n $", { extraction: ["last_math"] }),
    "Answer $ \n 9 \n $",
  );
  // With both, the one that ends later wins.
  assert.equal(
    extractAnswer("so $d = 90/n$ and there are 12 of them", { extraction: WITH_FALLBACKS }),
    "12",
  );
  assert.equal(extractAnswer("the pair is $(7, 6)$.", { extraction: WITH_FALLBACKS }), "(7, 6)");
});

Deno.test("extractAnswer() reads a bare answer whole", () => {
  assert.equal(extractAnswer("$\\frac{1}{3}$"), "\\frac{1}{3}");
  assert.equal(extractAnswer("  \\[ 9 \\] "), "9");
  assert.equal(extractAnswer("$$x = 2$$."), "x = 2");
  assert.equal(extractAnswer("1,000.99$", { extraction: WITH_FALLBACKS }), "1,000.99$");
  assert.equal(extractAnswer(""), null);
  assert.equal(extractAnswer("<think>all thinking</think>"), null);
});

Deno.test("extractAnswer() reads 100 000-character responses", () => {
  const long = `${"We compute. ".repeat(9000)}So \\boxed{42}.`;
  assert.equal(extractAnswer(long), "42");
  assert.equal(
    extractAnswer("\\(".repeat(50_000), { extraction: WITH_FALLBACKS }),
    "\\(".repeat(50_000),
  );
  assert.equal(extractAnswer("\\boxed{".repeat(15_000)), "\\boxed{".repeat(15_000));
  assert.equal(extractAnswer(`a${" ".repeat(100_000)}b`), `a${" ".repeat(100_000)}b`);
});

Deno.test("extractGoldAnswer() unwraps references and reads their last box", () => {
  assert.equal(extractGoldAnswer("$\\frac{14}{3}$"), "\\frac{14}{3}");
  assert.equal(extractGoldAnswer("$$(3, 3), (1, 1)$$"), "(3, 3), (1, 1)");
  assert.equal(extractGoldAnswer("so $x=1/5$, or $\\boxed{20}$ percent."), "20");
  assert.equal(extractGoldAnswer("\\(\\boxed{1}\\) and \\(\\boxed{-2}\\)."), "1, -2");
  assert.equal(extractGoldAnswer("\\boxed{1} papers and \\boxed{2} bins"), "1, 2");
  assert.equal(
    extractGoldAnswer("... Final Answer: The final answer is $28 \\%$. I hope it is correct."),
    "28 \\%",
  );
  assert.equal(extractGoldAnswer("She makes $18.\n#### 18"), "18");
  assert.equal(extractGoldAnswer("18"), "18");
  assert.equal(extractGoldAnswer("   "), null);
});

Deno.test("unwrapMath() removes one pair of delimiters and trailing punctuation", () => {
  assert.equal(unwrapMath("$x$"), "x");
  assert.equal(unwrapMath("\\(x\\)."), "x");
  assert.equal(unwrapMath("$1$ and $2$"), "$1$ and $2$");
  assert.equal(unwrapMath("5\\,."), "5");
  assert.equal(unwrapMath("$\\$10$"), "\\$10");
  assert.equal(unwrapMath("\\$10\\$"), "\\$10\\$");
});
