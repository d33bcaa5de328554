/**
 * Self-consistency of the verifier on the references of the four benchmark test
 * sets in `data/benchmarks/` (GSM8K, MATH500, Minerva Math, OlympiadBench):
 * every reference, boxed in a response, verifies equal to itself, and not equal
 * to the reference of the next problem whose answer is written differently.
 */
import assert from "node:assert/strict";
import { verifyMath } from "../../../verifiers/math/verify.ts";
import { parseLatex } from "../../../verifiers/math/latex.ts";
import { extractGoldAnswer } from "../../../verifiers/math/extract.ts";

const NAMES = ["gsm8k_test", "math500_test", "minerva_math_test", "olympiadbench_test"] as const;

function answers(name: string): string[] {
  const text = Deno.readTextFileSync(
    new URL(`../../../data/benchmarks/${name}.jsonl`, import.meta.url),
  );
  return text.trim().split("\n").map((line) => (JSON.parse(line) as { answer: string }).answer);
}

const BENCHMARKS = NAMES.map((name) => ({ name, answers: answers(name) }));

Deno.test("verifyMath() verifies every benchmark reference equal to itself", () => {
  let equal = 0;
  let parsed = 0;
  let total = 0;
  const failures: string[] = [];
  for (const { name, answers } of BENCHMARKS) {
    for (const answer of answers) {
      total++;
      const verdict = verifyMath(`We find that the answer is $\\boxed{${answer}}$.`, answer);
      if (verdict.equal) equal++;
      else {failures.push(
          `  ${name}: ${JSON.stringify(answer)} read as ${JSON.stringify(verdict.predAnswer)}`,
        );}
      try {
        parseLatex(extractGoldAnswer(answer) ?? "");
        parsed++;
      } catch {
        failures.push(`  ${name}: ${JSON.stringify(answer)} does not parse`);
      }
    }
  }
  console.log(
    `benchmark self-equality: ${equal}/${total} (${(equal / total * 100).toFixed(2)}%), ` +
      `parsed ${parsed}/${total}${
        failures.length > 0 ? `; failures:\n${failures.join("\n")}` : ""
      }`,
  );
  assert.equal(total, 2766);
  assert.ok(equal / total >= 0.995, `self-equality ${equal / total}`);
  assert.ok(parsed / total >= 0.99, `parse rate ${parsed / total}`);
});

Deno.test("verifyMath() tells apart references of problems with different answers", () => {
  let unequal = 0;
  let total = 0;
  const failures: string[] = [];
  for (const { name, answers } of BENCHMARKS) {
    answers.forEach((answer, k) => {
      let j = (k + 1) % answers.length;
      while (answers[j] === answer && j !== k) j = (j + 1) % answers.length;
      const other = answers[j] ?? "";
      total++;
      if (!verifyMath(answer, other).equal) unequal++;
      else failures.push(`  ${name}: ${JSON.stringify(answer)} ≡ ${JSON.stringify(other)}`);
    });
  }
  console.log(
    `benchmark cross-inequality: ${unequal}/${total} (${(unequal / total * 100).toFixed(2)}%)` +
      (failures.length > 0
        ? `; judged equal (check they really are):\n${failures.join("\n")}`
        : ""),
  );
  assert.ok(unequal / total >= 0.995, `cross-inequality ${unequal / total}`);
});
