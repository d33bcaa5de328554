import assert from "node:assert/strict";
import { leaveOneOutAdvantages, RlooConfigSchema } from "../../../algorithms/rloo/mod.ts";

function close(actual: ArrayLike<number>, expected: number[]): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) < 1e-6, `[${i}] ${actual[i]} vs ${expected[i]}`);
  }
}

Deno.test("leaveOneOutAdvantages() subtracts the mean of the other completions of the prompt", () => {
  // Group 1 [1, 0, 0, 1]: 1 − 1/3, 0 − 2/3, 0 − 2/3, 1 − 1/3. Group 2 [2, 0, 0, 0]: 2 − 0, 0 − 2/3.
  close(leaveOneOutAdvantages([1, 0, 0, 1, 2, 0, 0, 0], 4), [
    2 / 3,
    -2 / 3,
    -2 / 3,
    2 / 3,
    2,
    -2 / 3,
    -2 / 3,
    -2 / 3,
  ]);
  // Equal rewards: no signal.
  close(leaveOneOutAdvantages([1, 1, 1], 3), [0, 0, 0]);
});

Deno.test("leaveOneOutAdvantages() leaves a skipped (NaN) reward out of the baselines", () => {
  // Group [1, NaN, 0]: the baseline of 1 is 0 and of 0 is 1; the skipped one gets 0.
  close(leaveOneOutAdvantages([1, NaN, 0], 3), [1, 0, -1]);
  // Only one scored completion: no baseline, advantage 0.
  close(leaveOneOutAdvantages([NaN, 5], 2), [0, 0]);
  assert.throws(() => leaveOneOutAdvantages([1, 2, 3], 2), RangeError);
  assert.throws(() => leaveOneOutAdvantages([1], 1), RangeError);
});

Deno.test("RlooConfigSchema fills defaults and rejects unknown fields", () => {
  assert.deepEqual(RlooConfigSchema.parse({}), { epsilon: 0.2, loss_type: "dapo" });
  assert.throws(() => RlooConfigSchema.parse({ beta: 0.1 }));
});
