/**
 * `deno task bench:verify`: throughput of the math verifier on this machine, in-process and
 * through a {@linkcode VerifierPool} (child processes or Web Workers, batched or not), and
 * end to end through `deno task verify`, on two sets of pairs:
 *
 * - `cases`: the 312 peer-test-suite pairs of `tests/fixtures/verifier_cases.jsonl`;
 * - `gsm8k`: 2000 GSM8K-style responses (reference solutions ending in `#### N` or in
 *   `$\boxed{N}$` with thousands separators; every other one with a wrong final answer)
 *   against the integer answers of the GSM8K test split.
 *
 * Figures are medians of `--repeats` timed runs after one warm-up run; pool figures leave
 * verifier startup out (it is measured on its own), the CLI figure includes everything.
 * Prints a table and one JSON line.
 *
 * @module
 */
import { type Isolation, VerifierPool } from "../verifiers/math/pool.ts";
import { verifyMath } from "../verifiers/math/verify.ts";
import type { MathVerdict } from "../verifiers/math/types.ts";
import { formatTable } from "../util/table.ts";
import { median, timeIt as timeRepeats } from "./timing.ts";
import { benchArgs } from "./cli.ts";

const values = benchArgs(
  "bench:verify",
  "Verifications per second: in process, through the pool, through deno task verify.",
  {
    repeats: {
      type: "string",
      default: "3",
      placeholder: "N",
      help: "Timed runs per figure (median)",
    },
    workers: {
      type: "string",
      default: "2",
      placeholder: "N",
      help: "Verifier workers of the pool",
    },
  },
);
const repeats = Number(values.repeats), workers = Number(values.workers);
const timeIt = (f: () => Promise<void> | void) => timeRepeats(async () => await f(), repeats);
const REPO = new URL("../", import.meta.url);

interface Pair {
  pred: string;
  gold: string;
}

function readJsonLines(candidates: string[]): { path: string; rows: Record<string, unknown>[] } {
  for (const path of candidates) {
    let text: string;
    try {
      text = Deno.readTextFileSync(new URL(path, REPO));
    } catch {
      continue;
    }
    const rows = text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
    return { path, rows };
  }
  throw new Error(`Cannot find any of ${candidates.join(", ")}`);
}

const cases = readJsonLines([
  "tests/fixtures/verifier_cases.jsonl",
  "/work/shared/data/verifier_cases.jsonl",
]);
const casePairs: Pair[] = cases.rows.map((r) => ({ pred: String(r.pred), gold: String(r.gold) }));

const gsm = readJsonLines([
  "data/benchmarks/gsm8k_test.jsonl",
  "/work/shared/data/gsm8k_test.jsonl",
]);
const gsmPairs: Pair[] = Array.from({ length: 2000 }, (_, i) => {
  const row = gsm.rows[i % gsm.rows.length]!;
  const gold = String(row.answer);
  const body = String(row.solution).replace(/#### .*$/s, "").trimEnd();
  const said = i % 2 === 0 ? BigInt(gold) : BigInt(gold) + 1n; // every other one is wrong
  const answer = i % 4 < 2
    ? `#### ${said}`
    : `The answer is $\\boxed{${said.toLocaleString("en-US")}}$.`;
  return { pred: `${body}\n${answer}`, gold };
});

function sameVerdicts(a: MathVerdict[], b: MathVerdict[]): number {
  return a.filter((v, i) => JSON.stringify(v) !== JSON.stringify(b[i])).length;
}

const sets: [string, Pair[]][] = [["cases", casePairs], ["gsm8k", gsmPairs]];
const rows: (string | number)[][] = [];
const result: Record<string, number> = {};

// Verifier startup: from spawn to ready, one verifier.
for (const isolation of ["process", "worker"] as Isolation[]) {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const pool = new VerifierPool({ isolation, size: 1 });
    const t0 = performance.now();
    await pool.warmUp();
    times.push(performance.now() - t0);
    await pool.close();
  }
  result[`startup_ms/${isolation}`] = median(times);
  rows.push([`startup (${isolation})`, "-", `${median(times).toFixed(0)} ms`, "spawn to ready"]);
}

for (const [name, pairs] of sets) {
  let reference: MathVerdict[] = [];
  const inProcess = await timeIt(() => {
    reference = pairs.map((p) => verifyMath(p.pred, p.gold));
    return Promise.resolve();
  });
  const equal = reference.filter((v) => v.equal).length;
  result[`${name}/in_process`] = pairs.length / inProcess;
  rows.push([
    `${name}: in-process`,
    pairs.length,
    (pairs.length / inProcess).toFixed(0),
    `${equal} equal, 1 thread`,
  ]);

  for (const isolation of ["process", "worker"] as Isolation[]) {
    for (const batchSize of [1, 4, 16, 64]) {
      const pool = new VerifierPool({ isolation, size: workers, batchSize });
      try {
        await pool.warmUp();
        let verdicts: MathVerdict[] = [];
        const s = await timeIt(async () => {
          verdicts = await pool.verifyMany(pairs);
        });
        const key = `${name}/pool_${isolation}_batch${batchSize}`;
        result[key] = pairs.length / s;
        const diff = sameVerdicts(verdicts, reference);
        rows.push([
          `${name}: pool ${isolation}, batch ${batchSize}`,
          pairs.length,
          (pairs.length / s).toFixed(0),
          `${workers} verifiers${diff === 0 ? "" : `, ${diff} verdicts differ`}`,
        ]);
      } finally {
        await pool.close();
      }
    }
  }

  // End to end: `deno run cli/verify.ts` with the pairs on stdin, startup included.
  const input = new TextEncoder().encode(pairs.map((p) => JSON.stringify(p)).join("\n") + "\n");
  let outLines = 0;
  const cli = await timeIt(async () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-run", "cli/verify.ts", "--workers", String(workers)],
      cwd: REPO,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    // Write and read at once: the CLI streams, so a full stdout pipe would stop it reading.
    const writing = (async () => {
      const writer = child.stdin.getWriter();
      await writer.write(input);
      await writer.close();
    })();
    const out = await child.output();
    await writing;
    outLines = new TextDecoder().decode(out.stdout).trimEnd().split("\n").length;
  });
  result[`${name}/cli`] = pairs.length / cli;
  rows.push([
    `${name}: deno task verify`,
    pairs.length,
    (pairs.length / cli).toFixed(0),
    `${outLines} lines out, startup included`,
  ]);
}

console.log(`cases: ${cases.path}, gsm8k: ${gsm.path}, cores: ${navigator.hardwareConcurrency}`);
console.log(formatTable(["measure", "pairs", "verifications/s", "detail"], rows));
console.log(JSON.stringify(result));
