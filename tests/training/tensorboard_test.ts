/**
 * The event file writer against the `tensorboard` package: the golden file in
 * `tests/fixtures/tensorboard/` was written by its own `EventFileWriter`
 * (`tools/tensorboard_golden.py`), and ours writes the same bytes for the same events.
 */
import assert from "node:assert/strict";
import {
  crc32c,
  encodeEvent,
  FILE_VERSION,
  frameRecord,
  maskedCrc32c,
  SAMPLES_TAG,
  samplesMarkdown,
  type SummaryValue,
  type TensorBoardEvent,
  TensorBoardWriter,
} from "../../training/tensorboard.ts";
import { REPO_ROOT } from "../helpers.ts";
import { decodeEvent, eventFiles, readRecords, readScalars } from "./tensorboard_reader.ts";

const GOLDEN = `${REPO_ROOT}tests/fixtures/tensorboard`;

type JsonNumber = number | "NaN" | "Infinity" | "-Infinity";
interface GoldenEvent extends Omit<TensorBoardEvent, "summary"> {
  summary?: ({ tag: string; simpleValue: JsonNumber } | { tag: string; text: string })[];
}

async function golden(): Promise<{ bytes: Uint8Array; events: TensorBoardEvent[] }> {
  const spec = JSON.parse(await Deno.readTextFile(`${GOLDEN}/events.json`)) as {
    file: string;
    events: GoldenEvent[];
  };
  const events = spec.events.map(({ summary, ...e }): TensorBoardEvent => ({
    ...e,
    ...(summary
      ? {
        summary: summary.map((v): SummaryValue =>
          "simpleValue" in v ? { tag: v.tag, simpleValue: Number(v.simpleValue) } : v
        ),
      }
      : {}),
  }));
  return { bytes: await Deno.readFile(`${GOLDEN}/${spec.file}`), events };
}

Deno.test("crc32c() matches the CRC-32C check values of RFC 3720", () => {
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(maskedCrc32c(new Uint8Array()), 0xa282ead8);
});

Deno.test("encodeEvent() and frameRecord() write the tensorboard package's bytes for the same events", async () => {
  const { bytes, events } = await golden();
  assert.equal(events.length, 8);
  const ours = events.map((e) => frameRecord(encodeEvent(e)));
  const records = readRecords(bytes);
  assert.equal(ours.length, records.length);
  let offset = 0;
  for (const [i, record] of ours.entries()) {
    assert.deepEqual(
      record,
      bytes.subarray(offset, offset + record.length),
      `event ${i}: ${JSON.stringify(events[i])}`,
    );
    offset += record.length;
  }
  assert.equal(offset, bytes.length);
});

Deno.test("the test reader decodes the tensorboard package's file to the events it wrote", async () => {
  const { bytes, events } = await golden();
  const read = readRecords(bytes).map(decodeEvent);
  assert.equal(read[0]!.fileVersion, FILE_VERSION);
  assert.equal(read[1]!.sessionStatus, 1);
  assert.equal(read[1]!.step, 3);
  for (const [i, event] of events.entries()) {
    const got = read[i]!;
    assert.equal(got.wallTime, event.wallTime);
    assert.equal(got.step, event.step ?? 0);
    for (const [j, value] of (event.summary ?? []).entries()) {
      const v = got.summary![j]!;
      assert.equal(v.tag, value.tag);
      if ("simpleValue" in value) {
        assert.ok(Object.is(v.simpleValue, Math.fround(value.simpleValue)), `${value.tag}`);
      } else {
        assert.deepEqual(
          { strings: v.strings, plugin: v.plugin, shape: v.shape },
          { strings: [value.text], plugin: "text", shape: [] },
        );
      }
    }
  }
});

Deno.test("encodeEvent() refuses a step that is not a non-negative integer", () => {
  assert.throws(
    () => encodeEvent({ wallTime: 1, step: -1 }),
    new RangeError("Cannot encode a varint: current value is -1"),
  );
  assert.throws(() => encodeEvent({ wallTime: 1, step: 1.5 }), RangeError);
});

