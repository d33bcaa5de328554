import assert from "node:assert/strict";
import {
  type ArithmeticProblem,
  carriedCountContinuation,
  correctionSolution,
  countedContinuation,
  DEFAULT_ARITHMETIC,
  devUnseenProblems,
  flippedContinuation,
  formatCompletion,
  formatSteps,
  generateProblem,
  heldOutProblems,
  letterCarriedCountContinuation,
  makeProblems,
  operandCarriedCountContinuation,
  problemKey,
  problemStream,
  slipSteps,
  workedSolution,
  wrongSolution,
} from "../../data/arithmetic.ts";
import { Rng } from "../../util/rng.ts";
import { verifyIntegerAnswer } from "../../verifiers/integer_answer.ts";

/** Recomputes a problem from its numbers, independently of the generator. */
function recompute(problem: ArithmeticProblem): number {
  let value = problem.steps[0]!.before;
  for (const step of problem.steps) {
    assert.equal(step.before, value);
    value = step.op === "+"
      ? value + step.operand
      : step.op === "-"
      ? value - step.operand
      : value * step.operand;
    assert.equal(step.after, value);
  }
  return value;
}

/** Parses "<think>a+b=c c-d=e</think>e" and checks every equation. */
function parseChain(reasoning: string): number {
  let last = Number.NaN;
  for (const eq of reasoning.split(" ")) {
    const m = /^(\d+)([+*-])(\d+)=(\d+)$/.exec(eq);
    assert.ok(m, `not an equation: ${eq}`);
    const [a, op, b, c] = [Number(m[1]), m[2], Number(m[3]), Number(m[4])];
    if (!Number.isNaN(last)) assert.equal(a, last, "chain must continue from the last result");
    assert.equal(op === "+" ? a + b : op === "-" ? a - b : a * b, c, `wrong equation ${eq}`);
    last = c;
  }
  return last;
}

Deno.test("makeProblems() is deterministic and prefix-stable", () => {
  const a = makeProblems(1, 50);
  assert.deepEqual(a, makeProblems(1, 50));
  assert.deepEqual(makeProblems(1, 10), a.slice(0, 10));
  assert.notDeepEqual(makeProblems(2, 10), a.slice(0, 10));
  assert.deepEqual(makeProblems(1, 0), []);
  assert.throws(() => makeProblems(1, -1), RangeError);
  const stream = problemStream(1);
  assert.deepEqual(stream.next().value, a[0]);
});

Deno.test("makeProblems() gives known problems for seed 1", () => {
  const [first, second] = makeProblems(1, 2);
  assert.deepEqual(first, {
    id: first!.id,
    question: "Ivy has 12 cards. She finds 8. She uses 16. How many cards now?",
    answer: 4,
    steps: [
      { op: "+", operand: 8, before: 12, after: 20 },
      { op: "-", operand: 16, before: 20, after: 4 },
    ],
  });
  assert.match(first!.id, /^arith-[0-9a-f]{8}$/);
  assert.equal(second!.question, "Sam has 9 toys. He sells 5. He drops 3. How many toys now?");
  assert.equal(second!.answer, 1);
});

Deno.test("generateProblem() answers are correct and never negative", () => {
  for (const p of makeProblems(3, 500, { allowMultiply: true })) {
    assert.equal(recompute(p), p.answer);
    for (const step of p.steps) assert.ok(step.after >= 0);
    assert.ok(p.question.startsWith(`${p.question.split(" ")[0]} has ${p.steps[0]!.before} `));
    assert.ok(p.question.endsWith(" now?"));
  }
});

Deno.test("generateProblem() respects the difficulty knobs", () => {
  const options = { minSteps: 3, maxSteps: 5, maxOperand: 9, maxValue: 30, allowMultiply: true };
  const problems = makeProblems(4, 400, options);
  const lengths = new Set<number>();
  let multiplies = 0;
  for (const p of problems) {
    lengths.add(p.steps.length);
    assert.ok(p.steps[0]!.before >= 1 && p.steps[0]!.before <= 9);
    for (const s of p.steps) {
      assert.ok(s.after <= 30, `value ${s.after} above maxValue`);
      if (s.op === "*") {
        multiplies++;
        assert.ok(s.operand === 2 || s.operand === 3);
      } else {
        assert.ok(s.operand >= 1 && s.operand <= 9);
      }
    }
  }
  assert.deepEqual([...lengths].sort(), [3, 4, 5]);
  assert.ok(multiplies > 0);
  // Defaults: 2 or 3 steps, no multiplication.
  for (const p of makeProblems(5, 300)) {
    assert.ok(p.steps.length >= DEFAULT_ARITHMETIC.minSteps && p.steps.length <= 3);
    assert.ok(p.steps.every((s) => s.op !== "*" && s.operand <= 20 && s.after <= 99));
  }
  assert.throws(() => generateProblem(new Rng(1), { minSteps: 0 }), /field "minSteps" must be/);
  assert.throws(() => generateProblem(new Rng(1), { minSteps: 3, maxSteps: 2 }), RangeError);
  assert.throws(() => generateProblem(new Rng(1), { maxOperand: 20, maxValue: 10 }), RangeError);
});

