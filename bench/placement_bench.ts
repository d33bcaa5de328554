/**
 * `deno task bench:placement [--steps N] [--config FILE] [--variants a,b,c]`: step time of
 * the embedded default (or FILE) with every actor in-process (`inprocess`: the config's wasm
 * threads, one per core by default; `inprocess_1t`: one wasm thread) vs the Sampler in a Web
 * Worker (`worker`: `placement.sampler=worker`, one wasm thread in each of the two threads),
 * each a real `cli/train.ts` run without evaluations. Prints one JSON object: the median
 * `time/step` of each (the first step, which warms up, left out), the ratios
 * `worker / inprocess` and `worker / inprocess_1t` (below 1: the Worker is faster), and whether
 * the runs computed the same metrics.
 *
 * @module
 */
import { TRAIN_RUN_ARGS } from "../cli/common.ts";
import { benchArgs } from "./cli.ts";

const flags = benchArgs(
  "bench:placement",
  "Step time with every actor in process against the Sampler in a Web Worker.",
  {
    steps: { type: "string", default: "4", placeholder: "N", help: "Steps per run" },
    config: {
      type: "string",
      default: "configs/tiny-mgrpo.yaml",
      placeholder: "FILE",
      help: "Config",
    },
    variants: {
      type: "string",
      default: "inprocess,inprocess_1t,worker",
      placeholder: "LIST",
      help: "Variants to run, comma-separated",
    },
  },
);
const steps = Number(flags.steps);
const config = flags.config;
const variants = flags.variants.split(",");
const SETS: Record<string, string[]> = {
  inprocess: [],
  inprocess_1t: ["model.wasm_threads=1"],
  worker: ["placement.sampler=worker"],
};

async function run(label: string, sets: string[]): Promise<Record<string, number>[]> {
  const dir = await Deno.makeTempDir({ prefix: `bench-placement-${label}-` });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        ...TRAIN_RUN_ARGS,
        "--config",
        config,
        ...[
          `run.steps=${steps}`,
          "eval.before=false",
          "eval.after=false",
          "control.enabled=false",
          ...sets,
        ].flatMap((s) => ["--set", s]),
        "--run-dir",
        dir,
      ],
      cwd: new URL("../", import.meta.url).pathname,
      env: { NO_COLOR: "1" },
    }).output();
    if (out.code !== 0) {
      throw new Error(`The ${label} run failed:\n${new TextDecoder().decode(out.stderr)}`);
    }
    return (await Deno.readTextFile(`${dir}/metrics.jsonl`)).split("\n").filter((l) => l)
      .map((l) => JSON.parse(l) as Record<string, number>);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function stepTimes(records: Record<string, number>[]): number[] {
  const times = records.map((r) => r["time/step"]).filter((t): t is number => t !== undefined);
  return times.length > 1 ? times.slice(1) : times;
}

function numbers(records: Record<string, number>[]): string {
  return JSON.stringify(
    records.map((r) =>
      Object.fromEntries(Object.entries(r).filter(([k]) => !/^(time|throughput|queue)\//.test(k)))
    ),
  );
}

const results: Record<string, Record<string, number>[]> = {};
for (const name of variants) {
  const sets = SETS[name];
  if (!sets) throw new RangeError(`Unknown variant "${name}": known are ${Object.keys(SETS)}`);
  results[name] = await run(name, sets);
}
const step: Record<string, number> = {};
for (const [name, records] of Object.entries(results)) step[name] = median(stepTimes(records));
const ratio = (a: string, b: string) =>
  step[a] !== undefined && step[b] !== undefined
    ? Number((step[a]! / step[b]!).toFixed(3))
    : undefined;
const runs = Object.values(results).map(numbers);
console.log(JSON.stringify(
  {
    config,
    steps,
    cores: navigator.hardwareConcurrency,
    step_s: Object.fromEntries(Object.entries(step).map(([k, v]) => [k, Number(v.toFixed(3))])),
    ratio_worker_over_inprocess: ratio("worker", "inprocess"),
    ratio_worker_over_inprocess_1t: ratio("worker", "inprocess_1t"),
    same_metrics: runs.every((r) => r === runs[0]),
  },
  null,
  2,
));
