/**
 * `deno task compare --report-only` as a user runs it: from a report folder (results.json and
 * run folders with their metrics.jsonl, made by hand here) it writes report.md, accuracy.svg
 * and accuracy.png, the plot read from the runs' held-out evaluations; bad input exits 2.
 */
import assert from "node:assert/strict";
import { correctionMetrics } from "../../algorithms/mgrpo/self_correction.ts";
import type { CompareData, CompareRun } from "../../cli/compare_report.ts";
import { runTask } from "../helpers.ts";
import { decodePng, pixelAt } from "../util/png_decoder.ts";

const T1 = [true, false, true, false], T2 = [true, true, false, false];

function run(arm: string, seed: number): CompareRun {
  return {
    arm,
    seed,
    steps: 2,
    sampledTokens: 1000,
    seconds: 10,
    heldout: correctionMetrics(T1, T2),
    t1: T1,
    t2: T2,
    curve: [], // read from the run folder's metrics.jsonl
  };
}

const DATA: CompareData = {
  date: "2026-12-05",
  command: "deno task compare --seeds 0,1 --steps 2",
  seeds: [0, 1],
  arms: [{ name: "mgrpo", label: "MGRPO" }, { name: "grpo", label: "GRPO (equal steps)" }],
  runs: [run("mgrpo", 0), run("grpo", 0), run("mgrpo", 1), run("grpo", 1)],
  warmStart: {
    correction: correctionMetrics(T1, T2),
    intrinsic: { acc_t1: 0.5, acc_t1_prime: 0.5, acc_t2: 0.25 },
  },
  heldoutSize: 4,
  evalSubset: 4,
  machine: "2 cores, test CPU, runs one at a time",
};

// Held-out accuracy at step 2 and the tokens sampled by then, per run. MGRPO: 50 % and 60 %
// (mean 55 %) at 1,000 and 3,000 tokens; GRPO: 30 % and 50 % at 500 and 1,500.
const AT_STEP_2: Record<string, [number, number]> = {
  "mgrpo-seed0": [1000, 0.5],
  "mgrpo-seed1": [3000, 0.6],
  "grpo-seed0": [500, 0.3],
  "grpo-seed1": [1500, 0.5],
};

async function reportFolder(data: CompareData = DATA): Promise<string> {
  const out = await Deno.makeTempDir({ prefix: "compare_report_only_" });
  await Deno.writeTextFile(`${out}/results.json`, JSON.stringify(data));
  for (const [name, [tokens, acc]] of Object.entries(AT_STEP_2)) {
    await Deno.mkdir(`${out}/${name}`);
    await Deno.writeTextFile(
      `${out}/${name}/metrics.jsonl`,
      [
        { step: 0, "eval/accuracy": 0.4, "eval/format_rate": 1 },
        { step: 1, accuracy: 0.9, "tokens/sampled_total": tokens / 2 },
        { step: 2, accuracy: 0.9, "tokens/sampled_total": tokens },
        { step: 2, "eval/accuracy": acc, "eval/format_rate": 1 },
      ].map((l) => JSON.stringify(l)).join("\n") + "\n",
    );
  }
  return out;
}

