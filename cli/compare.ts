/**
 * `deno task compare`: MGRPO against GRPO (and PPO) on the embedded task over several seeds,
 * from the same warm start, with the success criterion fixed before the runs
 * (`cli/compare_report.ts`). Arms:
 *
 * - `mgrpo`: the embedded default (`configs/tiny-mgrpo.yaml`);
 * - `grpo`: `configs/tiny-grpo.yaml` at the same number of optimizer steps as MGRPO;
 * - `grpo_tokens`: `configs/tiny-grpo.yaml` stopped at the sampled tokens of the MGRPO run of
 *   the same seed (both layers count), its schedule long enough to reach them
 *   (`tokenMatchedSteps`);
 * - `ppo`: `configs/tiny-ppo.yaml` at the same number of optimizer steps.
 *
 * Every final policy is evaluated on the whole held-out set (`task.heldout_size`, decoded as the
 * `eval` section says: greedy by default): its
 * first answer and one guided correction. The warm start also gets the intrinsic two-round
 * evaluation. Writes `<out>/report.md`, the plot of held-out accuracy during training as
 * `<out>/accuracy.svg` and `<out>/accuracy.png` (`cli/compare_plot.ts`), `<out>/results.json`
 * (every per-problem verdict) and one run folder per arm and seed; prints the report and a final
 * JSON line with the criterion's verdicts. Runs go one at a time unless `--jobs` says otherwise,
 * so that wall times are comparable; with `--jobs N` each run gets its share of the cores as wasm
 * threads (`childWasmThreads`). `--report-only` writes the report and the plot again from
 * a report folder's `results.json` and run folders, without training or evaluating.
 *
 * @module
 */
import { runMain, TRAIN_RUN_ARGS } from "./common.ts";
import { readProcFile } from "../util/proc.ts";
import { exists } from "../model/fs.ts";
import { evaluateCheckpointTwoTurn } from "../training/evaluate.ts";
import { heldOut, REPO_ROOT, resolveModelDir, resolveRepoPath } from "../training/setup.ts";
import { loadConfig } from "../training/config.ts";
import { ArgsError, type FlagSpec, formatHelp, parseFlags } from "./args.ts";
import { initBackend } from "../model/backend.ts";
import {
  type CompareData,
  type CompareRun,
  judge,
  parseCompareData,
  reportMarkdown,
} from "./compare_report.ts";
import { accuracyPlotFiles, curveFromMetrics } from "./compare_plot.ts";
import { InputError } from "../util/errors.ts";
import { correctionMetrics } from "../algorithms/mgrpo/self_correction.ts";

const ARMS: Record<string, { label: string; config: string | null }> = {
  mgrpo: { label: "MGRPO", config: null },
  grpo: { label: "GRPO (equal steps)", config: "configs/tiny-grpo.yaml" },
  grpo_tokens: { label: "GRPO (equal tokens)", config: "configs/tiny-grpo.yaml" },
  ppo: { label: "PPO (equal steps)", config: "configs/tiny-ppo.yaml" },
};

/**
 * The wasm threads each training run gets when `--jobs` runs share the machine and
 * `model.wasm_threads` is left at 0: the cores split between the jobs (at least one). Runs
 * started together would each see idle cores and start one thread per core, several times
 * more threads than cores. The threads do not change a run's results (bit-identical).
 * `undefined`: nothing to add (one job, or threads set by the user).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { childWasmThreads } from "./compare.ts";
 *
 * assert.equal(childWasmThreads(2, 2, 0), 1);
 * assert.equal(childWasmThreads(2, 8, 0), 4);
 * assert.equal(childWasmThreads(1, 2, 0), undefined);
 * assert.equal(childWasmThreads(2, 2, 3), undefined);
 * ```
 */
export function childWasmThreads(
  jobs: number,
  cores: number,
  configured: number,
): number | undefined {
  if (jobs <= 1 || configured !== 0) return undefined;
  return Math.max(1, Math.floor(cores / jobs));
}

/**
 * The schedule length (`run.steps`) of a `grpo_tokens` run, so that it samples about the MGRPO
 * run's tokens. With the same seed's equal-step GRPO run at hand, its sampled tokens per step
 * give the steps the budget needs, plus 10%; never fewer than the GRPO config's own steps.
 * Answers change length as the policy trains, so either end may come first: the budget, or the
 * schedule a little short of it (up to 2.3% of the tokens in `docs/compare-2026-12-06c`, where
 * GRPO's answers shortened). Without that run, the config's steps.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tokenMatchedSteps } from "./compare.ts";
 *
 * // MGRPO sampled 153,362 tokens; GRPO samples 20,328 in 16 steps: 121 steps, 133 with room.
 * assert.equal(tokenMatchedSteps(153362, { steps: 16, sampled_tokens: 20328 }, 100), 133);
 * assert.equal(tokenMatchedSteps(50000, { steps: 16, sampled_tokens: 20328 }, 100), 100);
 * assert.equal(tokenMatchedSteps(153362, undefined, 100), 100);
 * ```
 */
