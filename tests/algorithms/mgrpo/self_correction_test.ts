// Goldens: tests/fixtures/stats_golden.json, written by tools/stats_golden.py with statsmodels'
// mcnemar(exact=True) and scipy's exact permutation_test.
import assert from "node:assert/strict";
import {
  correctionMetrics,
  mcnemarExactP,
  meanStd,
  permutationTest,
} from "../../../algorithms/mgrpo/self_correction.ts";

const golden = JSON.parse(
  Deno.readTextFileSync(new URL("../../fixtures/stats_golden.json", import.meta.url)),
) as {
  mcnemar: { b: number; c: number; p: number }[];
  permutation: { a: number[]; b: number[]; p: number }[];
};

function assertRel(actual: number, expected: number, rel: number, label: string): void {
  assert.ok(
    Math.abs(actual - expected) <= rel * Math.max(Math.abs(expected), 1e-300),
    `${label}: ${actual} vs ${expected}`,
  );
}

Deno.test("mcnemarExactP() equals statsmodels' exact McNemar test", () => {
  assert.ok(golden.mcnemar.length >= 10);
  for (const { b, c, p } of golden.mcnemar) {
    assertRel(mcnemarExactP(b, c), p, 1e-9, `b=${b} c=${c}`);
  }
});

Deno.test("mcnemarExactP() is symmetric, finite for thousands of pairs, and refuses bad counts", () => {
  assert.equal(mcnemarExactP(40, 9), mcnemarExactP(9, 40));
  const p = mcnemarExactP(2000, 2300);
  assert.ok(p > 0 && p < 1e-4, String(p));
  assert.equal(mcnemarExactP(3000, 3000), 1);
  assert.throws(() => mcnemarExactP(-1, 2), RangeError);
  assert.throws(() => mcnemarExactP(1.5, 2), RangeError);
});

Deno.test("permutationTest() equals scipy's exact permutation test", () => {
  for (const { a, b, p } of golden.permutation) {
    assertRel(permutationTest(a, b), p, 1e-9, JSON.stringify([a, b]));
  }
  assert.throws(() => permutationTest([], [1]), RangeError);
  assert.throws(() => permutationTest(new Array(13).fill(0), new Array(12).fill(0)), RangeError);
});

Deno.test("correctionMetrics() counts the paired changes as fractions of all problems", () => {
  // 10 problems: 4 right at t1; 3 of the 6 wrong become right; 1 of the 4 right becomes wrong.
  const t1 = [true, true, true, true, false, false, false, false, false, false];
  const t2 = [true, true, true, false, true, true, true, false, false, false];
  const m = correctionMetrics(t1, t2);
  assert.equal(m.acc_t1, 0.4);
  assert.equal(m.acc_t2, 0.6);
  assert.ok(Math.abs(m.delta_t1_t2 - 0.2) < 1e-12);
  assert.equal(m.delta_i_to_c, 0.3);
  assert.equal(m.delta_c_to_i, 0.1);
  assert.equal(m.mcnemar_p, 0.625); // b = 1, c = 3: 2 · (1 + 4) / 16
  assert.equal(m.n, 10);
  assert.throws(() => correctionMetrics([], []), RangeError);
  assert.throws(() => correctionMetrics([true], [true, false]), RangeError);
});

Deno.test("meanStd() gives the mean and the sample standard deviation", () => {
  const { mean, std } = meanStd([2, 4, 4, 4, 5, 5, 7, 9]);
  assert.equal(mean, 5);
  assert.ok(Math.abs(std - Math.sqrt(32 / 7)) < 1e-12);
  assert.deepEqual(meanStd([3]), { mean: 3, std: 0 });
});
