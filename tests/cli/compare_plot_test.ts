/** The plot of `deno task compare`, on hand-made runs whose positions are computed by hand. */
import assert from "node:assert/strict";
import {
  accuracyChart,
  type AccuracyChartInput,
  ARM_COLORS,
  armCurves,
  curveFromMetrics,
  formatTokens,
  niceTicks,
} from "../../cli/compare_plot.ts";
import type { Point, Shape } from "../../util/drawing.ts";
import { drawingToPng, drawingToSvg } from "../../util/drawing.ts";
import { InputError } from "../../util/errors.ts";
import { decodePng, pixelAt } from "../util/png_decoder.ts";

// Two arms, two seeds each, evaluated at the warm start (step 0) and at step 10.
const INPUT: AccuracyChartInput = {
  arms: [{ name: "a", label: "Alpha" }, { name: "b", label: "Beta" }],
  runs: [
    { arm: "a", seed: 0, curve: [[0, 0, 0.4], [10, 1000, 0.5]] },
    { arm: "a", seed: 1, curve: [[0, 0, 0.4], [10, 3000, 0.6]] },
    { arm: "b", seed: 0, curve: [[0, 0, 0.4], [10, 500, 0.3]] },
    { arm: "b", seed: 1, curve: [[0, 0, 0.4], [10, 1500, 0.5]] },
  ],
  evalSubset: 200,
};

function shape(shapes: Shape[], id: string): Shape {
  const s = shapes.find((s) => s.id === id);
  assert.ok(s, `no shape "${id}"`);
  return s;
}

function assertPoints(actual: readonly Point[], expected: Point[], label: string) {
  assert.equal(actual.length, expected.length, label);
  actual.forEach(([x, y], i) => {
    assert.ok(
      Math.abs(x - expected[i]![0]) < 1e-9 && Math.abs(y - expected[i]![1]) < 1e-9,
      `${label}: point ${i} is ${x},${y}, expected ${expected[i]}`,
    );
  });
}

Deno.test("armCurves() takes the mean, min and max over seeds at each evaluation", () => {
  const [a, b] = armCurves(INPUT);
  assert.equal(a!.seeds, 2);
  assert.equal(a!.color, ARM_COLORS[0]);
  assert.equal(b!.color, ARM_COLORS[1]);
  assert.deepEqual(a!.points[0], { step: 0, tokens: 0, mean: 0.4, min: 0.4, max: 0.4 });
  assert.deepEqual(b!.points[1], { step: 10, tokens: 1000, mean: 0.4, min: 0.3, max: 0.5 });
});

Deno.test("armCurves() counts a repeated step once and adds the final evaluation of runs that stop at different steps", () => {
  const [arm] = armCurves({
    arms: [{ name: "t", label: "equal tokens" }, { name: "none", label: "no runs" }],
    runs: [
      { arm: "t", seed: 0, curve: [[0, 0, 0.4], [25, 100, 0.5], [27, 110, 0.625]] },
      // Stopped on an eval.every step: its final evaluation is written twice.
      { arm: "t", seed: 1, curve: [[0, 0, 0.4], [25, 120, 0.75], [25, 120, 0.75]] },
    ],
    evalSubset: 200,
  });
  assert.deepEqual(arm!.points, [
    { step: 0, tokens: 0, mean: 0.4, min: 0.4, max: 0.4 },
    { step: 25, tokens: 110, mean: 0.625, min: 0.5, max: 0.75 },
    // Each run's last evaluation (27 and 25), at the mean step and tokens.
    { step: 26, tokens: 115, mean: 0.6875, min: 0.625, max: 0.75 },
  ]);
  assert.equal(armCurves({ ...INPUT, runs: [] }).length, 0);
});

Deno.test("niceTicks() and formatTokens() give round ticks with k and M suffixes", () => {
  assert.deepEqual(niceTicks(30.000000000000004, 60), {
    lo: 30,
    hi: 60,
    step: 5,
    values: [30, 35, 40, 45, 50, 55, 60],
  });
  assert.deepEqual(niceTicks(0, 94001).values, [0, 20000, 40000, 60000, 80000, 100000]);
  assert.deepEqual(niceTicks(0, 0.3).values, [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]);
  assert.deepEqual(niceTicks(50, 50).values, [49, 49.5, 50, 50.5, 51]);
  assert.deepEqual(
    [0, 250, 1000, 1200, 20000, 100000, 1e6, 1.5e6, 12e6].map(formatTokens),
    ["0", "250", "1k", "1.2k", "20k", "100k", "1M", "1.5M", "12M"],
  );
});

