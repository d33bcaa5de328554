/**
 * How likely a policy's break rate meets criterion 1's bound on every seed: reads a compare
 * report's per-problem verdicts (`results.json`), counts each MGRPO seed's right first answers
 * that one guided correction broke, and, counting breaks as Poisson at the seeds' mean, prints the
 * chance that `--seeds` fresh seeds all stay within `--bound` (a fraction of the problems) and
 * the highest mean rate at which that chance is at least `--target`. Used in
 * docs/self-correction.md ("What criterion 1 asks of the break rate").
 *
 *   deno run --allow-read tools/criterion_odds.ts docs/compare-2026-12-07f/results.json
 *     [--bound 0.01] [--seeds 5] [--target 0.9]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseCompareData } from "../cli/compare_report.ts";
import { runMain } from "../cli/common.ts";
import { ArgsError } from "../cli/args.ts";

/** P(X <= k) for X ~ Poisson(lambda). */
export function poissonCdf(k: number, lambda: number): number {
  let term = Math.exp(-lambda);
  let sum = term;
  for (let i = 1; i <= k; i++) {
    term *= lambda / i;
    sum += term;
  }
  return sum;
}

/** The highest lambda with P(X <= k)^seeds >= target (the chance falls as lambda grows). */
export function highestRate(k: number, seeds: number, target: number): number {
  let lo = 0;
  let hi = k + 1;
  while (poissonCdf(k, hi) ** seeds >= target) hi *= 2;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (poissonCdf(k, mid) ** seeds >= target) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** The command: prints the breaks per seed, the chance at their mean and the highest rate. */
async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      bound: { type: "string", default: "0.01" },
      seeds: { type: "string", default: "5" },
      target: { type: "string", default: "0.9" },
    },
  });
  if (positionals.length !== 1) {
    console.error("Usage: deno run --allow-read tools/criterion_odds.ts RESULTS_JSON [--bound F]");
    return 2;
  }
  const number = (flag: "bound" | "target" | "seeds", ok: (x: number) => boolean, want: string) => {
    const x = Number(values[flag]);
    if (!ok(x)) {
      throw new ArgsError(
        `Invalid value for --${flag}: must be ${want}: current value is "${values[flag]}"`,
      );
    }
    return x;
  };
  const bound = number("bound", (x) => x >= 0 && x < 1, "a fraction in [0, 1)");
  const target = number("target", (x) => x > 0 && x < 1, "a probability in (0, 1)");
  const seeds = number("seeds", (x) => Number.isInteger(x) && x >= 1, "an integer >= 1");
  const results = parseCompareData(await Deno.readTextFile(positionals[0]!), positionals[0]!);
  const runs = results.runs.filter((r) => r.arm === "mgrpo");
  const breaks = runs.map((r) => r.t1.filter((right, i) => right && !r.t2[i]).length);
  const n = runs[0]!.t1.length;
  const k = Math.floor(bound * n + 1e-9);
  const mean = breaks.reduce((a, b) => a + b, 0) / breaks.length;
  console.log(
    `MGRPO breaks per seed (${n} problems): ${
      runs.map((r, i) => `seed ${r.seed} ${breaks[i]}`).join(", ")
    }; mean ${mean.toFixed(1)}`,
  );
  console.log(
    `P(all ${seeds} seeds break at most ${k}) at that mean, Poisson: ${
      (poissonCdf(k, mean) ** seeds).toFixed(3)
    }`,
  );
  console.log(
    `highest mean with that chance >= ${values.target}: ${
      highestRate(k, seeds, target).toFixed(1)
    } per ${n}`,
  );
  return 0;
}

if (import.meta.main) await runMain(main);