Deno.test("generateProblem() keeps default problems short", () => {
  const problems = makeProblems(6, 2000);
  const q = problems.map((p) => p.question.length);
  const s = problems.map((p) => workedSolution(p).length);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(mean(q) <= 72, `question mean ${mean(q)}`);
  assert.ok(Math.max(...q) <= 90, `question max ${Math.max(...q)}`);
  assert.ok(mean(s) <= 40, `solution mean ${mean(s)}`);
  assert.ok(Math.max(...s) <= 45, `solution max ${Math.max(...s)}`);
});

Deno.test("workedSolution() writes one equation per step and parses back to the answer", () => {
  const steps = [
    { op: "+" as const, operand: 5, before: 7, after: 12 },
    { op: "-" as const, operand: 3, before: 12, after: 9 },
  ];
  assert.equal(workedSolution({ steps, answer: 9 }), "<think>7+5=12 12-3=9</think>9");
  assert.equal(formatSteps(steps), "7+5=12 12-3=9");
  assert.equal(formatCompletion("x", 3), "<think>x</think>3");
  for (const p of makeProblems(7, 300, { allowMultiply: true })) {
    const text = workedSolution(p);
    const m = /^<think>(.*)<\/think>(\d+)$/.exec(text);
    assert.ok(m, text);
    assert.equal(parseChain(m[1]!), p.answer);
    assert.equal(Number(m[2]), p.answer);
    assert.equal(verifyIntegerAnswer(text, p.answer).correct, true);
  }
});

Deno.test("wrongSolution() slips one step and ends in a wrong answer", () => {
  const rng = new Rng(8);
  for (const p of makeProblems(8, 300, { allowMultiply: true })) {
    const text = wrongSolution(p, rng);
    const m = /^<think>(.*)<\/think>(\d+)$/.exec(text);
    assert.ok(m, text);
    const verdict = verifyIntegerAnswer(text, p.answer);
    assert.equal(verdict.correct, false);
    assert.equal(verdict.reason, "wrong answer");
    const equations = m[1]!.split(" ");
    assert.equal(equations.length, p.steps.length);
    // Exactly one equation is false; the others are correct arithmetic.
    const wrongEquations = equations.filter((eq) => {
      const [, a, op, b, c] = /^(\d+)([+*-])(\d+)=(\d+)$/.exec(eq)!;
      const v = op === "+" ? +a! + +b! : op === "-" ? +a! - +b! : +a! * +b!;
      return v !== +c!;
    });
    assert.equal(wrongEquations.length, 1, text);
  }
  const slipped = slipSteps(makeProblems(8, 1)[0]!, new Rng(1));
  assert.ok(slipped.every((s) => s.after >= 0));
});

Deno.test("correctionSolution() contains the phrase and ends in the right answer", () => {
  const rng = new Rng(9);
  const phrase = "Wait, let me double-check that.";
  for (const p of makeProblems(9, 200, { allowMultiply: true })) {
    const text = correctionSolution(p, rng, phrase);
    const m = /^<think>(.*) Wait, let me double-check that\. (.*)<\/think>(\d+)$/.exec(text);
    assert.ok(m, text);
    // The slipped chain has one equation per step and ends in a wrong result.
    const slipped = m[1]!.split(" ");
    assert.equal(slipped.length, p.steps.length);
    assert.notEqual(Number(slipped.at(-1)!.split("=")[1]), p.answer);
    assert.equal(m[2], formatSteps(p.steps));
    assert.equal(Number(m[3]), p.answer);
    assert.equal(verifyIntegerAnswer(text, p.answer).correct, true);
  }
  const [p] = makeProblems(1, 1);
  assert.equal(
    correctionSolution(p!, new Rng(5), "Hmm, check again."),
    "<think>12+8=20 20-16=6 Hmm, check again. 12+8=20 20-16=4</think>4",
  );
});

