/**
 * The report of `deno task compare`: the success criterion (fixed before the runs), every run,
 * mean ± std over seeds, the paper's Table 2 columns for MGRPO, the tests (McNemar's exact
 * test per run, an exact permutation test between arms over seeds), and the plot of held-out
 * accuracy during training (`cli/compare_plot.ts`) embedded from `accuracy.png`. Also reads a
 * report folder's `results.json` back, for `deno task compare --report-only`.
 *
 * @module
 */
import { z } from "zod";
import { InputError } from "../util/errors.ts";
import {
  type CorrectionMetrics,
  mcnemarExactP as mcnemar,
  meanStd,
  permutationTest,
} from "../algorithms/mgrpo/self_correction.ts";
import type { TwoTurnMetrics } from "../algorithms/mgrpo/mod.ts";
import {
  CORRECTION_COLUMNS,
  correctionCells,
  intrinsicCells,
  pct,
  pValue,
  TWO_TURN_COLUMNS,
} from "./common.ts";

/** One finished run of an arm. */
export interface CompareRun {
  arm: string;
  seed: number;
  steps: number;
  sampledTokens: number;
  seconds: number;
  /** Held-out (full set) first answer and one guided correction of the final policy. */
  heldout: CorrectionMetrics;
  /** Per-problem verdicts on the full held-out set: first answer, after one correction. */
  t1: boolean[];
  t2: boolean[];
  /**
   * Held-out accuracy during training (train's own evaluation, its `eval/accuracy` on the first
   * `task.eval_size` held-out problems): `[step, sampled tokens, accuracy]`, step 0 the warm
   * start.
   */
  curve: [number, number, number][];
  /**
   * Where the run ran, as its `environment.jsonl` recorded it (versions of Deno, tfjs and the
   * project, each actor's backend, the wasm threads, the CPU); absent for older runs.
   */
  environment?: Record<string, unknown>;
}

/**
 * The distinct environments of the runs, one line each (`Deno 2.9.6, tfjs 4.22.0, project
 * abc123, backend wasm (2 threads), Intel Xeon …, 2 cores: runs mgrpo-seed0, …`).
 */
export function environmentLines(runs: readonly CompareRun[]): string[] {
  const groups = new Map<string, string[]>();
  for (const r of runs) {
    const e = r.environment;
    const key = e === undefined ? "not recorded" : [
      `Deno ${e.deno}`,
      `tfjs ${e.tfjs}`,
      `project ${e.project ?? "unknown"}`,
      `learner ${e.learner_backend}, sampler ${e.sampler_backend}` +
      (e.backend === "wasm" ? ` (${e.wasm_threads} wasm threads)` : ""),
      `${e.cpu}, ${e.cores} cores`,
    ].join(", ");
    groups.set(key, [...groups.get(key) ?? [], `${r.arm}-seed${r.seed}`]);
  }
  return [...groups].map(([key, names]) => `${key}: ${names.join(", ")}`);
}

/** What the report is built from. */
export interface CompareData {
  date: string;
  command: string;
  seeds: number[];
  arms: { name: string; label: string }[];
  runs: CompareRun[];
  /** The warm start: one correction, and the intrinsic two-round columns. */
  warmStart: { correction: CorrectionMetrics; intrinsic: TwoTurnMetrics };
  heldoutSize: number;
  evalSubset: number;
  /** How the held-out answers were decoded: "greedy" (absent in older reports) or "T = 0.7". */
  decoding?: string;
  machine: string;
}

const finite = z.number().refine(Number.isFinite, "Must be a finite number");
const CORRECTION_SCHEMA = z.object({
  acc_t1: finite,
  acc_t2: finite,
  delta_t1_t2: finite,
  delta_i_to_c: finite,
  delta_c_to_i: finite,
  mcnemar_p: finite,
  n: z.number().int().min(1),
});
const COMPARE_DATA_SCHEMA = z.object({
  date: z.string(),
  command: z.string(),
  seeds: z.array(z.number().int()),
  arms: z.array(z.object({ name: z.string(), label: z.string() })),
  runs: z.array(z.object({
    arm: z.string(),
    seed: z.number().int(),
    steps: z.number().int(),
    sampledTokens: finite,
    seconds: finite,
    heldout: CORRECTION_SCHEMA,
    t1: z.array(z.boolean()),
    t2: z.array(z.boolean()),
    curve: z.array(z.tuple([finite, finite, finite])),
    environment: z.record(z.string(), z.unknown()).optional(),
  })),
  warmStart: z.object({
    correction: CORRECTION_SCHEMA,
    intrinsic: z.object({
      acc_t1: finite,
      acc_t1_prime: finite,
      acc_t2: finite.optional(),
      delta_t1_prime_t2: finite.optional(),
      delta_i_to_c: finite.optional(),
      delta_c_to_i: finite.optional(),
      mcnemar_p: finite.optional(),
    }),
  }),
  heldoutSize: z.number().int(),
  evalSubset: z.number().int(),
  decoding: z.string().optional(),
  machine: z.string(),
});