export function tokenMatchedSteps(
  budget: number,
  grpo: { steps: number; sampled_tokens: number } | undefined,
  configSteps: number,
): number {
  if (!grpo || grpo.steps < 1 || grpo.sampled_tokens <= 0) return configSteps;
  const perStep = grpo.sampled_tokens / grpo.steps;
  return Math.max(configSteps, Math.ceil((1.1 * budget) / perStep));
}

async function train(runDir: string, args: string[]): Promise<void> {
  await Deno.remove(runDir, { recursive: true }).catch(() => {});
  const output = await new Deno.Command(Deno.execPath(), {
    args: [...TRAIN_RUN_ARGS, "--run-dir", runDir, ...args],
  }).output();
  const decoder = new TextDecoder();
  await Deno.writeTextFile(
    `${runDir}.log`,
    decoder.decode(output.stdout) + decoder.decode(output.stderr),
  );
  if (!output.success) throw new Error(`train failed for ${runDir}: see ${runDir}.log`);
}

/** Held-out accuracy during training: `[step, sampled tokens, accuracy]` per evaluation. */
async function curve(runDir: string): Promise<[number, number, number][]> {
  const path = `${runDir}/metrics.jsonl`;
  return curveFromMetrics(await Deno.readTextFile(path), path).map((p) => [...p]);
}

/** Writes the report, the plot (SVG and PNG) and `results.json` to `out`, and prints them. */
async function writeReport(out: string, data: CompareData): Promise<void> {
  const verdict = judge(data);
  const md = reportMarkdown(data, verdict);
  const plot = await accuracyPlotFiles(data);
  await Deno.writeTextFile(`${out}/report.md`, md);
  await Deno.writeTextFile(`${out}/accuracy.svg`, plot.svg);
  await Deno.writeFile(`${out}/accuracy.png`, plot.png);
  await Deno.writeTextFile(
    `${out}/results.json`,
    JSON.stringify({ ...data, verdict }, null, 1) + "\n",
  );
  console.log(md);
  console.log(JSON.stringify({
    self_correction_every_seed: verdict.selfCorrectionPass,
    mgrpo_vs_grpo_diff: verdict.vsGrpo?.diff ?? null,
    mgrpo_vs_grpo_p: verdict.vsGrpo?.p ?? null,
    mgrpo_vs_grpo_pass: verdict.vsGrpo?.pass ?? null,
    out,
  }));
}

/**
 * `--report-only`: the report folder's `results.json`, with each run's curve read again from
 * its run folder's `metrics.jsonl` where that folder is there.
 */
async function reportAgain(out: string): Promise<void> {
  const path = `${out}/results.json`;
  const text = await Deno.readTextFile(path).catch((e) => {
    throw new InputError(
      `Cannot rewrite the report of "${out}": cannot read its results.json: ${
        (e as Error).message
      }`,
    );
  });
  const data = parseCompareData(text, path);
  for (const run of data.runs) {
    const dir = `${out}/${run.arm}-seed${run.seed}`;
    if (await exists(`${dir}/metrics.jsonl`)) run.curve = await curve(dir);
  }
  await writeReport(out, data);
}

const COMPARE_FLAGS: Readonly<Record<string, FlagSpec>> = {
  seeds: {
    type: "string",
    placeholder: "LIST",
    help: "Seeds, comma-separated (default 0,1,2,3,4)",
  },
  arms: {
    type: "string",
    placeholder: "LIST",
    help: `Arms to run, of ${Object.keys(ARMS).join(", ")} (default mgrpo,grpo,grpo_tokens)`,
  },
  out: { type: "string", placeholder: "DIR", help: "Report folder (default runs/compare-<date>)" },
  steps: { type: "string", placeholder: "N", help: "Optimizer steps per run (default: run.steps)" },
  jobs: { type: "string", placeholder: "N", help: "Runs at once (default 1)" },
  set: {
    type: "string",
    multiple: true,
    placeholder: "KEY=VALUE",
    help: "Config override for every run; repeatable",
  },
  reuse: {
    type: "boolean",
    help: "Keep the finished runs and held-out verdicts of an earlier call in --out",
  },
  "report-only": {
    type: "boolean",
    help: "Only write the report and plot again from --out's results.json and runs (no training)",
  },
  help: { type: "boolean", short: "h", help: "Print this help and exit" },
};