Deno.test("compare --report-only writes report.md, accuracy.svg and accuracy.png from the runs", async () => {
  const out = await reportFolder();
  try {
    const { code, stdout, stderr } = await runTask(["compare", "--report-only", "--out", out]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /"out":/);
    const md = await Deno.readTextFile(`${out}/report.md`);
    assert.match(md, /^## Held-out accuracy during training$/m);
    assert.match(md, /^!\[Held-out accuracy during training [^\]]*\]\(accuracy\.png\)$/m);
    assert.match(md, /\[accuracy\.svg\]\(accuracy\.svg\)/);
    assert.match(md, /first 4\nheld-out problems/);
    // The curves come from metrics.jsonl (results.json had none) and are written back.
    const results = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
    assert.deepEqual(results.runs[2].curve, [[0, 0, 0.4], [2, 3000, 0.6]]);
    // Steps 0-2 over x 70-370, 30-60 % over y 330-60: MGRPO's mean 55 % at step 2 is (370, 105).
    const svg = await Deno.readTextFile(`${out}/accuracy.svg`);
    assert.match(
      svg,
      /<polyline id="mean-steps-mgrpo" points="70,240 370,105" [^>]*stroke="#d62728"/,
    );
    assert.match(
      svg,
      /<polyline id="mean-tokens-grpo" points="480,240 630,240" [^>]*stroke="#1f77b4"/,
    );
    assert.match(svg, />MGRPO, 2 seeds</);
    assert.match(svg, />GRPO \(equal steps\), 2 seeds</);
    const png = await decodePng(await Deno.readFile(`${out}/accuracy.png`));
    assert.ok(png.chunks.every((c) => c.crcOk));
    assert.deepEqual([png.width, png.height], [1600, 820]);
    // Halfway along MGRPO's line in the steps panel, (220, 172.5) units at 2 pixels a unit.
    assert.deepEqual(pixelAt(png, 440, 345), [214, 39, 40]);
    assert.deepEqual(pixelAt(png, 4, 4), [255, 255, 255]);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("compare --report-only says how the answers were decoded: greedy (or absent) or sampled", async () => {
  for (
    const [decoding, header, curve, subtitle] of [
      [undefined, "greedy decoding;", "greedy first answer", "problems, greedy, first answer"],
      [
        "T = 0.7",
        "sampled at T = 0.7 (one sample",
        "first answer at T = 0.7",
        "problems, sampled at T = 0.7, first answer",
      ],
    ] as const
  ) {
    const out = await reportFolder(decoding === undefined ? DATA : { ...DATA, decoding });
    try {
      const { code, stderr } = await runTask(["compare", "--report-only", "--out", out]);
      assert.equal(code, 0, stderr);
      const md = (await Deno.readTextFile(`${out}/report.md`)).replaceAll("\n", " ");
      assert.ok(md.includes(header), `${decoding}: ${header}`);
      assert.ok(
        md.includes(`(\`eval/accuracy\`: ${curve} on the first 4`),
        `${decoding}: ${curve}`,
      );
      assert.ok((await Deno.readTextFile(`${out}/accuracy.svg`)).includes(subtitle), subtitle);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  }
});

Deno.test("compare --report-only names a bad results.json or a missing one, exit 2", async () => {
  const out = await reportFolder();
  try {
    const bad = structuredClone(DATA) as unknown as { runs: Record<string, unknown>[] };
    bad.runs[1]!.seed = "one";
    await Deno.writeTextFile(`${out}/results.json`, JSON.stringify(bad));
    let r = await runTask(["compare", "--report-only", "--out", out]);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr.trim(),
      `Cannot read "${out}/results.json": field "runs.1.seed" invalid input: expected number, ` +
        `received string: current value is "one"`,
    );
    await Deno.writeTextFile(
      `${out}/mgrpo-seed0/metrics.jsonl`,
      '{"step":0,"eval/accuracy":0.4}\n{"step":2,"eval/accuracy":0.5}\n',
    );
    await Deno.writeTextFile(`${out}/results.json`, JSON.stringify(DATA));
    r = await runTask(["compare", "--report-only", "--out", out]);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr.trim(),
      `Cannot read "${out}/mgrpo-seed0/metrics.jsonl": line 2: no line of step 2 records ` +
        `"tokens/sampled_total" for this evaluation`,
    );
    r = await runTask(["compare", "--report-only", "--out", `${out}/nothing`]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /^Cannot rewrite the report of ".*\/nothing": cannot read its results.json: /,
    );
    r = await runTask(["compare", "--report-only"]);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr.trim(),
      "--report-only needs --out DIR, a folder written by deno task compare",
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
