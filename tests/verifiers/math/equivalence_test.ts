import assert from "node:assert/strict";
import {
  answersEquivalent,
  canonicalText,
  compareAnswers,
} from "../../../verifiers/math/equivalence.ts";
import type { EquivalenceOptions } from "../../../verifiers/math/equivalence.ts";

/** Asserts each `[pred, gold]` pair is (or is not) equivalent, naming the failing pair. */
function check(
  pairs: readonly [string, string][],
  expected: boolean,
  options: EquivalenceOptions = {},
): void {
  for (const [pred, gold] of pairs) {
    assert.equal(
      answersEquivalent(pred, gold, options),
      expected,
      `answersEquivalent(${JSON.stringify(pred)}, ${JSON.stringify(gold)}) should be ${expected}`,
    );
  }
}

Deno.test("answersEquivalent() reads integers with thousands separators", () => {
  check([
    ["7,425,000", "7425000"],
    ["1 000", "1000"],
    ["1\\,000", "1000"],
    ["1{,}000", "1000"],
    ["10,\\!080", "10080"],
    ["11,\\! 111,\\! 111,\\! 100", "11111111100"],
    ["14 {, }916", "14916"],
    ["-5", "-5"],
    ["007", "7"],
    ["+2", "2"],
  ], true);
  // A comma inside brackets or between short groups separates items.
  check([
    ["(2,12)", "(2012)"],
    ["27,54,108", "2754108"],
    ["32, 349", "32349"],
  ], false);
});

Deno.test("answersEquivalent() compares decimals and scientific notation exactly", () => {
  check([
    ["1000.0", "1000"],
    [".4", "0.4"],
    ["0.1", ".1"],
    ["1.24e-8", "1.24\\times10^{-8}"],
    ["4.46e19", "4.46\\times10^{19}"],
    ["4.46 \\cdot 10^{19}", "4.46e19"],
    ["4.5e33", "45 \\times 10^{32}"],
    ["-1./3", "-\\frac{1}{3}"],
    ["18.00", "18"],
  ], true);
  check([
    ["1.24e-8", "1.24e-9"],
    ["3.89e-10", "3.9e-10"],
    ["2.88e-19", "0"],
    ["16386.16", "16386.17"],
  ], false);
});

Deno.test("answersEquivalent() uses relativeTolerance only for values written with decimals", () => {
  check([["0.3333", "\\frac{1}{3}"], ["16386.16", "16386.17"], ["4.49e33", "4.5e33"]], false);
  check([["0.3333", "\\frac{1}{3}"], ["4.49e33", "4.5e33"], ["1.6", "1.59"]], true, {
    relativeTolerance: 1e-2,
  });
  // Exact answers stay exact whatever the tolerance.
  check([["50", "51"], ["\\frac{1}{3}", "\\frac{33}{100}"]], false, { relativeTolerance: 1e-1 });
  check([["\\sqrt{17}", "4.123105625617661"], ["0.0833333333333333", "\\frac{1}{12}"]], true);
});

Deno.test("answersEquivalent() reads fractions, roots, pi and e", () => {
  check([
    ["\\frac{1}{2}", "0.5"],
    ["\\dfrac{1}{3}", "1/3"],
    ["\\tfrac83", "\\frac{8}{3}"],
    ["\\frac12", "\\frac{1}{2}"],
    ["\\frac 59", "5/9"],
    ["\\frac3{3}", "1"],
    ["\\cfrac{1}{3}", "\\frac{1}{3}"],
    ["1\\frac{4}{5}", "\\frac{9}{5}"],
    ["137 \\frac{1}{2}", "137.5"],
    ["2\\sqrt{2}", "\\sqrt{8}"],
    ["\\sqrt8", "2\\sqrt{2}"],
    ["\\sqrt3", "\\sqrt{3}"],
    ["\\sqrt[3]{8}", "2"],
    ["\\sqrt[3]2", "\\sqrt[3]{2}"],
    ["\\sqrt[4]{16}", "2"],
    ["\\sqrt[3]{-8}", "-2"],
    ["\\sqrt[3]{x}", "x^{1/3}"],
    ["\\displaystyle \\frac{1}{2}", "0.5"],
    ["\\left( \\frac{1}{3} \\right)", "1/3"],
    ["3~\\sqrt{2}", "3\\,\\sqrt{2}"],
    ["\\frac{10\\sqrt{10.5}}{27}", "\\frac{5\\sqrt{42}}{27}"],
    [
      "\\frac{\\sqrt{\\sqrt{11}+\\sqrt{194}}}{2\\sqrt{33}+15}",
      "\\frac{\\sqrt{\\sqrt{11}+\\sqrt{194}}}{15+2\\sqrt{33}}",
    ],
    ["2\\pi", "\\pi \\cdot 2"],
    ["\\frac94\\pi", "\\frac{9}{4}\\pi"],
    ["e^2", "e \\cdot e"],
    ["1 - \\frac{1}{\\mathrm{e}}", "1-e^{-1}"],
    ["\\ln(e^3)", "3"],
    ["\\log_2 8", "3"],
    ["\\cos(\\pi/2)", "0"],
    ["e^{i\\pi}", "-1"],
    ["\\frac{100!}{2^{50}}", "\\frac{100!}{1125899906842624}"],
    ["2^{1009}", "2^{1000} \\cdot 512"],
  ], true);
  check([
    ["\\frac{1}{2}", "0.6"],
    ["\\frac{1}{54}", "\\frac{15}{4}"],
    ["1 + \\frac{1}{\\mathrm{e}}", "1 - \\frac{1}{\\mathrm{e}}"],
    ["4\\sqrt{2}", "4"],
    ["1", "1\\sqrt{19}"],
    ["\\frac{1+\\sqrt{5}}{2}", "2"],
    ["\\pi", "3.14"],
    ["\\tfrac{1}{2} + \\frac1{72}", "\\frac{1}{2} + 2/3"],
  ], false);
});

