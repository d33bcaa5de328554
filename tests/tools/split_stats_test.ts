/**
 * `tools/split_stats.ts`: a split's make-up counted by hand on three problems, and the tool run
 * as a user runs it on the embedded task, whose held-out set (distinct keys, drawn first) holds
 * more subtraction than the stream training draws from once those keys are kept out.
 */
import assert from "node:assert/strict";
import { splitStats } from "../../tools/split_stats.ts";
import type { ArithmeticProblem } from "../../data/arithmetic.ts";
import { REPO_ROOT } from "../helpers.ts";

const problem = (answer: number, steps: [string, number][]): ArithmeticProblem => ({
  id: "arith-00000000",
  question: "",
  answer,
  steps: steps.map(([op, operand]) => ({ op, operand, before: 0, after: 0 })) as ArithmeticProblem[
    "steps"
  ],
});

Deno.test("splitStats() counts steps by operator, answers and the units a count counts out", () => {
  const stats = splitStats([
    problem(6, [["+", 2], ["-", 3]]), // 7+2=9 9-3=6
    problem(12, [["*", 3], ["+", 3]]), // 3*3=9 9+3=12
    problem(1, [["-", 4], ["-", 1]]), // 6-4=2 2-1=1
  ]);
  assert.equal(stats.problems, 3);
  assert.equal(stats.withSubtraction, 2 / 3);
  assert.equal(stats.subtractShare, 3 / 6);
  assert.equal(stats.multiplyShare, 1 / 6);
  assert.equal(stats.meanAnswer, 19 / 3);
  // A multiplication is one line, not counted: 2+3 + 3 + 4+1.
  assert.equal(stats.meanCountUnits, 13 / 3);
  assert.deepEqual(splitStats([]), {
    problems: 0,
    withSubtraction: 0,
    subtractShare: 0,
    multiplyShare: 0,
    meanAnswer: 0,
    meanCountUnits: 0,
  });
});

Deno.test("tools/split_stats.ts: the embedded held-out set holds more subtraction than training draws; bad --draws exits 2", async () => {
  const run = (...args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "tools/split_stats.ts", ...args],
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
  const res = await run("--draws", "2000", "--set", "task.dev_unseen_size=200");
  const out = new TextDecoder().decode(res.stdout);
  assert.equal(res.code, 0, new TextDecoder().decode(res.stderr));
  const share = (prefix: string) => {
    const line = out.split("\n").find((l) => l.startsWith(prefix));
    assert.ok(line, out);
    return Number(line.split(" | ")[3]);
  };
  assert.equal(share("held-out (1000)"), 38.5);
  assert.equal(share("unseen dev (200)"), 28.5);
  assert.ok(share("training stream") < share("held-out (1000)"), out);
  assert.match(out, /distinct problem keys in 20000 draws: \d+; kept out of training: 1200/);
  const bad = await run("--draws", "0");
  assert.equal(bad.code, 2);
  assert.match(
    new TextDecoder().decode(bad.stderr),
    /Invalid value for --draws: must be an integer > 0: current value is 0/,
  );
});
