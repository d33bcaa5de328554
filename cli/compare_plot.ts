/**
 * The plot of `deno task compare`: held-out accuracy during training (train's own evaluation,
 * the `eval/accuracy` of each run's `metrics.jsonl`, the warm start at step 0), per arm the mean
 * over seeds as a line and the min–max over seeds as a band, in two panels: against optimizer
 * steps and against sampled tokens. Built once as a drawing list (`util/drawing.ts`) and written
 * both as SVG and as PNG.
 *
 * @module
 */
import {
  type Drawing,
  drawingToPng,
  drawingToSvg,
  type Point,
  type Shape,
} from "../util/drawing.ts";
import { textWidth } from "../util/canvas.ts";
import { InputError } from "../util/errors.ts";
import { meanStd } from "../algorithms/mgrpo/self_correction.ts";
import { isGreedy } from "./compare_report.ts";

/** One evaluation during training: `[optimizer step, sampled tokens, held-out accuracy]`. */
export type CurvePoint = readonly [number, number, number];

/** What the chart is drawn from; `CompareData` is one. */
export interface AccuracyChartInput {
  /** The arms in legend order, each with its label. */
  arms: readonly { name: string; label: string }[];
  /** Every run: its arm, seed and evaluations. */
  runs: readonly { arm: string; seed: number; curve: readonly CurvePoint[] }[];
  /** How many held-out problems train's own evaluation uses (for the subtitle). */
  evalSubset: number;
  /** How those answers were decoded, for the subtitle: "greedy" (the default) or "T = 0.7". */
  decoding?: string;
}

/** One aggregated point of an arm: x's are means over seeds; accuracy mean, min and max. */
export interface ArmPoint {
  step: number;
  tokens: number;
  mean: number;
  min: number;
  max: number;
}

/** The curve of one arm over its seeds. */
export interface ArmCurve {
  name: string;
  label: string;
  color: string;
  /** How many runs (seeds) have evaluations. */
  seeds: number;
  points: ArmPoint[];
}

/** Line colours, one per arm in the order of the input's `arms`. */
export const ARM_COLORS: readonly string[] = [
  "#d62728",
  "#1f77b4",
  "#2ca02c",
  "#9467bd",
  "#ff7f0e",
];

/**
 * Aggregates each arm's runs point by point. A run's evaluations are taken once per step (the
 * last line for a step wins: a run that stops on an `eval.every` step evaluates it twice).
 * The points are the steps every run of the arm evaluated, and, where the runs stop at
 * different steps (equal-token runs), one more: each run's final evaluation, placed at the
 * mean final step and mean final tokens. Arms without evaluations are left out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { armCurves } from "./compare_plot.ts";
 *
 * const [arm] = armCurves({
 *   arms: [{ name: "a", label: "A" }],
 *   runs: [
 *     { arm: "a", seed: 0, curve: [[0, 0, 0.4], [10, 1000, 0.5]] },
 *     { arm: "a", seed: 1, curve: [[0, 0, 0.4], [10, 3000, 0.6]] },
 *   ],
 *   evalSubset: 200,
 * });
 * assert.equal(arm!.seeds, 2);
 * assert.deepEqual(arm!.points[1], { step: 10, tokens: 2000, mean: 0.55, min: 0.5, max: 0.6 });
 * ```
 */
export function armCurves(input: AccuracyChartInput): ArmCurve[] {
  return input.arms.flatMap((arm, k) => {
    const curves = input.runs.filter((r) => r.arm === arm.name).map((r) => {
      const byStep = new Map<number, CurvePoint>();
      for (const p of r.curve) byStep.set(p[0], p);
      return [...byStep.values()].sort((a, b) => a[0] - b[0]);
    }).filter((c) => c.length > 0);
    if (curves.length === 0) return [];
    const aggregate = (at: CurvePoint[]): ArmPoint => {
      const accs = at.map((p) => p[2]);
      return {
        step: meanStd(at.map((p) => p[0])).mean,
        tokens: meanStd(at.map((p) => p[1])).mean,
        mean: meanStd(accs).mean,
        min: Math.min(...accs),
        max: Math.max(...accs),
      };
    };
    const common = curves[0]!.map((p) => p[0]).filter((s) =>
      curves.every((c) => c.some((p) => p[0] === s))
    );
    const points = common.map((s) => aggregate(curves.map((c) => c.find((p) => p[0] === s)!)));
    const finals = curves.map((c) => c.at(-1)!);
    if (finals.some((p) => p[0] !== common.at(-1))) points.push(aggregate(finals));
    return [{
      name: arm.name,
      label: arm.label,
      color: ARM_COLORS[k % ARM_COLORS.length]!,
      seeds: curves.length,
      points,
    }];
  });
}