Deno.test("accuracyChart() puts the mean lines and bands at the hand-computed positions", () => {
  const { shapes, width, height } = accuracyChart(INPUT);
  assert.deepEqual([width, height], [800, 410]);
  // y: 30-60 % over rows 330 (bottom) to 60 (top): Y(p) = 330 - (p - 30) / 30 * 270.
  // Steps panel: x 70-370 for 0-10 steps; tokens panel: x 480-780 for 0-2,000 tokens.
  const line = (id: string) => (shape(shapes, id) as { points: readonly Point[] }).points;
  // Alpha: 40 % at step 0, mean 55 % (50 and 60) at step 10 and 2,000 tokens.
  assertPoints(line("mean-steps-a"), [[70, 240], [370, 105]], "mean-steps-a");
  assertPoints(line("band-steps-a"), [[70, 240], [370, 60], [370, 150], [70, 240]], "band-steps-a");
  assertPoints(line("mean-tokens-a"), [[480, 240], [780, 105]], "mean-tokens-a");
  // Beta: mean 40 % (30 and 50) at step 10 and 1,000 tokens.
  assertPoints(line("mean-steps-b"), [[70, 240], [370, 240]], "mean-steps-b");
  assertPoints(
    line("band-tokens-b"),
    [[480, 240], [630, 150], [630, 330], [480, 240]],
    "band-tokens-b",
  );
  const text = (id: string) => (shape(shapes, id) as { text: string }).text;
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => text(`xtick-steps-${i}`)), [
    "0",
    "2",
    "4",
    "6",
    "8",
    "10",
  ]);
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((i) => text(`xtick-tokens-${i}`)),
    ["0", "500", "1k", "1.5k", "2k"],
  );
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((i) => text(`ytick-${i}`)), [
    "30",
    "35",
    "40",
    "45",
    "50",
    "55",
    "60",
  ]);
  assert.equal(text("legend-a"), "Alpha, 2 seeds");
  assert.equal(text("legend-b"), "Beta, 2 seeds");
  const texts = shapes.flatMap((s) => (s.kind === "text" ? [s.text] : []));
  assert.equal(texts.filter((t) => t === "held-out accuracy (%)").length, 2);
  assert.ok(texts.includes("optimizer steps"));
  assert.ok(texts.includes("sampled completion tokens (both layers for MGRPO)"));
  assert.ok(
    texts.some((t) =>
      t.startsWith("line: mean over seeds; band: min–max over seeds; 200 held-out")
    ),
  );
  // The legend swatch has the arm's colour.
  assert.ok(
    shapes.some((s) => s.kind === "line" && s.stroke === ARM_COLORS[1] && s.points[0]![1] === 392),
  );
});

Deno.test("accuracyChart() renders to an SVG and a PNG that show the mean line where it was placed", async () => {
  const drawing = accuracyChart(INPUT);
  const svg = drawingToSvg(drawing);
  assert.match(
    svg,
    /<polyline id="mean-steps-a" points="70,240 370,105" fill="none" stroke="#d62728"/,
  );
  assert.match(svg, /<text id="legend-b" [^>]*>Beta, 2 seeds<\/text>/);
  const png = await decodePng(await drawingToPng(drawing));
  assert.deepEqual([png.width, png.height], [1600, 820]);
  // Halfway along Alpha's step line, (220, 172.5) in units, at 2 pixels a unit: its colour.
  assert.deepEqual(pixelAt(png, 440, 345), [214, 39, 40]);
  // Beta's flat tokens line at 40 %: y = 240 units, rows 478-481, x = 555 units.
  assert.deepEqual(pixelAt(png, 1110, 479), [31, 119, 180]);
  // The background outside the panels.
  assert.deepEqual(pixelAt(png, 4, 4), [255, 255, 255]);
});

Deno.test("curveFromMetrics() reads the evaluations with the tokens of their step, and names bad lines", () => {
  const lines = [
    '{"step":0,"eval/accuracy":0.465,"eval/format_rate":0.99}',
    '{"step":1,"accuracy":0.9,"tokens/sampled_total":5947}',
    '{"step":2,"accuracy":0.8,"tokens/sampled_total":11800}',
    '{"step":2,"eval/accuracy":0.49,"eval/mean_length":16.5}',
    '{"step":2,"eval/accuracy":0.5,"eval/mean_length":16.5}',
    "",
  ];
  // Training accuracy ("accuracy") is not read; the last evaluation of step 2 wins.
  assert.deepEqual(curveFromMetrics(lines.join("\n"), "m.jsonl"), [[0, 0, 0.465], [2, 11800, 0.5]]);
  const bad = (text: string, message: string | RegExp) =>
    assert.throws(() => curveFromMetrics(text, "runs/x/metrics.jsonl"), (e: Error) => {
      assert.ok(e instanceof InputError);
      if (typeof message === "string") assert.equal(e.message, message);
      else assert.match(e.message, message);
      return true;
    });
  bad('{"step":0}\n{oops', /^Cannot read "runs\/x\/metrics.jsonl": line 2 is not JSON: \S/);
  bad(
    '{"step":3,"eval/accuracy":0.5}',
    'Cannot read "runs/x/metrics.jsonl": line 1: no line of step 3 records "tokens/sampled_total" for this evaluation',
  );
  bad(
    '{"step":0,"eval/accuracy":"high"}',
    'Cannot read "runs/x/metrics.jsonl": line 1: field "eval/accuracy" must be a number: current value is "high"',
  );
  bad(
    '{"eval/accuracy":0.5}',
    'Cannot read "runs/x/metrics.jsonl": line 1: field "step" must be an integer >= 0: current value is undefined',
  );
  bad(
    "[1]",
    'Cannot read "runs/x/metrics.jsonl": line 1 is not a JSON object: current value is [1]',
  );
});