Deno.test("flippedContinuation() ends the thought and changes the answer: to the right one after a wrong answer, to a slipped one after a right answer", () => {
  const rng = new Rng(11);
  for (const p of makeProblems(11, 300, { allowMultiply: true })) {
    const wrong = slipSteps(p, rng).at(-1)!.after;
    assert.equal(flippedContinuation(wrong, p, rng), `</think>${p.answer}`);
    const seed = rng.int(0, 1_000_000);
    const flipped = flippedContinuation(p.answer, p, new Rng(seed));
    const m = /^<\/think>(\d+)$/.exec(flipped);
    assert.ok(m, flipped);
    assert.notEqual(Number(m[1]), p.answer);
    // The wrong answer is the one slipSteps() draws from the same stream.
    assert.equal(Number(m[1]), slipSteps(p, new Rng(seed)).at(-1)!.after);
    assert.equal(verifyIntegerAnswer(flipped, p.answer).correct, false);
  }
  const [p] = makeProblems(1, 1);
  // 12+8=20 20-16=4, whose slip from this seed ends at 6 (correctionSolution()'s example above).
  assert.equal(flippedContinuation(4, p!, new Rng(5)), "</think>6");
  assert.equal(flippedContinuation(6, p!, new Rng(5)), "</think>4");
});

Deno.test("countedContinuation() counts every step out one unit at a time to the answer", () => {
  for (const p of makeProblems(10, 300)) {
    const text = countedContinuation(p);
    const m = /^ (.*)<\/think>(\d+)$/.exec(text);
    assert.ok(m, text);
    assert.equal(Number(m[2]), p.answer);
    // Each segment "a op b:" then b counts "x,k" with x one unit further and k from b-1 to 0.
    const segments = [...m[1]!.matchAll(/(\d+)([+-])(\d+):((?:\d+,\d+ ?)+)/g)];
    assert.equal(segments.length, p.steps.length, text);
    let value = p.steps[0]!.before;
    for (const [i, [, a, op, b, counts]] of segments.entries()) {
      assert.equal(Number(a), value, "each step counts on from the running value");
      assert.equal(op, p.steps[i]!.op);
      assert.equal(Number(b), p.steps[i]!.operand);
      const pairs = counts!.trim().split(" ").map((c) => c.split(",").map(Number));
      assert.equal(pairs.length, Number(b));
      for (const [k, [x, left]] of pairs.entries()) {
        assert.equal(x, value + (op === "+" ? 1 : -1) * (k + 1));
        assert.equal(left, Number(b) - k - 1);
      }
      value = pairs.at(-1)![0]!;
    }
    assert.equal(value, p.answer);
    assert.equal(verifyIntegerAnswer(`<think>${text}`, p.answer).correct, true);
  }
  const [p] = makeProblems(1, 1);
  assert.equal(countedContinuation(p!).slice(0, 15), " 12+8:13,7 14,6");
});

Deno.test("carriedCountContinuation() lists every operation up front and carries the ones to come on each line", () => {
  for (const p of makeProblems(10, 300, { minSteps: 2, maxSteps: 3 })) {
    const text = carriedCountContinuation(p);
    const m = /^ (\d+)((?:[+-]\d+)+):(.*)<\/think>(\d+)$/.exec(text);
    assert.ok(m, text);
    assert.equal(Number(m[1]), p.steps[0]!.before);
    assert.equal(m[2], p.steps.map((s) => `${s.op}${s.operand}`).join(""));
    assert.equal(Number(m[4]), p.answer);
    // One line per unit counted: value, counter from operand-1 down to 0, then the operations
    // of the later steps exactly as the head lists them.
    const lines = m[3]!.split(" ");
    assert.equal(lines.length, p.steps.reduce((n, s) => n + s.operand, 0));
    let at = 0, value = p.steps[0]!.before;
    for (const [i, s] of p.steps.entries()) {
      const rest = p.steps.slice(i + 1).map((t) => `${t.op}${t.operand}`).join("");
      for (let k = 1; k <= s.operand; k++) {
        value += s.op === "+" ? 1 : -1;
        assert.equal(lines[at++], `${value},${s.operand - k}${rest}`);
      }
      assert.equal(value, s.after);
    }
    assert.equal(verifyIntegerAnswer(`<think>${text}`, p.answer).correct, true);
  }
  // Hand-written: 12+8 then -16, as countedContinuation's " 12+8:13,7 14,6" above.
  const [p] = makeProblems(1, 1);
  assert.equal(carriedCountContinuation(p!).slice(0, 28), " 12+8-16:13,7-16 14,6-16 15,");
  // A multiplication step is one line with its result.
  const steps = [
    { op: "*" as const, operand: 2, before: 3, after: 6 },
    { op: "-" as const, operand: 2, before: 6, after: 4 },
  ];
  assert.equal(carriedCountContinuation({ steps, answer: 4 }), " 3*2-2:3*2=6-2 5,1 4,0</think>4");
});