Deno.test("answersEquivalent() reads a Unicode root over the whole number after it", () => {
  check([
    ["√51", "\\sqrt{51}"],
    ["3√13", "3\\sqrt{13}"],
    ["5 √10", "5\\sqrt{10}"],
    ["2√113", "2\\sqrt{113}"],
    ["1±√19", "1 \\pm \\sqrt{19}"],
    ["√2.25", "1.5"],
    ["√5", "\\sqrt{5}"],
    ["√(x+1)", "\\sqrt{x+1}"],
  ], true);
  // LaTeX's \sqrt51 is still \sqrt{5}·1.
  check([["√51", "\\sqrt{5}"], ["3√13", "3\\sqrt{1}\\cdot 3"], ["\\sqrt51", "\\sqrt{51}"]], false);
});

Deno.test("answersEquivalent() reads a negative mixed number as negative as a whole", () => {
  check([
    ["-3\\frac{8}{9}", "-\\frac{35}{9}"],
    ["-1\\frac{1}{2}", "-1.5"],
    ["x = -2\\frac{2}{3}", "-\\frac{8}{3}"],
    ["2 - 3\\frac{8}{9}", "-\\frac{17}{9}"],
    ["4\\frac{1}{4}", "\\frac{17}{4}"],
  ], true);
  check([["-3\\frac{8}{9}", "-\\frac{8}{3}"], ["-3\\frac{8}{9}", "-\\frac{19}{9}"]], false);
});

Deno.test("answersEquivalent() never reads 0.5 as 50%", () => {
  check(
    [["0.5", "50\\%"], ["50\\%", "0.5"], ["0.5", "50%"], ["\\frac{1}{2}", "50 percent"]],
    false,
  );
  check([["0.5", "50\\%"], ["50", "0.5"]], false, { percent: "strict" });
});

Deno.test("answersEquivalent() strips or keeps percent signs by policy", () => {
  const percents: [string, string][] = [["50\\%", "50"], ["28 percent", "28\\%"], [
    "28 pct",
    "28\\%",
  ], [
    "62.5%",
    "62.5",
  ]];
  check(percents, true);
  check([["50\\%", "50"], ["62.5%", "62.5"], ["28", "28 percent"]], false, { percent: "strict" });
  check([["50\\%", "50\\%"], ["28 percent", "28\\%"], ["\\frac{1}{2}\\%", "0.5\\%"]], true, {
    percent: "strict",
  });
});