/**
 * Reads back the `results.json` that `deno task compare` wrote (its `verdict` is left out: the
 * report judges again).
 *
 * @throws {InputError} When the text is not JSON, a field is missing or of the wrong type
 * (named by its path, with its current value), or a run names an arm the file does not list.
 */
export function parseCompareData(text: string, path: string): CompareData {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new InputError(`Cannot read "${path}": not JSON: ${(cause as Error).message}`, {
      cause,
    });
  }
  const parsed = COMPARE_DATA_SCHEMA.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const at = issue.path.reduce<unknown>(
      (v, key) =>
        v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[key] : undefined,
      value,
    );
    throw new InputError(
      `Cannot read "${path}": field "${issue.path.join(".")}" ${
        issue.message.replace(/^./, (c) => c.toLowerCase())
      }: current value is ${JSON.stringify(at) ?? "undefined"}`,
    );
  }
  const names = parsed.data.arms.map((a) => a.name);
  parsed.data.runs.forEach((r, i) => {
    if (!names.includes(r.arm)) {
      throw new InputError(
        `Cannot read "${path}": field "runs.${i}.arm" must be one of the arms ` +
          `(${names.join(", ")}): current value is "${r.arm}"`,
      );
    }
  });
  // zod types an optional field as `T | undefined`; JSON.parse never yields undefined.
  return parsed.data as CompareData;
}

/** The success criterion, written before any run and printed unchanged in every report. */
export const CRITERION: string = [
  "Fixed before the runs (and not changed after them):",
  "1. Self-correction: on every seed (at least 5), one guided correction by the trained MGRPO",
  "   policy beats its own Acc@t1 on the held-out set (>= 1,000 problems) by >= 3 points, with",
  "   Δc→i <= 1 point and McNemar's exact p < 0.01.",
  "2. Against GRPO: MGRPO's accuracy after one correction (Acc@t2) beats the Acc@t1 of GRPO",
  "   from the same warm start at equal optimizer steps by >= 3 points (mean over seeds), with",
  "   an exact two-sided permutation test over seeds giving p < 0.05.",
  "3. The warm start's intrinsic self-correction (two correction rounds, no RL) is reported.",
].join("\n");

const pm = (xs: number[], scale = 100, digits = 1) => {
  const { mean, std } = meanStd(xs);
  return `${(mean * scale).toFixed(digits)} ± ${(std * scale).toFixed(digits)}`;
};
const row = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
const table = (header: string[], rows: (string | number)[][]) =>
  [row(header), row(header.map(() => "---")), ...rows.map(row)].join("\n");

/** Verdicts of the criterion, for the report and the final JSON line. */
export interface CriterionResult {
  selfCorrection: { seed: number; pass: boolean }[] | null;
  selfCorrectionPass: boolean | null;
  vsGrpo: { diff: number; p: number; pass: boolean } | null;
}

/** Evaluates the criterion on the runs (null where an arm is missing). */
export function judge(data: CompareData): CriterionResult {
  const mgrpo = data.runs.filter((r) => r.arm === "mgrpo");
  const grpo = data.runs.filter((r) => r.arm === "grpo");
  const selfCorrection = mgrpo.length
    ? mgrpo.map((r) => ({
      seed: r.seed,
      pass: r.heldout.delta_t1_t2 >= 0.03 - 1e-9 && r.heldout.delta_c_to_i <= 0.01 + 1e-9 &&
        r.heldout.mcnemar_p < 0.01 && r.heldout.n >= 1000,
    }))
    : null;
  let vsGrpo: CriterionResult["vsGrpo"] = null;
  if (mgrpo.length && grpo.length) {
    const a = mgrpo.map((r) => r.heldout.acc_t2), b = grpo.map((r) => r.heldout.acc_t1);
    const diff = meanStd(a).mean - meanStd(b).mean;
    const p = permutationTest(a, b);
    vsGrpo = { diff, p, pass: diff >= 0.03 - 1e-9 && p < 0.05 };
  }
  return {
    selfCorrection,
    selfCorrectionPass: selfCorrection
      ? selfCorrection.length >= 5 && selfCorrection.every((s) => s.pass)
      : null,
    vsGrpo,
  };
}

