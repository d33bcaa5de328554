/**
 * `deno task eval`: greedy (or sampled) accuracy of checkpoints on the synthetic task's
 * held-out set, or on a math benchmark (`--dataset gsm8k|math500|minerva|olympiadbench|FILE`,
 * checked by the math verifier), printed as a table with a few sample completions; with
 * `--two-turn`, solve → self-correct twice and the paper's Table 2 columns. A benchmark run
 * writes `problems.jsonl` (one line per problem) and `summary.json` to `--out`.
 *
 * @module
 */
import { basename } from "node:path";
import { ArgsError, choiceError, COMMON_FLAGS, formatHelp, parseCommonArgs } from "./args.ts";
import { loadConfig } from "../training/config.ts";
import {
  CORRECTION_COLUMNS,
  correctionCells,
  intrinsicCells,
  pct,
  runMain,
  TWO_TURN_COLUMNS,
} from "./common.ts";
import { formatTable } from "../util/table.ts";
import {
  evaluateCheckpointTwoTurn,
  evaluateOptions,
  type TwoTurnReport,
} from "../training/evaluate.ts";
import { existingModelDir, heldOut, resolveModelDir } from "../training/setup.ts";
import { initBackend } from "../model/backend.ts";
import { loadCheckpoint } from "../model/checkpoint.ts";
import { type EvalProblem, evaluatePolicy } from "../algorithms/mgrpo/evaluate.ts";
import { passAtK } from "../algorithms/mgrpo/pass_at_k.ts";
import { loadBenchmark } from "../data/benchmarks.ts";
import { type AnswerChecker, integerChecker } from "../verifiers/reward.ts";
import type { TrainConfig } from "../algorithms/builtins.ts";
import { EVAL_SPLITS, type EvalSplit } from "../config/schema.ts";
import { buildChecker } from "../training/rewards.ts";
import type { TwoTurnMetrics } from "../algorithms/mgrpo/mod.ts";
import { InputError } from "../util/errors.ts";

const FLAGS = {
  checkpoint: {
    type: "string",
    placeholder: "DIR",
    multiple: true,
    help: "Checkpoint folder to evaluate (repeatable; default: model.init of the config)",
  },
  samples: { type: "string", placeholder: "N", help: "Sample completions to print (default 3)" },
  dataset: {
    type: "string",
    placeholder: "NAME|FILE",
    help:
      "Benchmark instead of the synthetic task: gsm8k, math500, minerva, olympiadbench or a JSONL file",
  },
  n: {
    type: "string",
    placeholder: "N",
    help: "Completions per problem (default 1; n > 1 samples at eval.temperature)",
  },
  k: {
    type: "string",
    placeholder: "K,...",
    help: "pass@k values to report, each <= n (default 1 and n)",
  },
  limit: { type: "string", placeholder: "N", help: "Only the first N problems" },
  out: {
    type: "string",
    placeholder: "DIR",
    help:
      "Where a benchmark run writes problems.jsonl and summary.json (default runs/eval-<dataset>-<date>)",
  },
  "two-turn": {
    type: "boolean",
    help:
      "Solve, then one guided correction by the same policy (mgrpo section's Layer-2 query): Acc@t1, Acc@t2, the Δ's and McNemar's p; with --rounds 2 also the intrinsic baseline's second round",
  },
  rounds: {
    type: "string",
    placeholder: "1|2",
    help:
      "--two-turn: correction rounds (default 2: the second gives the paper's intrinsic columns)",
  },
  split: {
    type: "string",
    placeholder: EVAL_SPLITS.join("|"),
    help:
      "Synthetic task: the held-out set (task.heldout_size problems, default), the dev split drawn like training problems, or the unseen dev split (task.dev_unseen_size problems kept out of training; for design choices)",
  },
} as const;

const HELP = formatHelp({ ...COMMON_FLAGS, ...FLAGS }, {
  usage:
    "deno task eval [--config FILE] [--checkpoint DIR]... [--dataset NAME|FILE] [--two-turn] [--set key=value]...",
  summary:
    "Accuracy of checkpoints on the config's synthetic task or on a math benchmark (eval section settings).",
});