/** Ticks of an axis: its bounds (multiples of the step) and the tick values between them. */
export interface Ticks {
  lo: number;
  hi: number;
  step: number;
  values: number[];
}

/**
 * About `target` ticks over [min, max] at a step of 1, 2 or 5 times a power of ten (d3's rule),
 * the axis widened to multiples of the step; `integer` keeps the step at least 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { niceTicks } from "./compare_plot.ts";
 *
 * assert.deepEqual(niceTicks(0, 77, { integer: true }).values, [0, 20, 40, 60, 80]);
 * assert.deepEqual(niceTicks(0, 2, { integer: true }).values, [0, 1, 2]);
 * assert.deepEqual(niceTicks(41.2, 55.9), { lo: 40, hi: 56, step: 2, values: [40, 42, 44, 46, 48, 50, 52, 54, 56] });
 * ```
 */
export function niceTicks(
  min: number,
  max: number,
  options: { target?: number; integer?: boolean } = {},
): Ticks {
  const target = options.target ?? 5;
  if (!(max > min)) [min, max] = [min - 1, max + 1];
  const raw = (max - min) / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const error = raw / power;
  let step = power *
    (error >= Math.sqrt(50) ? 10 : error >= Math.sqrt(10) ? 5 : error >= Math.SQRT2 ? 2 : 1);
  if (options.integer) step = Math.max(1, Math.round(step));
  // Multiples of the step, computed as integers times the step to avoid 0.30000000000000004.
  const i0 = Math.floor(min / step + 1e-9), i1 = Math.ceil(max / step - 1e-9);
  const values = Array.from({ length: i1 - i0 + 1 }, (_, i) => round((i0 + i) * step));
  return { lo: values[0]!, hi: values.at(-1)!, step, values };
}

function round(x: number): number {
  return Number(x.toPrecision(12));
}

/**
 * A token count for a tick label: `0`, `500`, `1.5k`, `20k`, `1M`, `2.5M`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatTokens } from "./compare_plot.ts";
 *
 * assert.deepEqual([0, 500, 1500, 20000, 1e6, 2.5e6].map(formatTokens), ["0", "500", "1.5k", "20k", "1M", "2.5M"]);
 * ```
 */
export function formatTokens(n: number): string {
  if (Math.abs(n) >= 1e6) return `${round(n / 1e6)}M`;
  if (Math.abs(n) >= 1e3) return `${round(n / 1e3)}k`;
  return String(round(n));
}

/** A tick value with as many decimals as its step needs (`45`, `2.5`). */
function formatTick(v: number, step: number): string {
  return v.toFixed(Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));
}

/** Where the chart's parts sit, in drawing units. */
export const CHART_LAYOUT = {
  width: 800,
  height: 410,
  /** Top and bottom of both plot areas. */
  top: 60,
  bottom: 330,
  /** Left edge of each panel's plot area (steps, tokens). */
  panels: [70, 480] as const,
  panelWidth: 300,
  /** Centre line of the legend row. */
  legendY: 392,
};

/**
 * The chart as a drawing list: a title and a caption, the panels (optimizer steps, sampled
 * tokens) with gridlines, tick labels and axis labels, per arm a min–max band, its mean line and
 * a marker at each point, and a legend with each arm's colour, label and number of seeds. Shape
 * ids: `band-steps-<arm>`, `mean-steps-<arm>`, `band-tokens-<arm>`, `mean-tokens-<arm>`,
 * `legend-<arm>`, `xtick-steps-<i>`, `xtick-tokens-<i>`, `ytick-<i>`.
 */
