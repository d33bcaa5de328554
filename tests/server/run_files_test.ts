import assert from "node:assert/strict";
import {
  discoverRuns,
  parseMetrics,
  readConfig,
  readEnvironment,
  readHistory,
  readSummary,
} from "../../server/run_files.ts";
import { InputError } from "../../util/errors.ts";

/** Writes `files` (name → text) into the folder `dir`, creating it. */
async function writeRun(dir: string, files: Record<string, string>): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
}

const lines = (...records: unknown[]) => records.map((r) => JSON.stringify(r) + "\n").join("");

Deno.test("parseMetrics() reads step lines and evaluation lines, the warm start's at step 0", () => {
  const text = lines(
    { step: 0, "eval/accuracy": 0.465, "eval/format_rate": 0.99 },
    { step: 1, "reward/mean": 0.25, kl: 0, "time/step": 11.2 },
    { step: 2, "reward/mean": 0.5, entropy: null },
    { step: 2, "eval/accuracy": 0.52 },
  );
  assert.deepEqual(parseMetrics(text, "run/metrics.jsonl"), [
    {
      kind: "eval",
      step: 0,
      time: null,
      metrics: { "eval/accuracy": 0.465, "eval/format_rate": 0.99 },
    },
    {
      kind: "step",
      step: 1,
      time: null,
      metrics: { "reward/mean": 0.25, kl: 0, "time/step": 11.2 },
    },
    // A NaN is written as null: left out.
    { kind: "step", step: 2, time: null, metrics: { "reward/mean": 0.5 } },
    { kind: "eval", step: 2, time: null, metrics: { "eval/accuracy": 0.52 } },
  ]);
});

Deno.test("parseMetrics() names the file and line of a bad line", () => {
  const path = "runs/x/metrics.jsonl";
  const bad = (text: string, message: string) =>
    assert.throws(() => parseMetrics(text, path), (e: Error) => {
      assert.ok(e instanceof InputError, e.name);
      assert.equal(e.message, message);
      return true;
    });
  bad(
    '{"step":1}\n{"step":2,\n{"step":3}\n',
    `Cannot read "${path}": line 2 is not JSON (Expected double-quoted property name in JSON at position 10 (line 1 column 11)): "{\\"step\\":2,"`,
  );
  bad('{"step":1}\n[1,2]\n', `Cannot read "${path}": line 2 is not a JSON object`);
  bad(
    '{"step":1}\n\n{"step":-1}\n',
    `Cannot read "${path}": line 3: field "step" must be an integer >= 0: current value is -1`,
  );
  bad(
    '{"step":1,"kl":"0.1"}\n',
    `Cannot read "${path}": line 1: field "kl" must be a number: current value is "0.1"`,
  );
});

Deno.test("parseMetrics() leaves out a last line that is still being written", () => {
  const text = '{"step":1,"kl":0.5}\n{"step":2,"kl":0.';
  assert.deepEqual(parseMetrics(text, "m.jsonl").map((e) => e.step), [1]);
  // Once its newline is there, the same line is an error.
  assert.throws(() => parseMetrics(text + "\n", "m.jsonl"), /line 2 is not JSON/);
});