async function main(argv: string[]): Promise<number> {
  const args = parseCommonArgs(argv, FLAGS);
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const config = loadConfig(args.config, { overrides: args.overrides });
  const given = args.values.checkpoint as string[] | undefined;
  // Checked up front (a missing folder is bad input); a folder is shown as it was given.
  const dirs = given?.map((d) => {
    const dir = existingModelDir(d, "--checkpoint");
    try {
      Deno.statSync(d);
      return d;
    } catch {
      return dir; // a Hugging Face id, or a path relative to the repository root
    }
  }) ?? [resolveModelDir(config.model.init)];
  const nSamples = Number(args.values.samples ?? 3);
  const positive = (name: "n" | "limit", dflt: number) => {
    const v = args.values[name];
    const x = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(x) || x < 1) {
      throw new ArgsError(
        `Invalid value for --${name}: must be a positive integer: current value is "${v}"`,
      );
    }
    return x;
  };
  const n = positive("n", 1);
  const ks = args.values.k === undefined
    ? [...new Set([1, n])]
    : String(args.values.k).split(",").map((x) => Number(x.trim()));
  for (const k of ks) {
    if (!Number.isInteger(k) || k < 1 || k > n) {
      throw new ArgsError(
        `Invalid value for --k: each k must be an integer in [1, n=${n}]: current value is "${args.values.k}"`,
      );
    }
  }
  const dataset = args.values.dataset as string | undefined;
  let problems: EvalProblem[];
  let checker: AnswerChecker = integerChecker;
  let closeChecker = () => Promise.resolve();
  if (dataset !== undefined) {
    problems = await loadBenchmark(dataset).catch((cause) => {
      // A missing file or a bad line is the user's input: exit 2, same message.
      throw new InputError((cause as Error).message, { cause });
    });
    if (args.values.limit !== undefined) problems = problems.slice(0, positive("limit", 1));
    ({ checker, close: closeChecker } = buildChecker({ ...config.reward, checker: "math" }));
  } else {
    const split = String(args.values.split ?? "heldout") as EvalSplit;
    if (!EVAL_SPLITS.includes(split)) throw choiceError("split", EVAL_SPLITS, split);
    if (split === "dev_unseen" && config.task.dev_unseen_size === 0) {
      throw new ArgsError(
        "Invalid value for --split: dev_unseen needs task.dev_unseen_size > 0 (--set task.dev_unseen_size=N, the value the checkpoint was trained and warm-started with): current value is 0",
      );
    }
    problems = heldOut(config.task, split).problems;
    if (args.values.limit !== undefined) problems = problems.slice(0, positive("limit", 1));
  }
  const roundsArg = String(args.values.rounds ?? "2");
  if (roundsArg !== "1" && roundsArg !== "2") {
    throw new ArgsError(
      `Invalid value for --rounds: must be 1 or 2: current value is "${roundsArg}"`,
    );
  }
  const rounds = Number(roundsArg) as 1 | 2;
  await initBackend(config.model.backend, { wasmThreads: config.model.wasm_threads });
  try {
    if (dataset !== undefined) {
      return await evaluateDataset(dataset, dirs, problems, config, {
        n,
        ks,
        checker,
        out: args.values.out as string | undefined,
        twoTurn: args.values["two-turn"] === true,
        rounds,
        nSamples,
      });
    }
  } finally {
    await closeChecker();
  }
  const rows: (string | number)[][] = [];
  if (args.values["two-turn"] === true) {
    const intrinsicRows: (string | number)[][] = [];
    const jsonLines: string[] = [];
    for (const dir of dirs) {
      const report = await evaluateCheckpointTwoTurn(dir, config, problems, { rounds });
      noteLongPrompts(dir, report.result.first);
      rows.push(correctionRow(dir, report));
      if (report.intrinsic) intrinsicRows.push(intrinsicRow(dir, report.intrinsic));
      for (const c of report.result.completions.slice(0, nSamples)) console.log(JSON.stringify(c));
      const m = report.correction;
      jsonLines.push(JSON.stringify({
        acc_t1: m.acc_t1,
        acc_t2: m.acc_t2,
        delta_i_to_c: m.delta_i_to_c,
        delta_c_to_i: m.delta_c_to_i,
        mcnemar_p: m.mcnemar_p,
        n: m.n,
      }));
    }
    console.log(
      `\nOne guided correction by the same policy (${problems.length} problems, ${
        config.eval.greedy ? "greedy" : `temperature ${config.eval.temperature}`
      }, guide position ${config.mgrpo.guide_position}; t2 = the answer after the correction):`,
    );
    console.log(formatTable(CORRECTION_TABLE, rows));
    if (intrinsicRows.length) {
      console.log(
        "\nIntrinsic self-correction, the paper's baseline columns (t1' = after the first correction prompt, t2 = after the second):",
      );
      console.log(formatTable(["checkpoint", ...TWO_TURN_COLUMNS, "McNemar p"], intrinsicRows));
    }
    for (const line of jsonLines) console.log(line);
    return 0;
  }
  for (const dir of dirs) {
    const { model, tokenizer } = await loadCheckpoint(dir, { trainable: false });
    const t0 = performance.now();
    const res = await evaluatePolicy(model, tokenizer, problems, evaluateOptions(config));
    noteLongPrompts(dir, res);
    rows.push([
      dir,
      (100 * res.accuracy).toFixed(1),
      (100 * res.formatRate).toFixed(1),
      res.meanLength.toFixed(1),
      ((performance.now() - t0) / 1000).toFixed(1),
    ]);
    for (const s of res.samples.slice(0, nSamples)) {
      const p = problems.find((q) => q.id === s.id)!;
      console.log(
        `${p.question}\n  -> ${JSON.stringify(s.completion)} (gold ${p.answer}, ${s.reason})`,
      );
    }
    model.dispose();
  }
  console.log(
    `\nHeld-out evaluation (${problems.length} problems, ${
      config.eval.greedy ? "greedy" : `temperature ${config.eval.temperature}`
    }):`,
  );
  console.log(
    formatTable(["checkpoint", "accuracy %", "format %", "mean tokens", "seconds"], rows),
  );
  return 0;
}