const COMPARE_HELP = formatHelp(COMPARE_FLAGS, {
  usage:
    "deno task compare [--seeds 0,1,2,3,4] [--arms mgrpo,grpo,grpo_tokens,ppo] [--out DIR] [--steps N] [--jobs N] [--set KEY=VALUE]... [--reuse]\n" +
    "       deno task compare --report-only --out DIR",
  summary:
    "Trains each arm on each seed, evaluates every final policy on the held-out set and writes the\n" +
    "report (the criterion fixed before the runs, McNemar's and permutation tests) and the plot of\n" +
    "held-out accuracy during training (per arm the mean over seeds and the min-max band, against\n" +
    "optimizer steps and sampled tokens) as accuracy.svg and accuracy.png.",
  examples: [
    "deno task compare",
    "deno task compare --seeds 0,1 --steps 8 --out runs/quick",
    "deno task compare --report-only --out runs/compare-2026-12-05",
  ],
});

async function main(argv: string[]): Promise<number> {
  const { values: v } = parseFlags(argv, COMPARE_FLAGS);
  if (v.help === true) {
    console.log(COMPARE_HELP);
    return 0;
  }
  if (v["report-only"] === true) {
    const others = Object.keys(v).filter((k) => k !== "report-only" && k !== "out");
    if (others.length) {
      throw new ArgsError(
        `Invalid flags for --report-only, which takes only --out: current value has --${
          others.join(", --")
        }`,
      );
    }
    if (typeof v.out !== "string") {
      throw new ArgsError("--report-only needs --out DIR, a folder written by deno task compare");
    }
    await reportAgain(v.out);
    return 0;
  }
  const values = {
    seeds: (v.seeds as string | undefined) ?? "0,1,2,3,4",
    arms: (v.arms as string | undefined) ?? "mgrpo,grpo,grpo_tokens",
    out: v.out as string | undefined,
    jobs: (v.jobs as string | undefined) ?? "1",
    steps: v.steps as string | undefined,
    set: (v.set as string[] | undefined) ?? [],
    reuse: v.reuse === true,
  };
  const seeds = values.seeds.split(",").map((s) => Number(s.trim()));
  if (seeds.some((s) => !Number.isInteger(s) || s < 0)) {
    throw new ArgsError(`Invalid value for --seeds: current value is "${values.seeds}"`);
  }
  const arms = values.arms.split(",").map((a) => a.trim());
  for (const a of arms) {
    if (!(a in ARMS)) {
      throw new ArgsError(
        `Invalid value for --arms: "${a}" is not one of ${Object.keys(ARMS).join(", ")}`,
      );
    }
  }
  if (arms.includes("grpo_tokens") && !arms.includes("mgrpo")) {
    throw new ArgsError(`Invalid value for --arms: grpo_tokens needs mgrpo (its token budget)`);
  }
  const config = loadConfig(undefined, { overrides: values.set });
  const threads = childWasmThreads(
    Number(values.jobs),
    navigator.hardwareConcurrency,
    config.model.wasm_threads,
  );
  const sets = [
    ...values.set.flatMap((s) => ["--set", s]),
    ...(threads === undefined ? [] : ["--set", `model.wasm_threads=${threads}`]),
  ];
  const steps = values.steps === undefined ? config.run.steps : Number(values.steps);
  if (!Number.isInteger(steps) || steps < 1) {
    throw new ArgsError(`Invalid value for --steps: current value is "${values.steps}"`);
  }
  const date = new Date().toISOString().slice(0, 10);
  const out = values.out ?? `runs/compare-${date}`;
  await Deno.mkdir(out, { recursive: true });
  const every = (n: number) => String(Math.max(1, Math.round(n / 4)));

  // --- runs ---
  const dirOf = (arm: string, seed: number) => `${out}/${arm}-seed${seed}`;
  const argsOf = async (arm: string, seed: number): Promise<string[]> => {
    const base = [
      ...(ARMS[arm]!.config ? ["--config", `${REPO_ROOT}${ARMS[arm]!.config}`] : []),
      "--seed",
      String(seed),
      ...sets,
    ];
    if (arm === "grpo_tokens") {
      const m = JSON.parse(await Deno.readTextFile(`${dirOf("mgrpo", seed)}/summary.json`));
      const configSteps = loadConfig(resolveRepoPath(ARMS.grpo_tokens!.config!)).run.steps;
      const grpoSummary = `${dirOf("grpo", seed)}/summary.json`;
      const grpo = arms.includes("grpo") && await exists(grpoSummary)
        ? JSON.parse(await Deno.readTextFile(grpoSummary))
        : undefined;
      const grpoSteps = tokenMatchedSteps(m.sampled_tokens, grpo, configSteps);
      return [
        ...base,
        "--steps",
        String(grpoSteps),
        "--set",
        `run.max_sampled_tokens=${m.sampled_tokens}`,
        // Every seed evaluates at the same steps, so that the plot can average them; their
        // schedules differ in length with their budgets.
        "--set",
        `eval.every=${every(configSteps)}`,
      ];
    }
    return [...base, "--steps", String(steps), "--set", `eval.every=${every(steps)}`];
  };
  // MGRPO, then GRPO first for each seed: grpo_tokens reads the budget of one and the tokens per
  // step of the other.
  const rank = (arm: string) => arm === "mgrpo" ? 0 : arm === "grpo" ? 1 : 2;
  const order = [...arms].sort((a, b) => rank(a) - rank(b));
  const queue = seeds.flatMap((seed) => order.map((arm) => ({ arm, seed })));
  const pending: typeof queue = [];
  for (const job of queue) {
    if (!(values.reuse && await exists(`${dirOf(job.arm, job.seed)}/summary.json`))) {
      pending.push(job);
    }
  }
  // The runs started so far, by arm and seed. A grpo_tokens run waits for its seed's MGRPO run
  // (its budget) and GRPO run (its tokens per step): taken from the queue before it, they have
  // started by then, unless they were reused or not asked for.
  const running = new Map<string, Promise<void>>();
  await Promise.all(
    Array.from({ length: Math.max(1, Number(values.jobs)) }, async () => {
      for (let job = pending.shift(); job; job = pending.shift()) {
        if (job.arm === "grpo_tokens") {
          await running.get(`mgrpo-${job.seed}`);
          await running.get(`grpo-${job.seed}`);
        }
        const dir = dirOf(job.arm, job.seed);
        console.log(`running ${dir}`);
        const run = (async () => train(dir, await argsOf(job.arm, job.seed)))();
        running.set(`${job.arm}-${job.seed}`, run);
        await run;
      }
    }),
  );

  // --- evaluation on the whole held-out set ---
  await initBackend(config.model.backend, { wasmThreads: config.model.wasm_threads });
  const { problems } = heldOut(config.task, "heldout");
  const verdictsOf = async (checkpoint: string, cache: string) => {
    if (values.reuse && await exists(cache)) {
      return JSON.parse(await Deno.readTextFile(cache)) as { t1: boolean[]; t2: boolean[] };
    }
    const { result } = await evaluateCheckpointTwoTurn(checkpoint, config, problems, { rounds: 1 });
    const v = { t1: result.verdicts.map((r) => r[0]!), t2: result.verdicts.map((r) => r[1]!) };
    await Deno.writeTextFile(cache, JSON.stringify(v));
    return v;
  };
  console.log(`evaluating on ${problems.length} held-out problems`);
  const warm = await evaluateCheckpointTwoTurn(
    resolveModelDir(config.model.init),
    config,
    problems,
    {
      rounds: 2,
    },
  );
  const runs: CompareRun[] = [];
  for (const { arm, seed } of queue) {
    const dir = dirOf(arm, seed);
    const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
    const v = await verdictsOf(summary.checkpoint, `${dir}/heldout.json`);
    runs.push({
      arm,
      seed,
      steps: summary.steps,
      sampledTokens: summary.sampled_tokens,
      seconds: summary.seconds,
      heldout: correctionMetrics(v.t1, v.t2),
      t1: v.t1,
      t2: v.t2,
      curve: await curve(dir),
      ...(await Deno.readTextFile(`${dir}/environment.jsonl`).then(
        (t) => ({ environment: JSON.parse(t.trim().split("\n").at(-1)!) }),
        () => ({}),
      )),
    });
  }
  const cpuinfo = (await readProcFile("/proc/cpuinfo")) ?? "";
  const cpu = cpuinfo.match(/model name\s*:\s*(.+)/)?.[1] ?? "unknown CPU";
  const data: CompareData = {
    date,
    // --reuse and --jobs change how the runs are scheduled, not their results.
    command: `deno task compare ${
      argv.filter((a, i) =>
        a !== "--reuse" && a !== "--jobs" && argv[i - 1] !== "--jobs" && !a.startsWith("--jobs=")
      ).join(" ")
    }`.trim(),
    seeds,
    arms: arms.map((name) => ({ name, label: ARMS[name]!.label })),
    runs,
    warmStart: { correction: warm.correction, intrinsic: warm.intrinsic! },
    heldoutSize: problems.length,
    evalSubset: config.task.eval_size,
    decoding: config.eval.greedy ? "greedy" : `T = ${config.eval.temperature}`,
    machine: `${navigator.hardwareConcurrency} cores, ${cpu}, ${
      values.jobs === "1" ? "runs one at a time" : `${values.jobs} runs at a time`
    }`,
  };
  await writeReport(out, data);
  return 0;
}

// Threaded wasm workers would keep the process alive: runMain exits.
if (import.meta.main) await runMain(main);