export function accuracyChart(input: AccuracyChartInput): Drawing {
  const L = CHART_LAYOUT;
  const arms = armCurves(input);
  const all = arms.flatMap((a) => a.points);
  const y = all.length
    ? niceTicks(Math.min(...all.map((p) => 100 * p.min)), Math.max(...all.map((p) => 100 * p.max)))
    : niceTicks(0, 100);
  const xs = {
    steps: niceTicks(0, Math.max(1, ...all.map((p) => p.step)), { integer: true }),
    tokens: niceTicks(0, Math.max(1, ...all.map((p) => p.tokens))),
  };
  const h = L.bottom - L.top;
  const Y = (fraction: number) => L.bottom - ((100 * fraction - y.lo) / (y.hi - y.lo)) * h;
  const title = "Held-out accuracy during training, by optimizer steps and by sampled tokens";
  const shapes: Shape[] = [
    {
      kind: "text",
      x: L.width / 2,
      y: 22,
      text: title,
      size: 15,
      color: "black",
      anchor: "middle",
    },
    {
      kind: "text",
      x: L.width / 2,
      y: 40,
      text: `line: mean over seeds; band: min–max over seeds; ${input.evalSubset} held-out ` +
        `problems, ${isGreedy(input.decoding) ? "greedy" : `sampled at ${input.decoding}`}, ` +
        "first answer",
      size: 10,
      color: "#444444",
      anchor: "middle",
    },
  ];
  const panels = [
    { key: "steps", x0: L.panels[0], label: "optimizer steps", ticks: xs.steps },
    {
      key: "tokens",
      x0: L.panels[1],
      label: "sampled completion tokens (both layers for MGRPO)",
      ticks: xs.tokens,
    },
  ] as const;
  for (const panel of panels) {
    const { x0, ticks } = panel;
    const x1 = x0 + L.panelWidth;
    const X = (v: number) => x0 + ((v - ticks.lo) / (ticks.hi - ticks.lo)) * L.panelWidth;
    y.values.forEach((v, i) => {
      const yy = L.bottom - ((v - y.lo) / (y.hi - y.lo)) * h;
      shapes.push(
        { kind: "line", points: [[x0, yy], [x1, yy]], stroke: "#e3e3e3", width: 1 },
        { kind: "line", points: [[x0 - 4, yy], [x0, yy]], stroke: "black", width: 1 },
        {
          kind: "text",
          ...(panel.key === "steps" ? { id: `ytick-${i}` } : {}),
          x: x0 - 7,
          y: yy + 3.5,
          text: formatTick(v, y.step),
          size: 10,
          color: "black",
          anchor: "end",
        },
      );
    });
    ticks.values.forEach((v, i) => {
      const xx = X(v);
      shapes.push(
        { kind: "line", points: [[xx, L.top], [xx, L.bottom]], stroke: "#e3e3e3", width: 1 },
        { kind: "line", points: [[xx, L.bottom], [xx, L.bottom + 4]], stroke: "black", width: 1 },
        {
          kind: "text",
          id: `xtick-${panel.key}-${i}`,
          x: xx,
          y: L.bottom + 16,
          text: panel.key === "steps" ? formatTick(v, ticks.step) : formatTokens(v),
          size: 10,
          color: "black",
          anchor: "middle",
        },
      );
    });
    shapes.push(
      {
        kind: "line",
        points: [[x0, L.top], [x0, L.bottom], [x1, L.bottom]],
        stroke: "black",
        width: 1,
      },
      {
        kind: "text",
        x: (x0 + x1) / 2,
        y: L.bottom + 34,
        text: panel.label,
        size: 10,
        color: "black",
        anchor: "middle",
      },
      {
        kind: "text",
        x: x0 - 32,
        y: (L.top + L.bottom) / 2,
        text: "held-out accuracy (%)",
        size: 10,
        color: "black",
        anchor: "middle",
        rotate: -90,
      },
    );
    const xOf = (p: ArmPoint) => X(panel.key === "steps" ? p.step : p.tokens);
    for (const a of arms) {
      shapes.push({
        kind: "polygon",
        id: `band-${panel.key}-${a.name}`,
        points: [
          ...a.points.map((p): Point => [xOf(p), Y(p.max)]),
          ...a.points.map((p): Point => [xOf(p), Y(p.min)]).reverse(),
        ],
        fill: a.color,
        opacity: 0.18,
      });
    }
    for (const a of arms) {
      shapes.push({
        kind: "line",
        id: `mean-${panel.key}-${a.name}`,
        points: a.points.map((p): Point => [xOf(p), Y(p.mean)]),
        stroke: a.color,
        width: 2,
      });
      for (const p of a.points) {
        shapes.push({
          kind: "rect",
          x: xOf(p) - 2.5,
          y: Y(p.mean) - 2.5,
          width: 5,
          height: 5,
          fill: a.color,
        });
      }
    }
  }
  // Legend: a swatch (band colour with the line through it) and "label (n seeds)" per arm.
  const entries = arms.map((a) => ({
    a,
    text: `${a.label}, ${a.seeds} ${a.seeds === 1 ? "seed" : "seeds"}`,
  }));
  const SWATCH = 24, GAP = 6, SPACING = 28;
  const widthOf = (t: string) => SWATCH + GAP + textWidth(t);
  let x = (L.width - entries.reduce((n, e) => n + widthOf(e.text), 0) -
    SPACING * Math.max(0, entries.length - 1)) / 2;
  for (const { a, text } of entries) {
    shapes.push(
      {
        kind: "rect",
        x,
        y: L.legendY - 6,
        width: SWATCH,
        height: 12,
        fill: a.color,
        opacity: 0.18,
      },
      {
        kind: "line",
        points: [[x, L.legendY], [x + SWATCH, L.legendY]],
        stroke: a.color,
        width: 2,
      },
      {
        kind: "text",
        id: `legend-${a.name}`,
        x: x + SWATCH + GAP,
        y: L.legendY + 3.5,
        text,
        size: 10,
        color: "black",
      },
    );
    x += widthOf(text) + SPACING;
  }
  return { width: L.width, height: L.height, background: "white", title, shapes };
}