/**
 * Says on stderr how many first-answer prompts `prompts.on_long_prompt` rejected (scored
 * wrong) or truncated, and how many rows had less room than `eval.max_new_tokens`, when any.
 */
function noteLongPrompts(
  dir: string,
  counts: { unpromptable: number; truncated: number; shortBudget: number },
): void {
  const parts = [
    counts.unpromptable && `${counts.unpromptable} not given to the policy (scored wrong)`,
    counts.truncated && `${counts.truncated} cut to prompts.max_prompt_tokens`,
    counts.shortBudget && `${counts.shortBudget} with less room than eval.max_new_tokens`,
  ].filter(Boolean);
  if (parts.length) console.error(`${dir}: first-answer prompts: ${parts.join(", ")}`);
}

/** Columns of the one-correction table. */
const CORRECTION_TABLE = [
  "checkpoint",
  ...CORRECTION_COLUMNS,
  "n",
  "overflow",
];

/** A row of the one-correction table. */
function correctionRow(dir: string, report: TwoTurnReport): (string | number)[] {
  return [dir, ...correctionCells(report.correction), report.correction.n, report.result.overflow];
}

/** A row of the intrinsic table: Table 2's columns in %, McNemar's p of t1' vs t2. */
function intrinsicRow(dir: string, m: TwoTurnMetrics): (string | number)[] {
  return [dir, ...intrinsicCells(m)];
}

interface DatasetOptions {
  n: number;
  ks: number[];
  checker: AnswerChecker;
  out: string | undefined;
  twoTurn: boolean;
  rounds: 1 | 2;
  nSamples: number;
}