Deno.test("readHistory() times each entry from environment.jsonl's start plus time/step, per start", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeRun(dir, {
      "metrics.jsonl": lines(
        { step: 0, "eval/accuracy": 0.4 },
        { step: 1, "time/step": 1.5 },
        { step: 2, "time/step": 2.5 },
        { step: 3, "time/step": 4 }, // after the resume from step 2
        { step: 3, "eval/accuracy": 0.5 },
      ),
      "environment.jsonl": lines(
        { started_at: "2026-01-01T00:00:00.000Z", start_step: 0 },
        { started_at: "2026-01-01T01:00:00.000Z", start_step: 2 },
      ),
    });
    const history = await readHistory(dir);
    assert.deepEqual(history.map((e) => [e.kind, e.step, e.time]), [
      ["eval", 0, "2026-01-01T00:00:00.000Z"],
      ["step", 1, "2026-01-01T00:00:01.500Z"],
      ["step", 2, "2026-01-01T00:00:04.000Z"],
      ["step", 3, "2026-01-01T01:00:04.000Z"],
      ["eval", 3, "2026-01-01T01:00:04.000Z"],
    ]);
    assert.equal((await readEnvironment(dir)).length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readHistory(), readConfig(), readSummary() of a run that has not written them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.deepEqual(await readHistory(dir), []);
    assert.equal(await readConfig(dir), null);
    assert.equal(await readSummary(dir), null);
    assert.deepEqual(await readEnvironment(dir), []);
    await writeRun(dir, { "summary.json": "[1]", "config.yaml": "- a\n" });
    await assert.rejects(readSummary(dir), {
      message: `Cannot read "${dir}/summary.json": it is not a JSON object`,
    });
    await assert.rejects(readConfig(dir), {
      message: `Cannot read "${dir}/config.yaml": it is not a YAML mapping`,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("discoverRuns() groups the <arm>-seed<k> runs of a compare folder by arm", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cmp = `${dir}/compare-2026-12-05`;
    for (
      const [name, algorithm] of [["mgrpo-seed0", "mgrpo"], ["mgrpo-seed1", "mgrpo"], [
        "grpo_tokens-seed0",
        "grpo",
      ]]
    ) {
      await writeRun(`${cmp}/${name}`, {
        "config.yaml": `algorithm: ${algorithm}\nrun:\n  steps: 16\n`,
        "metrics.jsonl": lines({ step: 0, "eval/accuracy": 0.4 }, { step: 1 }, { step: 2 }),
      });
    }
    await Deno.writeTextFile(`${cmp}/mgrpo-seed0.log`, "log\n");
    await Deno.writeTextFile(`${cmp}/report.md`, "# report\n");
    await Deno.writeTextFile(`${cmp}/mgrpo-seed1/summary.json`, "{}");
    await Deno.writeTextFile(`${cmp}/mgrpo-seed1/control.json`, "{}");
    await Deno.mkdir(`${cmp}/plots`);
    const runs = await discoverRuns([cmp]);
    assert.deepEqual(
      runs.map((r) => [r.name, r.group, r.arm, r.seed, r.algorithm, r.steps, r.totalSteps]),
      [
        ["grpo_tokens-seed0", "compare-2026-12-05/grpo_tokens", "grpo_tokens", 0, "grpo", 2, 16],
        ["mgrpo-seed0", "compare-2026-12-05/mgrpo", "mgrpo", 0, "mgrpo", 2, 16],
        ["mgrpo-seed1", "compare-2026-12-05/mgrpo", "mgrpo", 1, "mgrpo", 2, 16],
      ],
    );
    assert.deepEqual(runs.map((r) => [r.finished, r.live]), [[false, false], [false, false], [
      true,
      true,
    ]]);
    assert.equal(runs[1]!.path, `${cmp}/mgrpo-seed0`);
    // Ids are stable and tell the runs apart.
    assert.match(runs[0]!.id, /^[0-9a-f]{12}$/);
    assert.equal(new Set(runs.map((r) => r.id)).size, 3);
    assert.deepEqual((await discoverRuns([cmp])).map((r) => r.id), runs.map((r) => r.id));
    // A run folder given alone is a run of its own, not a seed of a group.
    const [alone] = await discoverRuns([`${cmp}/mgrpo-seed1`]);
    assert.equal(alone!.group, null);
    assert.equal(alone!.seed, null);
    // deno task seeds writes seed-<k> folders: the folder names the arm.
    await writeRun(`${dir}/seeds/seed-3`, { "metrics.jsonl": lines({ step: 1 }) });
    const [seed] = await discoverRuns([`${dir}/seeds`]);
    assert.deepEqual([seed!.group, seed!.arm, seed!.seed], ["seeds/seeds", "seeds", 3]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("discoverRuns() with no folder lists every run under the runs folder once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const runs = `${dir}/runs`;
    await writeRun(`${runs}/tiny-mgrpo-20261206-051200`, { "config.yaml": "algorithm: mgrpo\n" });
    await writeRun(`${runs}/tiny-mgrpo-20261206-061200`, { "config.yaml": "algorithm: mgrpo\n" });
    await Deno.symlink("tiny-mgrpo-20261206-061200", `${runs}/tiny-mgrpo`);
    await writeRun(`${runs}/compare-x/grpo-seed0`, { "metrics.jsonl": lines({ step: 1 }) });
    await writeRun(`${runs}/dashboard-test`, { "shot.png": "png" });
    const found = await discoverRuns([], { runsDir: runs });
    assert.deepEqual(found.map((r) => [r.name, r.group]), [
      ["grpo-seed0", "compare-x/grpo"],
      // The link and its target are one run.
      ["tiny-mgrpo-20261206-061200", null],
      ["tiny-mgrpo-20261206-051200", null],
    ]);
    assert.deepEqual(found.map((r) => r.path), [
      `${runs}/compare-x/grpo-seed0`,
      `${runs}/tiny-mgrpo`,
      `${runs}/tiny-mgrpo-20261206-051200`,
    ]);
    // A name resolves as --resume does: runs/<name> finds its newest dated folder.
    await Deno.remove(`${runs}/tiny-mgrpo`);
    const [newest] = await discoverRuns([`${runs}/tiny-mgrpo`]);
    assert.equal(newest!.name, "tiny-mgrpo-20261206-061200");
    // No runs folder yet: no runs.
    assert.deepEqual(await discoverRuns([], { runsDir: `${dir}/none` }), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("discoverRuns() refuses a folder that is not a run, naming it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/file.txt`, "x");
    await Deno.mkdir(`${dir}/empty`);
    await writeRun(`${dir}/other/sub`, { "notes.md": "x" });
    const refused = async (path: string, why: string) => {
      await assert.rejects(discoverRuns([path]), (e: Error) => {
        assert.ok(e instanceof InputError, e.name);
        assert.equal(e.message, `Cannot show run folder "${path}": ${why}`);
        return true;
      });
    };
    await refused(`${dir}/missing`, "it does not exist");
    await refused(`${dir}/file.txt`, "it is not a folder");
    const none = "it holds no run (no metrics.jsonl or config.yaml) and no folder of runs";
    await refused(`${dir}/empty`, none);
    await refused(`${dir}/other`, none);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