/** The report as Markdown. */
export function reportMarkdown(data: CompareData, verdict: CriterionResult): string {
  const byArm = (arm: string) => data.runs.filter((r) => r.arm === arm);
  const ws = data.warmStart;
  const lines: string[] = [
    `# ${data.arms.map((a) => a.label).join(" vs ")} on the embedded task (${data.date})`,
    "",
    `Command: \`${data.command}\`. Machine: ${data.machine}. Seeds ${data.seeds.join(", ")}.`,
    `Held-out set: ${data.heldoutSize} problems never drawn for training, ${
      isGreedy(data.decoding)
        ? "greedy decoding"
        : `sampled at ${data.decoding} (one sample per problem and turn, seeded)`
    }; the`,
    `curves use train's own evaluation on the first ${data.evalSubset} of them. Acc@t1 is the`,
    "final policy's first answer; Acc@t2 its answer after one guided correction by the same",
    "policy (the embedded config's Layer-2 query); the Δ's are between t1 and t2, in points of",
    "all problems; p is McNemar's exact two-sided test on the per-problem verdicts",
    "(`docs/self-correction.md`).",
    "",
    "Where the runs ran (each run's `environment.jsonl`):",
    "",
    ...environmentLines(data.runs).map((l) => `- ${l}`),
    "",
    "## Criterion",
    "",
    "```",
    CRITERION,
    "```",
    "",
    "## Result",
    "",
  ];
  if (verdict.selfCorrection) {
    lines.push(
      `- Criterion 1 (self-correction on every seed): **${
        verdict.selfCorrectionPass ? "met" : "not met"
      }** (${
        verdict.selfCorrection.map((s) => `seed ${s.seed} ${s.pass ? "pass" : "fail"}`).join(", ")
      }${
        verdict.selfCorrection.length < 5 ? `; only ${verdict.selfCorrection.length} seeds` : ""
      }).`,
    );
  }
  if (verdict.vsGrpo) {
    lines.push(
      `- Criterion 2 (MGRPO Acc@t2 vs GRPO Acc@t1 at equal steps): **${
        verdict.vsGrpo.pass ? "met" : "not met"
      }**: difference ${
        (100 * verdict.vsGrpo.diff).toFixed(1)
      } points, exact permutation test p = ${pValue(verdict.vsGrpo.p)}.`,
    );
  }
  lines.push(
    `- Criterion 3: the warm start's intrinsic self-correction is in the last table.`,
    "",
    "## Every run",
    "",
    table(
      [
        "arm",
        "seed",
        "steps",
        "sampled tokens",
        "wall s",
        ...CORRECTION_COLUMNS,
      ],
      data.runs.map((r) => [
        r.arm,
        r.seed,
        r.steps,
        r.sampledTokens,
        r.seconds.toFixed(0),
        ...correctionCells(r.heldout),
      ]),
    ),
    "",
    "## Mean ± std over seeds",
    "",
    table(
      [
        "arm",
        "runs",
        "Acc@t1 %",
        "Acc@t2 %",
        "Δ(t1,t2)",
        "Δi→c",
        "Δc→i",
        "sampled tokens",
        "steps",
      ],
      data.arms.filter((a) => byArm(a.name).length).map((a) => {
        const rs = byArm(a.name);
        return [
          a.label,
          rs.length,
          pm(rs.map((r) => r.heldout.acc_t1)),
          pm(rs.map((r) => r.heldout.acc_t2)),
          pm(rs.map((r) => r.heldout.delta_t1_t2)),
          pm(rs.map((r) => r.heldout.delta_i_to_c)),
          pm(rs.map((r) => r.heldout.delta_c_to_i)),
          pm(rs.map((r) => r.sampledTokens), 1, 0),
          pm(rs.map((r) => r.steps), 1, 0),
        ];
      }),
    ),
    "",
  );
  const arms = data.arms.map((a) => a.name);
  const tests: (string | number)[][] = [];
  const add = (what: string, a: number[], b: number[]) => {
    if (a.length && b.length) {
      tests.push([
        what,
        (100 * (meanStd(a).mean - meanStd(b).mean)).toFixed(1),
        pValue(permutationTest(a, b)),
      ]);
    }
  };
  const accOf = (arm: string, key: "acc_t1" | "acc_t2") => byArm(arm).map((r) => r.heldout[key]);
  if (arms.includes("mgrpo")) {
    for (const other of arms.filter((a) => a !== "mgrpo")) {
      add(`MGRPO Acc@t2 − ${other} Acc@t1`, accOf("mgrpo", "acc_t2"), accOf(other, "acc_t1"));
      add(`MGRPO Acc@t1 − ${other} Acc@t1`, accOf("mgrpo", "acc_t1"), accOf(other, "acc_t1"));
    }
  }
  if (tests.length) {
    lines.push(
      "## Between arms (exact two-sided permutation test over seeds)",
      "",
      table(["comparison", "difference of means (points)", "p"], tests),
      "",
    );
  }
  // The paper's Table 2 for MGRPO: t1 and t1' from the policy before Layer-2 training (the
  // GRPO run of the same seed at equal steps: Layer 1 alone), t2 after MGRPO.
  const paired = byArm("mgrpo").flatMap((m) => {
    const g = byArm("grpo").find((r) => r.seed === m.seed);
    return g ? [{ seed: m.seed, g, m }] : [];
  });
  if (paired.length) {
    const rows = paired.map(({ seed, g, m }) => {
      const n = m.t2.length;
      let iToC = 0, cToI = 0;
      for (let i = 0; i < n; i++) {
        if (!g.t2[i] && m.t2[i]) iToC++;
        if (g.t2[i] && !m.t2[i]) cToI++;
      }
      return {
        seed,
        t1: g.heldout.acc_t1,
        t1p: g.heldout.acc_t2,
        t2: m.heldout.acc_t2,
        iToC: iToC / n,
        cToI: cToI / n,
        b: cToI,
        c: iToC,
      };
    });
    lines.push(
      "## The paper's Table 2 columns for MGRPO",
      "",
      "Acc@t1 and Acc@t1' come from the policy before Layer-2 training: the GRPO run of the same",
      "seed at equal steps (Layer 1 alone, as the paper's MGRPO Acc@t1 equals its GRPO's), its",
      "first answer and one guided correction; Acc@t2 is one guided correction of the MGRPO policy.",
      "The Δ's compare t1' and t2 problem by problem.",
      "",
      table(
        ["seed", "Acc@t1 %", "Acc@t1' %", "Acc@t2 %", "Δ(t1',t2)", "Δi→c", "Δc→i", "McNemar p"],
        rows.map((r) => [
          r.seed,
          pct(r.t1),
          pct(r.t1p),
          pct(r.t2),
          pct(r.t2 - r.t1p),
          pct(r.iToC),
          pct(r.cToI),
          pValue(mcnemar(r.b, r.c)),
        ]),
      ),
      "",
    );
  }
  lines.push(
    "## Warm start: intrinsic self-correction (the paper's baseline, no RL)",
    "",
    table(
      [
        ...TWO_TURN_COLUMNS,
        "McNemar p (t1' vs t2)",
        "one correction: Δ(t1,t2)",
        "p (t1 vs t1')",
      ],
      [[
        ...intrinsicCells(ws.intrinsic),
        pct(ws.correction.delta_t1_t2),
        pValue(ws.correction.mcnemar_p),
      ]],
    ),
    "",
  );
  lines.push(...plotSection(data.evalSubset, data.decoding));
  return lines.join("\n");
}

