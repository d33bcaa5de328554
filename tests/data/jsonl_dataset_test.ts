import assert from "node:assert/strict";
import {
  datasetStream,
  epochOrder,
  loadProblemsJsonl,
  parseProblemsJsonl,
} from "../../data/jsonl_dataset.ts";
import { Rng } from "../../util/rng.ts";

/** A file with one bad line of every kind, between good ones (line numbers in comments). */
const MIXED = [
  '{"question": "What is 2+3?", "answer": "5"}', // 1 good
  "", // 2 blank
  "{oops", // 3 not JSON
  "[1, 2]", // 4 not an object
  '{"question": "", "answer": "1"}', // 5 empty question
  '{"question": "Q6", "answer": true}', // 6 answer of the wrong type
  '{"problem": "What is 4*4?", "answer": 16, "id": "p7"}', // 7 good, "problem", number answer
  '{"answer": "3"}', // 8 no question
  '{"question": "Q9", "answer": "  "}', // 9 empty answer
  '{"question": "Q10", "answer": "10", "id": "p7"}', // 10 repeated id
  '{"question": 12, "answer": "1"}', // 11 question of the wrong type
  "   ", // 12 blank
  '{"question": "Q13", "answer": "1", "id": null}', // 13 id of the wrong type
  '{"question": "Last?", "answer": "\\\\frac{1}{2}"}', // 14 good
].join("\n");

const MIXED_BAD = [
  [4, "the line must be a JSON object: current value is [1,2]"],
  [5, 'field "question" must not be empty: current value is ""'],
  [6, 'field "answer" must be a string or a finite number: current value is true'],
  [8, 'field "question" or "problem" is required'],
  [9, 'field "answer" must not be empty: current value is "  "'],
  [10, 'field "id" repeats the id of line 7: current value is "p7"'],
  [11, 'field "question" must be a string: current value is 12'],
  [13, 'field "id" must be a non-empty string or a finite number: current value is null'],
] as const;

Deno.test("parseProblemsJsonl() skips every kind of bad line and reports its line and reason", () => {
  const { problems, badLines } = parseProblemsJsonl(MIXED, "data/train.jsonl", {
    onBadLine: "skip",
  });
  assert.deepEqual(problems, [
    { id: "jsonl-a8b4d296", question: "What is 2+3?", answer: "5" }, // FNV-1a, checked in Python
    { id: "p7", question: "What is 4*4?", answer: "16" },
    { id: problems[2]!.id, question: "Last?", answer: "\\frac{1}{2}" },
  ]);
  assert.match(problems[2]!.id, /^jsonl-[0-9a-f]{8}$/);
  assert.notEqual(problems[2]!.id, problems[0]!.id);
  assert.equal(badLines.length, 9);
  assert.equal(badLines[0]!.line, 3);
  assert.match(badLines[0]!.reason, /^not JSON: /);
  assert.equal(badLines[0]!.message, `data/train.jsonl:3: ${badLines[0]!.reason}`);
  assert.deepEqual(
    badLines.slice(1).map((b) => [b.line, b.reason, b.message]),
    MIXED_BAD.map(([line, reason]) => [line, reason, `data/train.jsonl:${line}: ${reason}`]),
  );
});

Deno.test("parseProblemsJsonl() with stop throws at the first bad line, naming file:line", () => {
  assert.throws(() => parseProblemsJsonl(MIXED, "data/train.jsonl", { onBadLine: "stop" }), {
    name: "SyntaxError",
    message: /^Cannot load dataset: data\/train\.jsonl:3: not JSON: /,
  });
  // Each kind of bad line alone after a good one: a TypeError naming line 2.
  for (const [line, reason] of MIXED_BAD) {
    if (line === 10) continue; // a repeated id needs its first line
    const text = `{"question": "ok", "answer": "1"}\n${MIXED.split("\n")[line - 1]}\n`;
    assert.throws(() => parseProblemsJsonl(text, "t.jsonl", { onBadLine: "stop" }), {
      name: "TypeError",
      message: `Cannot load dataset: t.jsonl:2: ${reason}`,
    });
  }
  // stop is the default
  assert.throws(() => parseProblemsJsonl('{"question": "q", "answer": 1}\n{}\n', "t.jsonl"), {
    message: 'Cannot load dataset: t.jsonl:2: field "question" or "problem" is required',
  });
});