Deno.test("answersEquivalent() drops degrees, units, currency and text around numbers", () => {
  check([
    ["30^\\circ", "30"],
    ["30^{\\circ}", "30"],
    ["30°", "30^\\circ"],
    ["5 \\text{ cm}", "5"],
    ["15\\mbox{ cm}^2", "15"],
    ["125\\textnormal{ miles}", "125 miles"],
    ["\\$5", "5"],
    ["\\$32,\\!348", "32348"],
    ["10\\text{ units}", "10 "],
    ["5.4 \\text{ cents}", "5.4"],
    ["0.06 \\text{ yuan}", "0.06"],
    ["\\frac{270}7\\text{ degrees}", "\\frac{270}{7}"],
    ["\\text{13}", "13"],
    ["6.5 \\mathrm{~cm}", "6.5"],
    ["4.5 \\cdot 10^{33} \\mathrm{erg/s}", "4.5e33"],
    ["3 \\mathrm{~m} \\mathrm{~s}^{-1}", "3"],
    ["3 \\text{ m/s}", "3"],
    ["864 \\mbox{ inches}^2", "864"],
    ["2\\mathrm{e}", "2e"],
  ], true);
  check([["10\\text{ units}", "100"], ["30^\\circ", "\\frac{\\pi}{6}"]], false);
});

Deno.test("answersEquivalent() reads x = 3 as 3 when the left side is a name", () => {
  check([
    ["x = 3", "3"],
    ["3", "x=3"],
    ["k=1", "1"],
    ["y=2x+1", "2x+1"],
    ["2x+1", "y = 2x+1"],
    ["f(x)=1", "1"],
    ["|AB|=1", "1"],
    ["A:B=1", "1"],
    ["\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}", "\\frac{1}{\\sqrt{6}}"],
    ["(p,q)=(3,2)", "(3,2)"],
    ["x = 5+5+1 = 7 =11", "x = 11"],
    ["z = 3+3 = 2", "z = 1 + 1 = 2"],
    ["x\\approx11", "11"],
    ["x=1/3\\approx0.33", "\\frac{1}{3}"],
    ["5 \\times 6 \\times 4 = 120", "120"],
  ], true);
  check([["0", "a +3z = 0"], ["1", "2x + z = 1"], ["0", "a^2 + b = 0"], ["2x = 6", "6"]], false);
});

Deno.test("answersEquivalent() compares equations up to a nonzero factor", () => {
  check([
    ["y=-\\frac{1}{2}x+\\frac{3}{4}", "2x+4y-3=0"],
    ["x^2/16 + y^2/12 = 1/4", "x^2/4 + y^2/3 = 1"],
    ["-34x-45y+20z-100=0", "34x+45y-20z+100=0"],
    ["x^2+1=a", "a=x^2+1"],
    ["y = 2x", "x = y/2"],
  ], true);
  check([["5x - 7y + 11z + 4 = 0", "x + y - z + 2 = 0"], ["x = 3", "x = -3"], [
    "y = 2x",
    "y = x/2",
  ]], false);
});

Deno.test("answersEquivalent() reads an equation the same with its sides swapped", () => {
  check([
    ["x + y = 5", "5 = x + y"],
    ["2x + 1 = 7", "7 = 2x + 1"],
    ["5x - 7y + 11z + 4 = 0", "0 = 5x - 7y + 11z + 4"],
    ["x^2 + y^2 = 1", "1 = x^2 + y^2"],
    ["2x + 1 = y", "2x + 1"],
    ["y = 2x + 1", "2x + 1 = y"],
    ["x = 5", "5 = x"],
    ["1 = a, 2 = b", "b = 2, a = 1"],
  ], true);
  check([
    ["5 = x + y", "x + y = 6"],
    ["5 = x + y", "x + y"],
    ["x = 5", "x = 6"],
    ["y = 2x", "x = 2y"],
    ["1 = a, 2 = b", "a = 2, b = 1"],
  ], false);
});

Deno.test("answersEquivalent() compares inequalities, as intervals where it can", () => {
  check([
    ["x \\geq 5", "x >= 5"],
    ["x \\lt 3", "x < 3"],
    ["x <= 2", "x \\leq 2"],
    ["5 \\geq x", "x \\leq 5"],
    ["-x > -1", "x < 1"],
    ["-x >= -1", "x <= 1"],
    ["x \\neq 3", "x != 3"],
    ["x \\ge 5", "[5, \\infty)"],
    ["x > 5", "(5,\\infty)"],
    ["-2 \\le x \\le 7", "x \\in [-2,7]"],
    ["(-793, 10)", "-793 < a < 10"],
    ["(0,1)", "0<f(x)<1"],
    [
      "z \\in \\left[-\\frac{3}{2}, -1\\right] \\cup \\left[1, \\frac{3}{2}\\right]",
      "1\\leq|z|\\leq \\frac{3}{2}",
    ],
    ["k \\geqslant 2", "k \\ge 2"],
  ], true);
  check([
    ["x < 5", "x > 5"],
    ["x \\leq 5", "x \\geq 5"],
    ["x > -1", "x < 1"],
    ["x > 5", "x \\geq 5"],
    ["x \\ge 5", "(5, \\infty)"],
  ], false);
});