/**
 * The chart of {@linkcode accuracyChart} as the two files compare writes: `accuracy.svg`'s text
 * and `accuracy.png`'s bytes (2 pixels a unit: 1600 × 820).
 */
export async function accuracyPlotFiles(
  input: AccuracyChartInput,
): Promise<{ svg: string; png: Uint8Array }> {
  const drawing = accuracyChart(input);
  return { svg: drawingToSvg(drawing), png: await drawingToPng(drawing, { scale: 2 }) };
}

/**
 * The held-out curve of one run from its `metrics.jsonl` text: each evaluation line (keys
 * `eval/…`) gives `[step, tokens/sampled_total of that step's line, eval/accuracy]`, the warm
 * start's evaluation at step 0 with 0 tokens; one point per step (the last line wins).
 *
 * @throws {InputError} Naming the file and line: a line that is not a JSON object with a
 * numeric `step`, an evaluation without a numeric `eval/accuracy`, or one at a step whose line
 * does not record `tokens/sampled_total`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { curveFromMetrics } from "./compare_plot.ts";
 *
 * const text = [
 *   '{"step":0,"eval/accuracy":0.465,"eval/format_rate":0.99}',
 *   '{"step":1,"accuracy":0.2,"tokens/sampled_total":5947}',
 *   '{"step":1,"eval/accuracy":0.49}',
 * ].join("\n");
 * assert.deepEqual(curveFromMetrics(text, "metrics.jsonl"), [[0, 0, 0.465], [1, 5947, 0.49]]);
 * ```
 */
export function curveFromMetrics(text: string, path: string): CurvePoint[] {
  const tokensAt = new Map<number, number>([[0, 0]]);
  const evals: { line: number; step: number; accuracy: unknown }[] = [];
  text.split("\n").forEach((raw, i) => {
    if (raw.trim() === "") return;
    const where = `Cannot read "${path}": line ${i + 1}`;
    let record: unknown;
    try {
      record = JSON.parse(raw);
    } catch (e) {
      throw new InputError(`${where} is not JSON: ${(e as Error).message}`);
    }
    if (typeof record !== "object" || record === null || Array.isArray(record)) {
      throw new InputError(`${where} is not a JSON object: current value is ${raw.slice(0, 80)}`);
    }
    const r = record as Record<string, unknown>;
    if (typeof r.step !== "number" || !Number.isInteger(r.step) || r.step < 0) {
      throw new InputError(
        `${where}: field "step" must be an integer >= 0: current value is ${
          JSON.stringify(r.step)
        }`,
      );
    }
    const tokens = r["tokens/sampled_total"];
    if (typeof tokens === "number") tokensAt.set(r.step, tokens);
    if (Object.keys(r).some((k) => k.startsWith("eval/"))) {
      evals.push({ line: i + 1, step: r.step, accuracy: r["eval/accuracy"] });
    }
  });
  const byStep = new Map<number, CurvePoint>();
  for (const e of evals) {
    const where = `Cannot read "${path}": line ${e.line}`;
    if (typeof e.accuracy !== "number" || !Number.isFinite(e.accuracy)) {
      throw new InputError(
        `${where}: field "eval/accuracy" must be a number: current value is ${
          JSON.stringify(e.accuracy)
        }`,
      );
    }
    const tokens = tokensAt.get(e.step);
    if (tokens === undefined) {
      throw new InputError(
        `${where}: no line of step ${e.step} records "tokens/sampled_total" for this evaluation`,
      );
    }
    byStep.set(e.step, [e.step, tokens, e.accuracy]);
  }
  return [...byStep.values()].sort((a, b) => a[0] - b[0]);
}
