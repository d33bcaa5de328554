/**
 * `deno task bench:load [--steps 4] [--threads 1,2,0] [--competitors 0,1,2]`: how the default
 * run's step time degrades when other CPU-bound processes share the cores, per
 * `model.wasm_threads` (1; 2; 0 = the default, one per core unless the machine is
 * oversubscribed — see `model/backend.ts`). For each pair it starts that many competitors (each
 * a busy loop in a process of its own), runs the embedded default for `--steps` steps without
 * evaluations (`cli/train.ts`), and reads `time/step` from `metrics.jsonl` (the first step,
 * which warms up, left out; median of the rest) and the process's CPU time. Prints a table and
 * one JSON line; each time is also given as a multiple of the same setting's quiet time.
 *
 * Run it on a machine that is otherwise quiet: other load distorts every figure.
 *
 * @module
 */
import { TRAIN_RUN_ARGS } from "../cli/common.ts";
import { formatTable } from "../util/table.ts";
import { benchArgs } from "./cli.ts";
import { readProcFile } from "../util/proc.ts";

const flags = benchArgs(
  "bench:load",
  "Step time of the default run with 0, 1, 2 competing CPU-bound processes, per wasm_threads.",
  {
    steps: {
      type: "string",
      default: "4",
      placeholder: "N",
      help: "Steps per run (first left out)",
    },
    threads: {
      type: "string",
      default: "1,2,0",
      placeholder: "LIST",
      help: "model.wasm_threads values (0 = the default)",
    },
    competitors: {
      type: "string",
      default: "0,1,2",
      placeholder: "LIST",
      help: "Competing busy processes",
    },
  },
);
const steps = Number(flags.steps);
const threadList = flags.threads.split(",").map(Number);
const competitorList = flags.competitors.split(",").map(Number);

/** A busy loop in a process of its own. */
function competitor(): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", "let x = 0; for (;;) { x = (x * 1664525 + 1013904223) >>> 0; }"],
    stdout: "null",
    stderr: "null",
  }).spawn();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** User + system CPU seconds of the finished children of this process (from /proc). */
async function childCpuSeconds(): Promise<number> {
  const stat = (await readProcFile(`/proc/${Deno.pid}/stat`)) ?? "";
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // cutime and cstime are fields 16 and 17 (1-based), 14 and 15 after the name.
  return (Number(fields[13] ?? 0) + Number(fields[14] ?? 0)) / 100;
}

async function run(threads: number, load: number) {
  const dir = await Deno.makeTempDir({ prefix: `bench-load-${threads}-${load}-` });
  const busy = Array.from({ length: load }, competitor);
  try {
    const cpu0 = await childCpuSeconds();
    const t0 = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        ...TRAIN_RUN_ARGS,
        ...[
          `run.steps=${steps}`,
          "eval.before=false",
          "eval.after=false",
          "control.enabled=false",
          `model.wasm_threads=${threads}`,
        ].flatMap((s) => ["--set", s]),
        "--run-dir",
        `${dir}/run`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    const wall = (performance.now() - t0) / 1000;
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    const cpu = (await childCpuSeconds()) - cpu0;
    const records = (await Deno.readTextFile(`${dir}/run/metrics.jsonl`)).trim().split("\n")
      .map((l) => JSON.parse(l) as Record<string, number>).filter((r) =>
        r["time/step"] !== undefined
      );
    const env = JSON.parse(
      (await Deno.readTextFile(`${dir}/run/environment.jsonl`)).trim().split("\n")[0]!,
    );
    return {
      threads,
      resolved_threads: env.wasm_threads as number,
      competitors: load,
      step_s: median(records.slice(1).map((r) => r["time/step"]!)),
      wall_s: wall,
      cpu_s: cpu,
    };
  } finally {
    for (const b of busy) {
      b.kill("SIGKILL");
      await b.status;
    }
    await Deno.remove(dir, { recursive: true });
  }
}

const results = [];
for (const threads of threadList) {
  for (const load of competitorList) {
    const r = await run(threads, load);
    results.push(r);
    console.error(
      `threads ${threads} (${r.resolved_threads}), ${load} competitors: ${
        r.step_s.toFixed(2)
      } s/step`,
    );
  }
}
const quiet = new Map(results.filter((r) => r.competitors === 0).map((r) => [r.threads, r.step_s]));
const rows = results.map((r) => [
  r.threads === 0 ? `0 (default: ${r.resolved_threads})` : String(r.threads),
  r.competitors,
  r.step_s.toFixed(2),
  quiet.has(r.threads) ? `${(r.step_s / quiet.get(r.threads)!).toFixed(2)}×` : "-",
  quiet.has(1) ? `${(r.step_s / quiet.get(1)!).toFixed(2)}×` : "-",
  r.cpu_s.toFixed(0),
]);
console.log(
  formatTable(
    ["wasm_threads", "competitors", "s/step", "vs its quiet", "vs 1 thread quiet", "CPU s"],
    rows,
  ),
);
console.log(JSON.stringify({ cores: navigator.hardwareConcurrency, steps, results }));
