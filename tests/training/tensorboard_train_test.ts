/**
 * `run.report_to: [tensorboard]` end to end: a training run's event files, decoded by the test
 * reader, hold every value of `metrics.jsonl` as a scalar at its step, and a resumed run
 * continues the same curves (its file's START drops what the first file logged after the
 * checkpoint it resumed from).
 */
import assert from "node:assert/strict";
import { SAMPLES_TAG, samplesMarkdown } from "../../training/tensorboard.ts";
import { readSamples } from "../../training/samples_file.ts";
import { trainInProcess } from "./run_trainer.ts";
import {
  decodeEvent,
  eventFiles,
  readRecords,
  readScalars,
  type ScalarPoint,
} from "./tensorboard_reader.ts";

const CONFIG = "configs/smoke-grpo.yaml";
const SETS = ["run.report_to=[tensorboard]", "eval.before=false", "eval.after=false"];

/** `metrics.jsonl` as scalar points: every key but `step`, as float32 (`null` is NaN). */
async function expectedScalars(runDir: string): Promise<ScalarPoint[]> {
  const text = await Deno.readTextFile(`${runDir}/metrics.jsonl`);
  return text.split("\n").filter((l) => l.trim()).flatMap((line) => {
    const { step, ...values } = JSON.parse(line) as Record<string, number | null>;
    return Object.entries(values).map(([tag, v]) => ({
      tag,
      step: step!,
      value: Math.fround(v ?? Number.NaN),
    }));
  });
}

Deno.test("Trainer.run() with run.report_to tensorboard logs every metrics.jsonl value as a scalar", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "tb-train-" });
  try {
    await trainInProcess(`${tmp}/run`, CONFIG, SETS);
    const files = await eventFiles(`${tmp}/run/tb`);
    assert.equal(files.length, 1);
    assert.match(files[0]!, /\/tb\/events\.out\.tfevents\.\d{10}\.[^/]+\.\d+\.\d+$/);
    const expected = await expectedScalars(`${tmp}/run`);
    assert.deepEqual(new Set(expected.map((p) => p.step)), new Set([1, 2]));
    assert.ok(expected.some((p) => p.tag === "reward/mean"));
    assert.deepEqual(await readScalars(`${tmp}/run/tb`), expected);

    const events = readRecords(await Deno.readFile(files[0]!)).map(decodeEvent);
    assert.equal(events[0]!.fileVersion, "brain.Event:2");
    // A START at step 1 purges nothing and marks the run's beginning for TensorBoard's server.
    assert.deepEqual(
      events.filter((e) => e.sessionStatus !== undefined).map((e) => [e.sessionStatus, e.step]),
      [[1, 1]],
    );
    assert.equal(events[1]!.sessionStatus, 1);
    const texts = events.flatMap((e) =>
      (e.summary ?? []).filter((v) => v.tag === SAMPLES_TAG).map((v) => ({ e, v }))
    );
    assert.deepEqual(texts.map(({ e }) => e.step), [1, 2]);
    // Each step's text is its samples.jsonl groups as Markdown.
    const samples = await readSamples(`${tmp}/run`);
    for (const [k, { v }] of texts.entries()) {
      assert.equal(v.plugin, "text");
      assert.match(v.strings![0]!, /^### Prompt 1\n\n {4}\S.*\n\n#### Completion 1: reward /);
      assert.equal(v.strings![0]!, samplesMarkdown(samples[k]!.groups));
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("Trainer.run() resumed from an older checkpoint continues the TensorBoard curves without duplicate steps", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "tb-resume-" });
  const run = `${tmp}/run`;
  try {
    await trainInProcess(run, CONFIG, [
      ...SETS,
      "run.steps=4",
      "run.checkpoint_every=2",
      "run.keep_last=2",
    ]);
    // The newest checkpoint does not verify: the resume falls back to checkpoint-2 and logs
    // steps 3 and 4 again, which the first event file holds already.
    const weights = await Deno.readFile(`${run}/checkpoint-4/model.safetensors`);
    weights[weights.length - 1]! ^= 1;
    await Deno.writeFile(`${run}/checkpoint-4/model.safetensors`, weights);
    const { log } = await trainInProcess(run, undefined, [], { resume: true });
    assert.match(log, /resume: .*checkpoint-2 \(step 2/);

    const files = await eventFiles(`${run}/tb`);
    assert.equal(files.length, 2);
    const second = readRecords(await Deno.readFile(files[1]!)).map(decodeEvent);
    assert.equal(second[0]!.fileVersion, "brain.Event:2");
    assert.deepEqual([second[1]!.sessionStatus, second[1]!.step], [1, 3], "START at step 3");

    const scalars = await readScalars(`${run}/tb`);
    assert.deepEqual(scalars, await expectedScalars(run));
    const rewards = scalars.filter((p) => p.tag === "reward/mean").map((p) => p.step);
    assert.deepEqual(rewards, [1, 2, 3, 4]);
    // Without the START the files would hold steps 3 and 4 twice.
    const first = readRecords(await Deno.readFile(files[0]!)).map(decodeEvent);
    assert.deepEqual(
      first.filter((e) => e.summary?.some((v) => v.tag === "reward/mean")).map((e) => e.step),
      [1, 2, 3, 4],
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