Deno.test("answersEquivalent() keeps open and closed interval ends distinct", () => {
  check(
    [
      ["(1,2]", "(1,2]"],
      ["[0,1)", "[0,1)"],
      ["(-\\infty,3]", "(-\\infty,3]"],
      ["(1, +\\infty)", "(1,\\infty)"],
      ["(0.6,2.6667]", "(\\frac{3}{5},\\frac{8}{3}]"],
      ["\\left(\\frac{3}{5},\\frac{8}{3}\\right]", "(0.6, \\frac83]"],
      [
        "[-1, -\\tfrac12) \\cup (-\\tfrac12, 0) \\cup (0, 1) \\cup (1, \\infty)",
        "[-1, -\\frac{1}{2}) \\cup (-\\frac{1}{2}, 0) \\cup (0, 1) \\cup (1, \\infty)",
      ],
      ["(2,12) \\cup (12,102)", "(2, 12) \\cup (12, 102)"],
      ["(1,2] \\cup (2,3)", "(1,3)"],
      ["(0,9) \\cup (9,36)", "(9,36) \\cup (0,9)"],
      ["\\{-1\\} \\cup [0,7)", "[0,7) \\cup \\{-1\\}"],
    ],
    true,
    { relativeTolerance: 1e-4 },
  );
  check([
    ["(1,2]", "(1,2)"],
    ["[0,9)", "(0,9)"],
    ["[0,1)", "[0,9)"],
    ["[2,5)", "[2,6)"],
    ["(1,2) \\cup (2,3)", "(1,3)"],
    ["-[0,1)", "1"],
    ["(3,4]", "3,4"],
  ], false);
});

Deno.test("answersEquivalent() orders tuples and not sets or lists of solutions", () => {
  check([
    ["1, 2", "2,1"],
    ["\\{1,2\\}", "1,2"],
    ["{1,2,3}", "3, 2, 1"],
    ["-2,1", "1,-2"],
    ["10, 4, -2", "4, 10, -2"],
    ["(1,4.5)", "(1,\\frac{9}{2})"],
    ["(2,4)", "(2,4)"],
    ["(6,31,-1)", "6, 31, -1"],
    ["\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\frac{\\pi}{2})"],
    ["\\langle 1, 2 \\rangle", "(1,2)"],
    ["(3, 37, 3, 13), (3, 17, 3, 7), (3,17,3,7)", "(3,17,3,7),(3,37,3,13)"],
    ["(7,11),\\ (11,7)", "(11,7)or(7,11)"],
    ["21,16,11", "21,16 or 11"],
    ["19, 46, \\text{ and } 82", "19, 46, and 82"],
    ["6 \\text{ and } 8", "6,8"],
    ["(0;0;0),(0;-2;0)", "(0,-2,0),(0,0,0)"],
    ["-12;-11;-10", "\\{-12, -11, -10\\}"],
  ], true);
  check([
    ["(2,4)", "(4,2)"],
    ["(2,4)", "(3,5)"],
    ["{1,3}", "(1,3)"],
    ["{1,3}", "(3,1)"],
    ["10, 4, 2", "4, 12, 2"],
    ["1, 2", "1"],
    ["-2", "-2,-2"],
    ["1,2,3", "1,2"],
    ["(1,2)", "(1,2,3)"],
  ], false);
});

Deno.test("answersEquivalent() matches labelled solutions by name or in order", () => {
  check([
    ["a_{37} = 19, a_3 = 2", "a_3 = 2, a_{37} = 19"],
    ["k = 45, n = 2", "k = 45, n = 2"],
    ["4, 5", "AB=4,CD=5"],
    ["-5, \\frac{14}{3}", "x = -5, p = \\frac{14}{3}"],
    ["-10,-8,4", "a=4, -8, -10"],
    ["(5,2),(7,2)", "p=5,q=2;p=7,q=2"],
    ["p=-1,p=\\frac{15}{8}", "p = -1 \\text{ and } p = \\dfrac{15}{8}"],
    [
      "x = \\frac{1}{2}, x = \\frac{-1 \\pm \\sqrt{13}}{4}",
      "\\frac{-1-\\sqrt{13}}{4}, \\frac12, \\frac{-1+\\sqrt{13}}{4}",
    ],
    ["(x, y) = (5, 8) \\text{ and } (8, 5)", "(5, 8), (8, 5)"],
  ], true);
  check([["-5, \\frac{14}{3}", "x = \\frac{14}{3}, p = -5"], ["n=1, 2, 3", "n=2, 3, 4"]], false);
});