/**
 * Whether a report's held-out answers were decoded greedily: `decoding` is `"greedy"`, or absent
 * (reports written before it was recorded were all greedy), else how they were sampled.
 */
export function isGreedy(decoding: string | undefined): boolean {
  return decoding === undefined || decoding === "greedy";
}

/**
 * The report's plot section: `accuracy.png` embedded, `accuracy.svg` linked, and what the plot
 * shows.
 */
export function plotSection(evalSubset: number, decoding?: string): string[] {
  const first = isGreedy(decoding) ? "greedy first answer" : `first answer at ${decoding}`;
  return [
    "## Held-out accuracy during training",
    "",
    "![Held-out accuracy during training against optimizer steps and against sampled tokens: " +
    "per arm the mean over seeds as a line, the min–max over seeds as a band](accuracy.png)",
    "",
    `Train's own evaluation (\`eval/accuracy\`: ${first} on the first ${evalSubset}`,
    "held-out problems) every `eval.every` steps from the warm start at step 0; per arm the mean",
    "over seeds as a line and the min–max over seeds as a band, against optimizer steps and",
    "against sampled completion tokens. A point's step and tokens are means over seeds (runs at",
    "equal tokens stop at slightly different steps: their last point is each run's final",
    "evaluation). The same plot as SVG: [accuracy.svg](accuracy.svg).",
    "",
  ];
}
