/**
 * `samples.jsonl` read back: a round trip of the grouped shape, the errors that name the file,
 * the line and the field, a line still being written, and the resume cut.
 */
import assert from "node:assert/strict";
import {
  readSamples,
  sampleLine,
  SAMPLES_FILE,
  truncateSamples,
} from "../../training/samples_file.ts";
import type { SampleGroup } from "../../actors/messages.ts";
import { InputError } from "../../util/errors.ts";

/** An MGRPO group of step `step`: one wrong answer, its guide phrase and H = 2 corrections. */
function group(step: number): SampleGroup {
  return {
    step,
    prompt: "Ann has 2 pens and gets 3 more.",
    completions: [{
      text: "<think>2+3=6</think>6",
      reward: 0,
      advantage: -0.70700,
      correct: false,
      reason: "wrong answer",
      guidePhrase: "Check each step again.",
      discarded: false,
      corrections: [
        {
          text: "<think>2+3=5</think>5",
          reward: 1,
          advantage: 0.70700,
          correct: true,
          reason: "correct",
        },
        {
          text: "<think>6</think>6",
          reward: 0,
          advantage: -0.70700,
          correct: false,
          reason: "wrong answer",
        },
      ],
    }, {
      text: "<think>2+3=5</think>5",
      reward: 1,
      advantage: 0.70700,
      correct: true,
      reason: "correct",
      guidePhrase: "Wait.",
      discarded: false,
      corrections: [],
    }],
  };
}

async function withRunDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "samples_file_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("readSamples() reads back the lines sampleLine() wrote", async () => {
  await withRunDir(async (dir) => {
    assert.deepEqual(await readSamples(dir), [], "no file yet: no lines");
    const text = sampleLine(1, [group(1)]) + sampleLine(2, [group(2), group(2)]);
    assert.equal(text.split("\n").length, 3, "one line per step");
    await Deno.writeTextFile(`${dir}/${SAMPLES_FILE}`, text);
    assert.deepEqual(await readSamples(dir), [
      { step: 1, groups: [group(1)] },
      { step: 2, groups: [group(2), group(2)] },
    ]);
  });
});

Deno.test("readSamples() leaves out a last line still being written", async () => {
  await withRunDir(async (dir) => {
    const whole = sampleLine(1, [group(1)]);
    const next = sampleLine(2, [group(2)]);
    await Deno.writeTextFile(`${dir}/${SAMPLES_FILE}`, whole + next.slice(0, 40));
    assert.deepEqual(await readSamples(dir), [{ step: 1, groups: [group(1)] }]);
    // A complete last line without its newline is kept.
    await Deno.writeTextFile(`${dir}/${SAMPLES_FILE}`, whole + next.trimEnd());
    assert.deepEqual((await readSamples(dir)).map((l) => l.step), [1, 2]);
  });
});

Deno.test("readSamples() names the file, the line and the field of a bad line", async () => {
  await withRunDir(async (dir) => {
    const path = `${dir}/${SAMPLES_FILE}`;
    const good = sampleLine(1, [group(1)]);
    await Deno.writeTextFile(path, good + "{not json\n" + good);
    await assert.rejects(
      () => readSamples(dir),
      (e: Error) => {
        assert.ok(e instanceof InputError);
        assert.match(e.message, new RegExp(`^Cannot read samples "${path}": line 2 is not JSON: `));
        return true;
      },
    );
    const bad = JSON.parse(good);
    bad.groups[0].completions[0].corrections[1].reward = "0";
    await Deno.writeTextFile(path, good + "\n" + JSON.stringify(bad) + "\n");
    await assert.rejects(
      () => readSamples(dir),
      new InputError(
        `Cannot read samples "${path}": line 3, field "groups.0.completions.0.corrections.1.reward" ` +
          `invalid input: expected number, received string: current value is "0"`,
      ),
    );
  });
});

Deno.test("readSamples() refuses a run folder that does not exist", async () => {
  await withRunDir(async (dir) => {
    await assert.rejects(
      () => readSamples(`${dir}/missing`),
      new InputError(
        `Cannot read samples "${dir}/missing/${SAMPLES_FILE}": the run folder "${dir}/missing" does not exist`,
      ),
    );
  });
});

Deno.test("truncateSamples() drops the steps after a checkpoint and a cut last line", async () => {
  await withRunDir(async (dir) => {
    const path = `${dir}/${SAMPLES_FILE}`;
    const lines = [1, 2, 3].map((s) => sampleLine(s, [group(s)]));
    await Deno.writeTextFile(path, lines.join("") + sampleLine(4, [group(4)]).slice(0, 30));
    assert.equal(await truncateSamples(dir, 2), 2);
    assert.equal(await Deno.readTextFile(path), lines[0]! + lines[1]!);
    assert.equal(await truncateSamples(dir, 2), 0);
    assert.equal(await truncateSamples(`${dir}/none`, 2), 0, "no file: nothing to drop");
  });
});