Deno.test("operandCarriedCountContinuation() is the plain count with the operands still to come on each line", () => {
  for (const p of makeProblems(10, 300, { minSteps: 2, maxSteps: 3 })) {
    const text = operandCarriedCountContinuation(p);
    // Removing every carried ";b" gives the plain count back, exactly.
    assert.equal(text.replaceAll(/;\d+/g, ""), countedContinuation(p));
    // Each step's head and lines carry the operands of the later steps, in order.
    const segments = text.slice(1).split("</think>")[0]!.split(/ (?=\d+[+-]\d+[;:])/);
    assert.equal(segments.length, p.steps.length, text);
    for (const [i, segment] of segments.entries()) {
      const rest = p.steps.slice(i + 1).map((s) => `;${s.operand}`).join("");
      const [head, lines] = segment.split(":");
      assert.equal(head, `${p.steps[i]!.before}${p.steps[i]!.op}${p.steps[i]!.operand}${rest}`);
      for (const line of lines!.split(" ")) assert.ok(line.endsWith(rest) && /^\d+,\d+/.test(line));
    }
    assert.equal(verifyIntegerAnswer(`<think>${text}`, p.answer).correct, true);
  }
  const [p] = makeProblems(1, 1);
  assert.equal(operandCarriedCountContinuation(p!).slice(0, 22), " 12+8;16:13,7;16 14,6;");
});

Deno.test("letterCarriedCountContinuation() is the operand-carrying count with each carried operand's operation as a letter", () => {
  const letter = { "+": "a", "-": "s", "*": "t" } as const;
  for (const p of makeProblems(10, 300, { minSteps: 2, maxSteps: 3, allowMultiply: true })) {
    const text = letterCarriedCountContinuation(p);
    // Dropping the letters gives the operand-carrying count back, exactly.
    assert.equal(text.replaceAll(/;[ast]/g, ";"), operandCarriedCountContinuation(p));
    // Each step's head and lines (or its one multiplication line) end with the later steps'
    // letters and operands, in order.
    const segments = text.slice(1).split("</think>")[0]!.split(/ (?=\d+[+*-]\d+[;:=])/);
    assert.equal(segments.length, p.steps.length, text);
    for (const [i, segment] of segments.entries()) {
      const rest = p.steps.slice(i + 1).map((s) => `;${letter[s.op]}${s.operand}`).join("");
      for (const piece of segment.split(/[: ]/)) {
        assert.ok(piece.endsWith(rest), `${piece} in ${text}`);
      }
    }
    assert.equal(verifyIntegerAnswer(`<think>${text}`, p.answer).correct, true);
  }
  const [p] = makeProblems(1, 1);
  assert.equal(letterCarriedCountContinuation(p!).slice(0, 25), " 12+8;s16:13,7;s16 14,6;s");
});

Deno.test("heldOutProblems() is stable, distinct and excludable from training", () => {
  const held = heldOutProblems();
  assert.equal(held.length, 200);
  assert.deepEqual(held[0], {
    id: held[0]!.id,
    question: "Tom has 10 coins. He drops 3. He wins 14. He drops 19. How many coins now?",
    answer: 2,
    steps: [
      { op: "-", operand: 3, before: 10, after: 7 },
      { op: "+", operand: 14, before: 7, after: 21 },
      { op: "-", operand: 19, before: 21, after: 2 },
    ],
  });
  assert.equal(problemKey(held[0]!), "10-3+14-19");
  assert.deepEqual(heldOutProblems(5), held.slice(0, 5));
  const keys = new Set(held.map(problemKey));
  assert.equal(keys.size, 200);
  // Without exclusion the same math does come up in a training stream.
  assert.ok(makeProblems(0, 3000).some((p) => keys.has(problemKey(p))));
  const train = makeProblems(0, 3000, { exclude: keys });
  assert.equal(train.length, 3000);
  assert.ok(train.every((p) => !keys.has(problemKey(p))));
});

Deno.test("devUnseenProblems() draws distinct keys outside the excluded ones, from a stream of its own", () => {
  const options = { minSteps: 2, maxSteps: 2, maxOperand: 9 };
  const held = heldOutProblems(1000, options);
  const exclude = new Set(held.map(problemKey));
  const dev = devUnseenProblems(200, { ...options, exclude });
  const keys = dev.map(problemKey);
  assert.equal(new Set(keys).size, 200);
  assert.ok(keys.every((k) => !exclude.has(k)));
  // Deterministic and prefix-stable, like the held-out set.
  assert.deepEqual(devUnseenProblems(20, { ...options, exclude }), dev.slice(0, 20));
  // 2 operations with operands up to 9 allow 1,899 keys: 1,000 held out and 200 here leave
  // 699, and asking for more than the 899 left is an error, not a hang.
  assert.throws(
    () => devUnseenProblems(900, { ...options, exclude }),
    /Cannot make unseen dev problems: the difficulty allows too few distinct problems/,
  );
});

Deno.test("problemKey() ignores names and objects", () => {
  const steps = [{ op: "+" as const, operand: 5, before: 7, after: 12 }];
  assert.equal(problemKey({ steps }), "7+5");
  assert.throws(() => problemKey({ steps: [] }), RangeError);
});