Deno.test("answersEquivalent() reads plus-minus as the set of both values", () => {
  check([
    ["1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}"],
    ["\\{1\\pm\\sqrt{5},-2\\}", "-2, 1+\\sqrt5, 1-\\sqrt5"],
    ["{-2021, 2021}", "\\pm 2021"],
    ["3 \\pm 2 \\sqrt{2}", "3 \\mp 2\\sqrt{2}"],
  ], true);
  check([["2021", "\\pm 2021"], ["1 + \\sqrt{19}", "1 \\pm \\sqrt{19}"]], false);
});

Deno.test("answersEquivalent() compares expressions at sample points", () => {
  check([
    ["\\frac{x}{2}+1", "\\frac{x+2}{2}"],
    ["\\frac{x}{7}+\\frac{2}{7}", "\\frac{x+2}{7}"],
    ["2x", "x \\cdot 2"],
    ["x^2+xy-2y^2", "(x-y)(x+2y)"],
    ["(2\\times y+x)(-y+x)", "(x-y)(x+2y)"],
    ["(y\\cdot 2+x)(-y+x)", "(x-y)(x+2y)"],
    ["-3y + 2x", "2x - 3y"],
    ["x\\cdot x", "x\\times x"],
    ["x^2", "x\\times x"],
    ["(\\sqrt{x})^{4}", "x^2"],
    ["\\left(x-2\\right)\\left(x+2\\right)", "(x-2)(x+2)"],
    ["\\sec^2(y)", "\\tan^2(y)+1"],
    ["2 \\sin b \\cos a", "\\sin(a+b) - \\sin(a-b)"],
    ["\\sin^2 x + \\cos^2 x", "1"],
    ["\\log(x^2)", "2\\ln x"],
    ["10\\sqrt{3} + \\sqrt4", "10\\sqrt3 + \\sqrt{4}"],
    ["\\frac{\\pi r}{h+r}", "\\pi r / (r + h)"],
    [
      "-\\frac{8x^2}{9(x^2-2)^{5/3}}+\\frac{2}{3(x^2-2)^{2/3}}",
      "-\\frac{2(x^2+6)}{9(x^2-2)\\sqrt[3]{x^2-2}^2}",
    ],
    ["\\binom{2n}{n}", "\\frac{(2n)!}{n!^2}"],
    ["F_n = \\sum_{k=0}^{n-1} F_{n-k-1} F_k", "F_n = \\sum_{k=0}^{n-1} F_k F_{n-k-1}"],
    ["\\sum_{k=1}^{10} k", "55"],
  ], true);
  check([
    ["x+1", "x+2n+1"],
    ["(+5)(b+2)", "(a+5)(b+2)"],
    ["f(y)", "f(x)"],
    ["2x", "x^2"],
    ["\\lfloor\\frac{2 n-1}{5}\\rfloor", "0"],
    ["F_n = \\sum_{k=0}^{n-2} F_k F_{n-k-2}", "F_n = \\sum_{k=0}^{n-1} F_k F_{n-k-1}"],
    ["|x-2|", "x-2"],
  ], false);
});

Deno.test("compareAnswers() answers undecided when every sample point overflows", () => {
  assert.equal(compareAnswers("(x+1)^{1000000}", "(1+x)^{1000000}"), "undecided");
  assert.equal(compareAnswers("e^{10^{6} x}", "e^{x \\cdot 10^{6}}"), "undecided");
  assert.equal(compareAnswers("(x+1)^{1000000} - (x+1)^{1000000}", "0"), "undecided");
  assert.equal(compareAnswers("x^{5000}", "x^{5001}"), "not equal");
  assert.equal(compareAnswers("(x+1)^{1000}", "(1+x)^{1000}"), "equal");
  assert.equal(compareAnswers("\\frac{1}{x-x}", "5"), "not equal");
  assert.equal(answersEquivalent("(x+1)^{1000000}", "(1+x)^{1000000}"), false);
});

Deno.test("answersEquivalent() compares complex numbers", () => {
  check([
    ["3+4i", "4i+3"],
    ["\\frac34i", "\\frac{3}{4}i"],
    ["1+\\sqrt{3} i", "1 + i\\sqrt{3}"],
    ["\\frac{4}{2+2i}", "1-i"],
    ["i^2", "-1"],
  ], true);
  check([["3+4i", "3-4i"], ["6 - 5i", "6+5i"]], false);
});

