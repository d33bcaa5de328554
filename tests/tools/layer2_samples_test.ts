/**
 * `tools/branches.ts` and `tools/layer2_samples.ts`: which continuation a correction takes, and
 * a run's Layer-2 samples tallied by it, on a `samples.jsonl` written and read back by the
 * Trainer's own functions.
 */
import assert from "node:assert/strict";
import { correctionBranch } from "../../tools/branches.ts";
import { tallyLayer2Samples } from "../../tools/layer2_samples.ts";
import {
  checkedContinuation,
  countedContinuation,
  flippedContinuation,
  layer2Continuation,
  letterCarriedCountContinuation,
  makeProblems,
  operandCarriedCountContinuation,
  slipSteps,
} from "../../data/arithmetic.ts";
import { readSamples, sampleLine, SAMPLES_FILE } from "../../training/samples_file.ts";
import { Rng } from "../../util/rng.ts";
import { withTempDir } from "../helpers.ts";

Deno.test("correctionBranch() names each continuation the SFT data teaches", () => {
  const rng = new Rng(3);
  for (const p of makeProblems(3, 100)) {
    assert.equal(correctionBranch(flippedContinuation(p.answer, p, rng)), "flip");
    assert.equal(correctionBranch(countedContinuation(p)), "count");
    assert.equal(correctionBranch(operandCarriedCountContinuation(p)), "count");
    assert.equal(correctionBranch(letterCarriedCountContinuation(p)), "count");
    assert.equal(correctionBranch(layer2Continuation(p)), "redo");
    // A check, confirming a right answer or counting out a slipped one's steps.
    assert.equal(correctionBranch(checkedContinuation(p.steps, p, countedContinuation)), "check");
    assert.equal(
      correctionBranch(checkedContinuation(slipSteps(p, rng), p, countedContinuation)),
      "check",
    );
    assert.equal(correctionBranch(checkedContinuation(slipSteps(p, rng), p)), "check");
  }
  // A garbled start is neither a flip nor a count.
  assert.equal(correctionBranch(" 8+7=16 16+16,5=2</think>2"), "redo");
  assert.equal(correctionBranch(""), "redo");
});

Deno.test("tallyLayer2Samples() counts each step's corrections by branch, right and in all", () =>
  withTempDir("layer2_samples_", async (dir) => {
    const c = (text: string, correct: boolean) => ({
      text,
      reward: correct ? 1 : 0,
      advantage: null,
      correct,
      reason: correct ? "correct" : "wrong answer",
    });
    const group = (step: number, corrections: ReturnType<typeof c>[]) => ({
      step,
      prompt: "Ann has 7 pens. She buys 2. She loses 3. How many pens now?",
      completions: [{ ...c("<think>7+2=9 9-3=6</think>6", true), corrections }],
    });
    await Deno.writeTextFile(
      `${dir}/${SAMPLES_FILE}`,
      sampleLine(1, [
        group(1, [c("</think>5", false), c("</think>7", false), c(" 7+2;s3:8,1;s3", true)]),
        group(1, [c(" 7+2=9 9-3=6</think>6", true), c("</think>6", true)]),
      ]) +
        sampleLine(2, [
          group(2, [
            c(" 7+2:8,1 9,0 9-3:8,2 7,1 6,0</think>6", true),
            c(" 6+3=9 ok 9-2=7 ok</think>6", true),
          ]),
        ]),
    );
    assert.deepEqual(tallyLayer2Samples(await readSamples(dir)), [
      { step: 1, tally: { flip: [1, 3], count: [1, 1], check: [0, 0], redo: [1, 1] } },
      { step: 2, tally: { flip: [0, 0], count: [1, 1], check: [1, 1], redo: [0, 0] } },
    ]);
  }));
