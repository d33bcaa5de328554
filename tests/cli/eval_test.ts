import assert from "node:assert/strict";
import { initBackend } from "../../model/backend.ts";
import { makeTinyCheckpoint, REPO_ROOT } from "../helpers.ts";
import { assertSeed0Verdicts } from "../committed_policies.ts";
import { parseCompareData } from "../../cli/compare_report.ts";
import { mcnemarExactP } from "../../algorithms/mgrpo/self_correction.ts";

await initBackend("wasm");

async function evalCli(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/eval.ts", ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

Deno.test("eval.ts --dataset scores n samples per problem and writes problems.jsonl and summary.json", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "eval_test_" });
  try {
    const init = await makeTinyCheckpoint(`${tmp}/init`);
    await Deno.writeTextFile(
      `${tmp}/set.jsonl`,
      [
        { id: "p1", problem: "What is 1+1?", answer: "2" },
        { id: "p2", problem: "What is \\frac{1}{2}+\\frac{1}{2}?", answer: "1" },
        { id: "p3", problem: "Janet’s ducks: how many?", answer: "16" },
      ].map((x) => JSON.stringify(x)).join("\n") + "\n",
    );
    const res = await evalCli(
      "--checkpoint",
      init,
      "--dataset",
      `${tmp}/set.jsonl`,
      "--n",
      "2",
      "--out",
      `${tmp}/out`,
      "--set",
      "eval.max_new_tokens=4",
    );
    assert.equal(res.code, 0, res.stderr);
    const lines = (await Deno.readTextFile(`${tmp}/out/problems.jsonl`)).trim().split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.id), ["p1", "p2", "p3"]);
    for (const l of lines) {
      assert.equal(l.completions.length, 2);
      assert.equal(l.correct.length, 2);
      assert.equal(typeof l["pass@1"], "number");
      assert.equal(typeof l["pass@2"], "number");
    }
    // The curly apostrophe is outside the character tokenizer's alphabet.
    assert.match(lines[2].reasons[0], /^prompt not encodable/);
    const summary = JSON.parse(await Deno.readTextFile(`${tmp}/out/summary.json`));
    assert.equal(summary.problems, 3);
    assert.equal(summary.n, 2);
    assert.equal(summary.greedy, false);
    assert.equal(summary.unpromptable, 1);
    assert.ok(summary["pass@2"] >= summary["pass@1"]);
    assert.match(res.stdout, /^checkpoint +mean acc % +pass@1 % +pass@2 % +unpromptable$/m);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("eval.ts exits 2 naming the file and line of a bad dataset line, or a missing checkpoint folder", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "eval_test_" });
  try {
    await Deno.writeTextFile(
      `${tmp}/bad.jsonl`,
      '{"id": "a", "problem": "p", "answer": "1"}\n{"id":\n',
    );
    const res = await evalCli("--dataset", `${tmp}/bad.jsonl`);
    assert.equal(res.code, 2);
    assert.match(
      res.stderr,
      new RegExp(`^Cannot load dataset "${tmp}/bad.jsonl": line 2 is not JSON`),
    );
    const k = await evalCli("--dataset", "gsm8k", "--n", "2", "--k", "3");
    assert.equal(k.code, 2);
    assert.match(k.stderr, /Invalid value for --k: each k must be an integer in \[1, n=2\]/);
    const missing = await evalCli("--checkpoint", `${tmp}/none`);
    assert.equal(missing.code, 2);
    assert.equal(
      missing.stderr,
      `Cannot load the model of --checkpoint "${tmp}/none": the folder does not exist\n`,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("eval.ts refuses an unknown --split or --rounds with exit 2", async () => {
  const split = await evalCli("--split", "test");
  assert.equal(split.code, 2);
  assert.match(
    split.stderr,
    /Invalid value for --split: must be "heldout", "dev" or "dev_unseen": current value is "test"/,
  );
  // The embedded default keeps 200 unseen dev problems out of training; a config with none has
  // no such split to evaluate on.
  const unseen = await evalCli("--split", "dev_unseen", "--set", "task.dev_unseen_size=0");
  assert.equal(unseen.code, 2);
  assert.match(unseen.stderr, /dev_unseen needs task.dev_unseen_size > 0/);
  const rounds = await evalCli("--two-turn", "--rounds", "3");
  assert.equal(rounds.code, 2);
  assert.match(rounds.stderr, /Invalid value for --rounds: must be 1 or 2/);
});

// The other committed MGRPO policies are checked against their reports the same way by
// `deno task test:slow` (tests/slow/committed_policies_slow.ts).
Deno.test("checkpoints/tiny-mgrpo gives the verdicts docs/compare-2026-12-07f reports for MGRPO seed 0", async () => {
  // The committed policy is the seed-0 MGRPO run of that report, trained with the embedded
  // default: its first answer and one guided correction on the first 100 held-out problems
  // match the report's per-problem record.
  await assertSeed0Verdicts("tiny-mgrpo", "compare-2026-12-07f", []);
});

Deno.test("the README's command on checkpoints/tiny-mgrpo prints both tables and the report's figures as its last line", async () => {
  // deno task eval --checkpoint checkpoints/tiny-mgrpo --two-turn, on the first 40 held-out
  // problems: the default two rounds, the one-correction table, the intrinsic table, and a final
  // JSON line, its keys in order, whose figures are the report's per-problem verdicts of MGRPO
  // seed 0 counted by hand.
  const res = await evalCli(
    "--checkpoint",
    "checkpoints/tiny-mgrpo",
    "--two-turn",
    "--limit",
    "40",
    "--samples",
    "0",
  );
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /One guided correction by the same policy \(40 problems, greedy/);
  assert.match(res.stdout, /Intrinsic self-correction, the paper's baseline columns/);
  const lines = res.stdout.trim().split("\n");
  const json = JSON.parse(lines.at(-1)!);
  assert.deepEqual(Object.keys(json), [
    "acc_t1",
    "acc_t2",
    "delta_i_to_c",
    "delta_c_to_i",
    "mcnemar_p",
    "n",
  ]);
  const path = `${REPO_ROOT}docs/compare-2026-12-07f/results.json`;
  const run = parseCompareData(await Deno.readTextFile(path), path).runs
    .find((r) => r.arm === "mgrpo" && r.seed === 0)!;
  const t1 = run.t1.slice(0, 40), t2 = run.t2.slice(0, 40);
  const count = (f: (i: number) => boolean) => t1.filter((_, i) => f(i)).length;
  const iToC = count((i) => !t1[i] && t2[i]!), cToI = count((i) => t1[i]! && !t2[i]);
  assert.deepEqual(json, {
    acc_t1: count((i) => t1[i]!) / 40,
    acc_t2: count((i) => t2[i]!) / 40,
    delta_i_to_c: iToC / 40,
    delta_c_to_i: cToI / 40,
    mcnemar_p: mcnemarExactP(cToI, iToC),
    n: 40,
  });
  assert.ok(iToC > cToI, `the policy's correction helps on these problems: ${iToC} vs ${cToI}`);
});