Deno.test("TensorBoardWriter.create() starts with file_version, then the purge step's START", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tb-writer-" });
  try {
    let t = 1700000000;
    const writer = await TensorBoardWriter.create(`${dir}/tb`, {
      purgeStep: 5,
      clock: () => (t += 0.5),
    });
    assert.match(
      writer.path,
      new RegExp(`/tb/events\\.out\\.tfevents\\.1700000000\\.[^/]+\\.${Deno.pid}\\.\\d+$`),
    );
    await writer.writeMetrics({ step: 5, "reward/mean": 0.1, kl: Number.NaN });
    await writer.writeSamples(5, []);
    await writer.writeSamples(5, [{
      step: 5,
      prompt: "1+1=?",
      completions: [{ text: "2", reward: 1, advantage: null, reason: "ok" }],
    }]);
    writer.close();
    writer.close();
    const events = readRecords(await Deno.readFile(writer.path)).map(decodeEvent);
    assert.deepEqual(events.map((e) => [e.wallTime, e.step]), [
      [1700000000.5, 0],
      [1700000001, 5],
      [1700000001.5, 5],
      [1700000002, 5],
    ]);
    assert.equal(events[0]!.fileVersion, "brain.Event:2");
    assert.equal(events[0]!.sourceWriter, "mgrpo");
    assert.equal(events[1]!.sessionStatus, 1);
    const scalars = events[2]!.summary!;
    assert.deepEqual(scalars.map((v) => v.tag), ["reward/mean", "kl"]);
    assert.equal(scalars[0]!.simpleValue, Math.fround(0.1));
    assert.ok(Number.isNaN(scalars[1]!.simpleValue));
    const text = events[3]!.summary![0]!;
    assert.equal(text.tag, SAMPLES_TAG);
    assert.equal(text.plugin, "text");
    assert.equal(
      text.strings![0]!,
      "### Prompt 1\n\n    1+1=?\n\n" +
        "#### Completion 1: reward 1.000, not trained (ok)\n\n    2",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TensorBoardWriter.create() names each file of a process apart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tb-writer-" });
  try {
    const a = await TensorBoardWriter.create(dir, { clock: () => 1700000000 });
    const b = await TensorBoardWriter.create(dir, { clock: () => 1700000000 });
    a.close();
    b.close();
    assert.notEqual(a.path, b.path);
    assert.deepEqual(await eventFiles(dir), [a.path, b.path].sort());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readScalars() drops what earlier files logged at and after a START's step", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tb-purge-" });
  try {
    let t = 1700000000;
    const clock = () => t++;
    const first = await TensorBoardWriter.create(dir, { clock });
    for (const step of [1, 2, 3]) await first.writeMetrics({ step, loss: step });
    first.close();
    const second = await TensorBoardWriter.create(dir, { clock, purgeStep: 3 });
    for (const step of [3, 4]) await second.writeMetrics({ step, loss: 10 * step });
    second.close();
    assert.deepEqual((await readScalars(dir)).map((p) => [p.step, p.value]), [
      [1, 1],
      [2, 2],
      [3, 30],
      [4, 40],
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("samplesMarkdown() shows each prompt's completions with reward, advantage, verdict, guide phrase and corrections", () => {
  const md = samplesMarkdown([{
    step: 3,
    prompt: "2+3=?\nthink",
    completions: [{
      text: "5",
      reward: null,
      advantage: null,
      correct: false,
      reason: "no </think> tag",
      guidePhrase: "Check.",
      discarded: false,
      corrections: [
        { text: "It is 5", reward: 1, advantage: 0.7070043, correct: true, reason: "correct" },
        { text: "6", reward: 0, advantage: -0.7070043, correct: false, reason: "wrong answer" },
      ],
    }, {
      text: "7",
      reward: 0,
      advantage: -0.5,
      correct: false,
      reason: "wrong answer",
      guidePhrase: "Again.",
      discarded: true,
      corrections: [{
        text: "8",
        reward: 0,
        advantage: null,
        correct: false,
        reason: "wrong answer",
      }],
    }],
  }, {
    step: 3,
    prompt: "1+1=?",
    completions: [{ text: "2", reward: 1, advantage: 0, correct: true, reason: "correct" }],
  }]);
  assert.equal(
    md,
    "### Prompt 1\n\n    2+3=?\n    think\n\n" +
      "#### Completion 1: reward none, not trained, wrong (no </think> tag)\n\n" +
      "    5\n\nGuide phrase:\n\n    Check.\n\n" +
      "##### Correction 1.1: reward 1.000, advantage 0.707, correct\n\n    It is 5\n\n" +
      "##### Correction 1.2: reward 0.000, advantage -0.707, wrong (wrong answer)\n\n    6\n\n" +
      "#### Completion 2: reward 0.000, advantage -0.500, wrong (wrong answer), " +
      "corrections discarded\n\n    7\n\nGuide phrase:\n\n    Again.\n\n" +
      "##### Correction 2.1: reward 0.000, not trained, wrong (wrong answer)" +
      "\n\n    8\n\n" +
      "### Prompt 2\n\n    1+1=?\n\n" +
      "#### Completion 1: reward 1.000, advantage 0.000, correct\n\n    2",
  );
});