Deno.test("answersEquivalent() compares matrices and vectors entry by entry", () => {
  check([
    [
      "\\begin{pmatrix}0 & 0 \\\\0 & 0\\end{pmatrix}",
      "\\begin{bmatrix}0 & 0 \\\\0 & 0\\end{bmatrix}",
    ],
    [
      "\\left[\\begin{array}{cc}1 & 2 \\\\3 & 4\\end{array}\\right]",
      "\\begin{pmatrix}1 & 2 \\\\3 & 4\\end{pmatrix}",
    ],
    [
      "\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}",
      "\\begin{pmatrix}6 & 8 \\\\ 10 & 12\\end{pmatrix}",
    ],
    [
      "\\begin{pmatrix}1 & 1 \\\\ 0 & 1\\end{pmatrix}^2",
      "\\begin{pmatrix}1 & 2 \\\\ 0 & 1\\end{pmatrix}",
    ],
    [
      "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}",
      "\\begin{pmatrix} -\\frac13 \\\\ \\frac23 \\\\ \\frac53 \\\\ \\end{pmatrix}",
    ],
    ["\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", "\\left(\\frac15, -\\frac{18}{5}\\right)"],
    [
      "\\begin{pmatrix}\\frac{1}{3x^{2/3}}&0\\\\-\\sin(x)&0\\end{pmatrix}",
      "\\begin{pmatrix}\\frac{1}{3\\sqrt[3]{x}^2}&0\\\\-\\sin(x)&0\\\\\\end{pmatrix}",
    ],
  ], true);
  check([
    [
      "\\begin{pmatrix}1 & 2 \\\\ 3 & 5\\end{pmatrix}",
      "\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}",
    ],
    ["\\begin{pmatrix}1 \\\\ 2\\end{pmatrix}", "\\begin{pmatrix}1 & 2\\end{pmatrix}^2"],
    ["\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\{1, 2\\}"],
  ], false);
});

Deno.test("answersEquivalent() reads multiple-choice letters and words", () => {
  check([
    ["(B)", "B"],
    ["\\text{(B)}", "B"],
    ["\\textbf{(C)}", "\\text{C}"],
    ["E", "\\text{E}"],
    ["\\text{Evelyn}", "Evelyn"],
    ["\\text{East}", "east"],
    ["odd", "\\text{odd}"],
    ["Even", "\\text{Even}"],
    ["e", "\\text{e}"],
    [
      "\\text{The midpoints form a regular hexagon}",
      "\\text{The midpoints form a regular hexagon}",
    ],
    ["12:00", "12:00"],
  ], true);
  check(
    [["\\text{east}", "\\text{west}"], ["\\text{E}", "d"], ["(B)", "(C)"], ["1:00", "12:00"]],
    false,
  );
});

Deno.test("answersEquivalent() compares numbers in other bases by their digits", () => {
  check([["204_5", "204_{5}"], ["52", "52_8"], ["1112122_3", "1112122_3"]], true);
  check([["1112122_3", "1112112_3"], ["42", "52_8"], ["52_7", "52_8"]], false);
});

Deno.test("answersEquivalent() repairs doubled backslashes and Python escape artifacts", () => {
  check([
    ["\\\\frac{1}{2}", "0.5"],
    ["\\\\left(\\\\frac{1}{5},\\\\frac{1}{6}\\\\right)", "(\\frac15, \\frac16)"],
    ["-2 \\\\le x \\\\le 7", "[-2, 7]"],
    ["\x0crac{7}{4}", "1.75"],
    ["\x08oxed{5}", "5"],
    ["\text{13}", "13"],
  ], true);
});

Deno.test("answersEquivalent() answers not equal for empty or unreadable answers", () => {
  check([["", ""], [" ", "1"], ["1", ""], ["\\frac{", "1"], ["((((", "((("]], false);
  // Unreadable text matches only the same text.
  check([["\\frac{", "\\frac{"], ["((((", " (((( "]], true);
});

Deno.test("canonicalText() removes white space and text wrappers but keeps braces", () => {
  assert.equal(canonicalText("\\text{ east }"), "east");
  assert.equal(canonicalText("$ \\frac{1}{54} $."), "\\frac{1}{54}");
  assert.notEqual(canonicalText("\\frac{1}{54}"), canonicalText("\\frac{15}{4}"));
});
