import assert from "node:assert/strict";
import {
  MAX_PARSE_DEPTH,
  nodeKey,
  normalizeLatex,
  parseLatex,
  parseLatexWithInfo,
} from "../../../verifiers/math/latex.ts";

/** The structural key of a parsed answer. */
function key(text: string): string {
  return nodeKey(parseLatex(text));
}

Deno.test("normalizeLatex() removes sizing, spacing and delimiters and joins thousands", () => {
  assert.equal(normalizeLatex("\\left( \\dfrac{1}{2} \\right)"), "( \\frac{1}{2} )");
  assert.equal(normalizeLatex("10,\\!080"), "10080");
  assert.equal(normalizeLatex("14{,}916"), "14916");
  assert.equal(normalizeLatex("1\\,000\\,000"), "1000000");
  assert.equal(normalizeLatex("$\\$5$"), "5");
  assert.equal(normalizeLatex("30^{\\circ}"), "30\\degree");
  assert.equal(normalizeLatex("\\\\frac{1}{2}"), "\\frac{1}{2}");
  assert.equal(normalizeLatex("a \\\\ b"), "a \\\\ b");
  assert.equal(normalizeLatex("\x0crac{7}{4}"), "\\frac{7}{4}");
  assert.equal(normalizeLatex("y^{\\prime}"), "y'");
  assert.equal(normalizeLatex("np.arcsin(1)"), "arcsin(1)");
});

Deno.test("parseLatex() parses numbers exactly, with separators and exponents", () => {
  assert.equal(key("7,425,000"), "7425000");
  assert.equal(key("1 000"), "1000");
  assert.equal(key("1,000.99"), "100099/100");
  assert.equal(key(".0000672"), "21/312500");
  assert.equal(key("4.5e33"), `45${"0".repeat(32)}`);
  assert.equal(key("1.24e-8"), "31/2500000000");
  assert.equal(key("27,54,108"), "[27,54,108]");
  assert.equal(key("(2,12) \\cup (12,102)"), "(U (2,12) (12,102))");
  const number = parseLatex("0.5");
  assert.ok(
    number.kind === "number" && number.decimal && number.value.n === 1n && number.value.d === 2n,
  );
});

Deno.test("parseLatex() parses LaTeX shorthand for fractions and roots", () => {
  assert.equal(key("\\frac12"), "(/ 1 2)");
  assert.equal(key("\\frac 59"), "(/ 5 9)");
  assert.equal(key("\\frac34i"), "(* (/ 3 4) #i)");
  assert.equal(key("\\sqrt3x"), "(* (sqrt 3) x)");
  assert.equal(key("\\sqrt[3]{x}"), "(root x 3)");
  assert.equal(key("1\\frac{4}{5}"), "(+ 1 (/ 4 5))");
  assert.equal(key("2\\frac{x}{5}"), "(* 2 (/ x 5))");
});

Deno.test("parseLatex() parses functions with and without parentheses", () => {
  assert.equal(key("2 \\sin b \\cos a"), "(* 2 (sin b) (cos a))");
  assert.equal(key("\\sin^2 x"), "(^ (sin x) 2)");
  assert.equal(key("\\sin^{-1} x"), "(arcsin x)");
  assert.equal(key("\\log_{2} 8"), "(log 8 2)");
  assert.equal(key("\\ln 2 + i\\pi / 3"), "(+ (ln 2) (/ (* #i #pi) 3))");
  assert.equal(key("\\left\\lfloor\\frac{2 n}{3}\\right\\rfloor"), "(floor (/ (* 2 n) 3))");
  assert.equal(key("|x-2|"), "(abs (+ x (- 2)))");
  assert.equal(key("\\frac{d !}{2 k(d-k) !}"), "(/ (factorial d) (* 2 k (factorial (+ d (- k)))))");
  assert.equal(key("f(x)"), "(* f x)");
  assert.equal(key("I(0)"), "(apply I 0)");
});

Deno.test("parseLatex() parses tuples, intervals, sets, lists and relations", () => {
  assert.equal(key("(1,2]"), "(1,2]");
  assert.equal(key("\\left( 3, \\frac{\\pi}{2} \\right)"), "(3,(/ #pi 2))");
  assert.equal(key("\\{1,2\\}"), "{1,2}");
  assert.equal(key("{1,2,3}"), "{1,2,3}");
  assert.equal(key("\\emptyset"), "{}");
  assert.equal(key("1, 2 and 3"), "[1,2,3]");
  assert.equal(key("(11,7)or(7,11)"), "[(11,7),(7,11)]");
  assert.equal(key("p=5,q=2;p=7,q=2"), "[[(p = 5),(q = 2)],[(p = 7),(q = 2)]]");
  assert.equal(key("-2 \\le x < 7"), "((- 2) <= x < 7)");
  assert.equal(key("x \\in [-2,7]"), "(x in [(- 2),7])");
  assert.equal(key("1 \\pm \\sqrt{19}"), "(pm 1 (sqrt 19))");
  assert.equal(key("V_{1}:V_{2}=11:21"), "((: V_1 V_2) = (: 11 21))");
});

Deno.test("parseLatex() parses matrices, words, units, percentages and bases", () => {
  assert.equal(key("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\\\ \\end{pmatrix}"), "M[1&2;3&4]");
  assert.equal(key("\\left[\\begin{array}{cc}1 & 2\\end{array}\\right]"), "M[1&2]");
  assert.equal(key("\\text{Evelyn}"), '"evelyn"');
  assert.equal(key("\\text{(B)}"), "B");
  assert.equal(key("15\\mbox{ cm}^2"), "15");
  assert.equal(key("125 miles"), "125");
  assert.equal(key("28 percent"), "(% 28)");
  assert.equal(key("50\\%"), "(% 50)");
  assert.equal(key("204_5"), "204_5");
  assert.equal(key("x_{1}"), "x_1");
  assert.equal(key("\\dot{x}_{0}"), "dot(x)_0");
});

Deno.test("parseLatexWithInfo() reports prose", () => {
  assert.equal(parseLatexWithInfo("x \\geq 5").info.prose, false);
  assert.equal(parseLatexWithInfo("5 apples").info.prose, true);
  assert.equal(parseLatexWithInfo("5 cm").info.prose, false);
  assert.equal(parseLatexWithInfo("Therefore x is the solution").info.prose, true);
});

Deno.test("parseLatex() throws SyntaxError on unreadable or too deeply nested text", () => {
  for (
    const text of ["", "\\frac{", "(1,2", "1 +", "\\begin{align} x \\end{align}", "x \\cdot", ")"]
  ) {
    assert.throws(() => parseLatex(text), SyntaxError, JSON.stringify(text));
  }
  const deep = `${"(".repeat(MAX_PARSE_DEPTH)}1${")".repeat(MAX_PARSE_DEPTH)}`;
  assert.throws(() => parseLatex(deep), /nesting deeper than/);
  assert.equal(key(`${"(".repeat(20)}1${")".repeat(20)}`), "1");
});

Deno.test("parseLatex() keeps huge powers symbolic", () => {
  // Symbolic, not evaluated: the tree still holds the exponents as written.
  assert.equal(key("10^{10^{10}}"), "(^ 10 (^ 10 10))");
  assert.equal(key("1e99999999"), "(* 1 (^ 10 99999999))");
});