Deno.test("parseProblemsJsonl() ignores blank lines, a BOM and CRLF line ends", () => {
  const text =
    '\uFEFF{"question": "A?", "answer": "1"}\r\n\r\n  \t\n{"question": "B?", "answer": 2}\r\n';
  const { problems, badLines } = parseProblemsJsonl(text, "t.jsonl", { onBadLine: "stop" });
  assert.deepEqual(problems.map((p) => [p.question, p.answer]), [["A?", "1"], ["B?", "2"]]);
  assert.deepEqual(badLines, []);
  // Line numbers count blank lines and are not shifted by the BOM.
  assert.throws(() => parseProblemsJsonl("\uFEFF\n\nnope\n", "t.jsonl", { onBadLine: "stop" }), {
    message: /^Cannot load dataset: t\.jsonl:3: not JSON: /,
  });
});

Deno.test("parseProblemsJsonl() refuses a dataset with no good line, naming the file", () => {
  for (const text of ["", "\n \n\r\n", "\uFEFF"]) {
    assert.throws(() => parseProblemsJsonl(text, "empty.jsonl", { onBadLine: "skip" }), {
      name: "RangeError",
      message:
        'Cannot load dataset "empty.jsonl": the file has no problems: current value is 0 non-blank lines',
    });
  }
  assert.throws(() => parseProblemsJsonl("{}\n[]\n", "bad.jsonl", { onBadLine: "skip" }), {
    name: "RangeError",
    message:
      'Cannot load dataset "bad.jsonl": the file has no problems: current value is 2 bad lines and no good one, the first bad.jsonl:1: field "question" or "problem" is required',
  });
});

Deno.test("parseProblemsJsonl() reads the fields named in its options", () => {
  const text = '{"q": "Q?", "a": "x", "question": "ignored", "answer": "ignored"}\n';
  const { problems } = parseProblemsJsonl(text, "t.jsonl", {
    questionField: "q",
    answerField: "a",
  });
  assert.deepEqual(problems.map((p) => [p.question, p.answer]), [["Q?", "x"]]);
  assert.throws(
    () =>
      parseProblemsJsonl('{"question": "Q?", "answer": "1"}\n', "t.jsonl", { questionField: "q" }),
    { message: 'Cannot load dataset: t.jsonl:1: field "q" is required' },
  );
  // "question" wins over "problem" when a line has both.
  const both = parseProblemsJsonl('{"problem": "P", "question": "Q", "answer": "1"}', "t.jsonl");
  assert.equal(both.problems[0]!.question, "Q");
  assert.throws(() => parseProblemsJsonl("{}", "t.jsonl", { answerField: "" }), {
    name: "RangeError",
    message:
      'Cannot load dataset "t.jsonl": option "answerField" must be a non-empty string: current value is ""',
  });
});

Deno.test("parseProblemsJsonl() gives identical questions the same derived id", () => {
  const text = '{"question": "Same", "answer": "1"}\n{"question": "Same", "answer": "2"}\n';
  const { problems } = parseProblemsJsonl(text, "t.jsonl");
  assert.equal(problems.length, 2);
  assert.equal(problems[0]!.id, problems[1]!.id);
  // numeric ids become text and are compared as text
  assert.throws(
    () =>
      parseProblemsJsonl(
        '{"id": 1, "question": "a", "answer": "1"}\n{"id": "1", "question": "b", "answer": "1"}',
        "t.jsonl",
      ),
    {
      message:
        'Cannot load dataset: t.jsonl:2: field "id" repeats the id of line 1: current value is "1"',
    },
  );
});