/** Scores checkpoints on a benchmark and writes problems.jsonl and summary.json per checkpoint. */
async function evaluateDataset(
  dataset: string,
  dirs: string[],
  problems: EvalProblem[],
  config: TrainConfig,
  options: DatasetOptions,
): Promise<number> {
  const name = basename(dataset).replace(/\.jsonl$/, "");
  const root = options.out ?? `runs/eval-${name}-${new Date().toISOString().slice(0, 10)}`;
  const rows: (string | number)[][] = [];
  for (const [index, dir] of dirs.entries()) {
    const out = dirs.length === 1 ? root : `${root}/${index}-${basename(dir)}`;
    await Deno.mkdir(out, { recursive: true });
    const t0 = performance.now();
    const lines: string[] = [];
    let summary: Record<string, unknown>;
    if (options.twoTurn) {
      const report = await evaluateCheckpointTwoTurn(dir, config, problems, {
        checker: options.checker,
        rounds: options.rounds,
      });
      problems.forEach((p, i) => {
        lines.push(JSON.stringify({
          id: p.id,
          answer: p.answer,
          completions: report.result.completions[i],
          correct: report.result.verdicts[i],
        }));
      });
      rows.push(correctionRow(dir, report));
      summary = {
        correction: report.correction,
        ...(report.intrinsic ? { intrinsic: report.intrinsic } : {}),
        overflow: report.result.overflow,
        truncated: report.result.truncated,
        short_budget: report.result.shortBudget,
        first: {
          unpromptable: report.result.first.unpromptable,
          truncated: report.result.first.truncated,
          short_budget: report.result.first.shortBudget,
        },
      };
      noteLongPrompts(dir, report.result.first);
    } else {
      const { model, tokenizer } = await loadCheckpoint(dir, { trainable: false });
      try {
        const res = await evaluatePolicy(model, tokenizer, problems, {
          ...evaluateOptions(config),
          greedy: config.eval.greedy && options.n === 1,
          n: options.n,
          checker: options.checker,
        });
        noteLongPrompts(dir, res);
        const passAt: Record<string, number> = {};
        for (const k of options.ks) passAt[`pass@${k}`] = 0;
        problems.forEach((p, i) => {
          const mine = res.samples.slice(i * options.n, (i + 1) * options.n);
          const c = mine.filter((s) => s.correct).length;
          const line: Record<string, unknown> = {
            id: p.id,
            answer: p.answer,
            completions: mine.map((s) => s.completion),
            parsed: mine.map((s) => s.parsed),
            correct: mine.map((s) => s.correct),
            reasons: mine.map((s) => s.reason),
          };
          for (const k of options.ks) {
            const v = passAtK(options.n, c, k);
            line[`pass@${k}`] = v;
            passAt[`pass@${k}`]! += v / problems.length;
          }
          lines.push(JSON.stringify(line));
        });
        summary = {
          mean_accuracy: res.accuracy,
          ...passAt,
          format_rate: res.formatRate,
          mean_length: res.meanLength,
          unpromptable: res.unpromptable,
          truncated: res.truncated,
          short_budget: res.shortBudget,
        };
        rows.push([
          dir,
          pct(res.accuracy),
          ...options.ks.map((k) => pct(passAt[`pass@${k}`])),
          res.unpromptable,
        ]);
        for (const s of res.samples.slice(0, options.nSamples)) {
          console.log(`${s.id} -> ${JSON.stringify(s.completion)} (${s.reason})`);
        }
      } finally {
        model.dispose();
      }
    }
    await Deno.writeTextFile(`${out}/problems.jsonl`, lines.join("\n") + "\n");
    const seconds = (performance.now() - t0) / 1000;
    await Deno.writeTextFile(
      `${out}/summary.json`,
      JSON.stringify(
        {
          dataset,
          checkpoint: dir,
          problems: problems.length,
          n: options.n,
          greedy: config.eval.greedy && options.n === 1,
          two_turn: options.twoTurn,
          ...summary,
          seconds,
        },
        null,
        2,
      ) + "\n",
    );
    console.log(`wrote ${out}/problems.jsonl and ${out}/summary.json (${seconds.toFixed(1)} s)`);
  }
  console.log(
    `\n${dataset} (${problems.length} problems, ${options.n} completion(s) each, math verifier):`,
  );
  console.log(formatTable(
    options.twoTurn
      ? CORRECTION_TABLE
      : ["checkpoint", "mean acc %", ...options.ks.map((k) => `pass@${k} %`), "unpromptable"],
    rows,
  ));
  return 0;
}

if (import.meta.main) await runMain(main);
