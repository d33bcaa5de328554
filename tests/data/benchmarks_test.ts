import assert from "node:assert/strict";
import { BENCHMARKS, loadBenchmark, parseBenchmark } from "../../data/benchmarks.ts";

Deno.test("loadBenchmark() reads the four shipped test sets with their sizes", async () => {
  const sizes: Record<string, number> = {};
  for (const name of Object.keys(BENCHMARKS)) sizes[name] = (await loadBenchmark(name)).length;
  assert.deepEqual(sizes, { gsm8k: 1319, math500: 500, minerva: 272, olympiadbench: 675 });
  const [first] = await loadBenchmark("gsm8k");
  assert.equal(first!.id, "gsm8k-test-0");
  assert.equal(first!.answer, "18");
  assert.match(first!.question, /^Janet’s ducks lay 16 eggs per day/);
});

Deno.test("parseBenchmark() names the file and line of a bad line", () => {
  assert.throws(
    () => parseBenchmark('{"id": "a", "problem": "p", "answer": "1"}\n{oops\n', "x.jsonl"),
    {
      name: "SyntaxError",
      message: /^Cannot load dataset "x\.jsonl": line 2 is not JSON: /,
    },
  );
  assert.throws(() => parseBenchmark('\n{"id": "a", "answer": "1"}\n', "x.jsonl"), {
    name: "TypeError",
    message: /^Cannot load dataset "x\.jsonl": line 2, field "problem" /,
  });
  assert.throws(
    () =>
      parseBenchmark(
        '{"id": 1, "problem": "p", "answer": 1}\n{"id": "1", "problem": "q", "answer": 2}\n',
        "x.jsonl",
      ),
    {
      message:
        'Cannot load dataset "x.jsonl": line 2, field "id" repeats an earlier id: current value is "1"',
    },
  );
  assert.throws(() => parseBenchmark("\n\n", "x.jsonl"), RangeError);
});

Deno.test("loadBenchmark() lists the known names for a missing file", async () => {
  await assert.rejects(() => loadBenchmark("gsm9k"), {
    message:
      'Cannot load dataset "gsm9k": no such file, and not one of "gsm8k", "math500", "minerva", "olympiadbench"',
  });
});