Deno.test("loadProblemsJsonl() reads a file and names a missing one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mgrpo_jsonl_" });
  try {
    const path = `${dir}/train.jsonl`;
    await Deno.writeTextFile(path, '{"question": "1+1?", "answer": "2"}\nbroken\n');
    const { problems, badLines } = await loadProblemsJsonl(path, { onBadLine: "skip" });
    assert.deepEqual(problems.map((p) => p.answer), ["2"]);
    assert.deepEqual(badLines.map((b) => b.line), [2]);
    assert.match(badLines[0]!.message, new RegExp(`^${dir}/train\\.jsonl:2: not JSON: `));
    await assert.rejects(() => loadProblemsJsonl(path), {
      name: "SyntaxError",
      message: new RegExp(`^Cannot load dataset: ${dir}/train\\.jsonl:2: not JSON: `),
    });
    await assert.rejects(() => loadProblemsJsonl(`${dir}/missing.jsonl`), {
      name: "NotFound",
      message: `Cannot load dataset "${dir}/missing.jsonl": file not found`,
    });
    await assert.rejects(() => loadProblemsJsonl(dir), {
      message: `Cannot load dataset "${dir}": the path is a folder, not a file`,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadProblemsJsonl() treats a line that is not UTF-8 as a bad line, naming it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mgrpo_jsonl_" });
  try {
    const path = `${dir}/latin1.jsonl`;
    const bytes = new TextEncoder().encode(
      '{"question": "1+1?", "answer": "2"}\n{"question": "caf? 2+2?", "answer": "4"}\n',
    );
    bytes[bytes.indexOf(0x3f, 40)] = 0xe9; // Latin-1 "é" on line 2
    await Deno.writeFile(path, bytes);
    await assert.rejects(() => loadProblemsJsonl(path), {
      name: "SyntaxError",
      message: `Cannot load dataset: ${path}:2: not valid UTF-8 text (save the file as UTF-8)`,
    });
    const { problems, badLines } = await loadProblemsJsonl(path, { onBadLine: "skip" });
    assert.deepEqual(problems.map((p) => p.question), ["1+1?"]);
    assert.deepEqual(badLines.map((b) => b.line), [2]);
    assert.ok(!problems.some((p) => p.question.includes("\uFFFD")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function take<T>(stream: Iterator<T>, k: number): T[] {
  return Array.from({ length: k }, () => stream.next().value as T);
}

Deno.test("epochOrder() is a seeded Fisher-Yates permutation with the project Rng", () => {
  const expected = Array.from({ length: 10 }, (_, i) => i);
  new Rng(3).fork("dataset epoch 2").shuffle(expected);
  assert.deepEqual(epochOrder(10, 3, 2), expected);
  assert.deepEqual(epochOrder(10, 3, 2), epochOrder(10, 3, 2));
  assert.notDeepEqual(epochOrder(10, 3, 2), epochOrder(10, 3, 3));
  assert.notDeepEqual(epochOrder(10, 3, 2), epochOrder(10, 4, 2));
  assert.deepEqual(epochOrder(0, 3, 0), []);
  assert.throws(() => epochOrder(-1, 3, 0), RangeError);
  assert.throws(() => epochOrder(3, 3, 1.5), RangeError);
});

Deno.test("datasetStream() holds every problem exactly once per epoch, shuffled differently", () => {
  const problems = Array.from({ length: 17 }, (_, i) => `p${i}`);
  const drawn = take(datasetStream(problems, 11), 17 * 4);
  const epochs = [0, 1, 2, 3].map((e) => drawn.slice(e * 17, (e + 1) * 17));
  for (const epoch of epochs) assert.deepEqual([...epoch].sort(), [...problems].sort());
  assert.equal(new Set(epochs.map((e) => e.join(","))).size, 4);
  assert.notDeepEqual(epochs[0], problems); // shuffled, not file order
  assert.deepEqual(epochs[2], epochOrder(17, 11, 2).map((i) => problems[i]));
});

Deno.test("datasetStream() is reproducible for a seed and differs between seeds", () => {
  const problems = Array.from({ length: 9 }, (_, i) => ({ id: `p${i}` }));
  const a = take(datasetStream(problems, 5), 40);
  assert.deepEqual(take(datasetStream(problems, 5), 40), a);
  assert.deepEqual(take(datasetStream(problems, 5), 13), a.slice(0, 13)); // prefix-stable
  assert.notDeepEqual(take(datasetStream(problems, 6), 40), a);
  assert.equal(a[0], problems.find((p) => p === a[0])); // the same objects, not copies
});

Deno.test("datasetStream() resumed by skipping k items equals the uninterrupted stream", () => {
  const problems = Array.from({ length: 7 }, (_, i) => i * 10);
  const whole = take(datasetStream(problems, 2), 60);
  for (const k of [0, 1, 6, 7, 8, 20, 21, 35]) {
    const skipped = datasetStream(problems, 2);
    for (let i = 0; i < k; i++) skipped.next();
    assert.deepEqual(take(skipped, 60 - k), whole.slice(k), `skip ${k}`);
    assert.deepEqual(take(datasetStream(problems, 2, { start: k }), 60 - k), whole.slice(k));
  }
});

Deno.test("datasetStream() copies its problems and validates its arguments", () => {
  const problems = ["a", "b"];
  const stream = datasetStream(problems, 1);
  problems.length = 0;
  assert.deepEqual(take(stream, 4).sort(), ["a", "a", "b", "b"]);
  assert.throws(() => datasetStream([], 1), {
    name: "RangeError",
    message: "Cannot stream a dataset: it must hold at least one problem: current length is 0",
  });
  assert.throws(() => datasetStream(["a"], 0.5), RangeError);
  assert.throws(() => datasetStream(["a"], 1, { start: -1 }), {
    message: "Cannot stream a dataset: start must be an integer >= 0: current value is -1",
  });
  assert.deepEqual(take(datasetStream(["only"], 9), 3), ["only", "only", "only"]);
});
