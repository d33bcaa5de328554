/**
 * The dashboard page's chart series (`server/static/dashboard_series.js`), in Deno: the same
 * module the page imports.
 */
import assert from "node:assert/strict";
import {
  chartCsv,
  chartData,
  CHARTS,
  emaSmooth,
  groupPoints,
  metricKeys,
  runPoints,
  sampleGroups,
  X_AXES,
} from "../../server/static/dashboard_series.js";
import { assertClose } from "../helpers.ts";

type Entry = { kind: "step" | "eval"; step: number; metrics: Record<string, number> };
const step = (n: number, metrics: Record<string, number>): Entry => ({
  kind: "step",
  step: n,
  metrics,
});
const evaluation = (n: number, metrics: Record<string, number>): Entry => ({
  kind: "eval",
  step: n,
  metrics,
});

function chart(id: string) {
  const found = CHARTS.find((c) => c.id === id);
  assert.ok(found, id);
  return found;
}

/** A three-step MGRPO-like run. */
const RUN: Entry[] = [
  evaluation(0, { "eval/accuracy": 0.4 }),
  step(1, {
    "reward/mean": 0.25,
    "rewards/correct/mean": 0.25,
    "mgrpo/acc_t1": 0.25,
    "mgrpo/acc_t1_prime": 0.125,
    "tokens/sampled_total": 100,
    "completions/total_tokens": 40,
    "layer2/completions/total_tokens": 60,
    "time/step": 2,
    "time/sampler": 1,
    "time/learner": 0.5,
    "clip_ratio/low_mean": 0,
    "clip_ratio/high_mean": 0,
  }),
  step(2, {
    "reward/mean": 0.5,
    "rewards/correct/mean": 0.5,
    "mgrpo/acc_t1": 0.5,
    "tokens/sampled_total": 250,
    "completions/total_tokens": 50,
    "layer2/completions/total_tokens": 100,
    "time/step": 3,
    "time/sampler": 2,
    "time/learner": 1,
    "clip_ratio/low_mean": 0.25,
    "clip_ratio/high_mean": 0,
  }),
  evaluation(2, { "eval/accuracy": 0.5 }),
];

Deno.test("emaSmooth() is TensorBoard's debiased EMA, skipping nulls", () => {
  // w = 0.5: 1 → 1; (0.25 + 1) / 0.75; (0.625 + 1.5) / 0.875
  const out = emaSmooth([1, 2, null, 3], 0.5);
  assert.equal(out[0], 1);
  assertClose(out[1]!, 1.25 / 0.75, 1e-12);
  assert.equal(out[2], null);
  assertClose(out[3]!, 2.125 / 0.875, 1e-12);
  assert.deepEqual(emaSmooth([1, 2, 3], 0), [1, 2, 3]);
  // A constant stays constant from the first point on (no pull towards 0).
  for (const v of emaSmooth([0.3, 0.3, 0.3], 0.99)) assertClose(v!, 0.3, 1e-12);
});

Deno.test("runPoints() puts each step and its evaluation at the same x on every axis", () => {
  const points = runPoints(RUN);
  assert.deepEqual(points.map((p) => [p.step, p.x]), [
    [0, { step: 0, tokens: 0, wall: 0 }],
    [1, { step: 1, tokens: 100, wall: 2 }],
    [2, { step: 2, tokens: 250, wall: 5 }],
  ]);
  assert.equal(points[2]!.eval!["eval/accuracy"], 0.5);
  // Without tokens/sampled_total (older runs), the tokens of each step are added up.
  const old = runPoints([
    step(1, { "completions/total_tokens": 40 }),
    step(2, { "completions/total_tokens": 50 }),
  ]);
  assert.deepEqual(old.map((p) => p.x.tokens), [40, 90]);
  // A step logged twice (a resume) counts once, the later line winning.
  const twice = runPoints([step(1, { "time/step": 9 }), step(1, { "time/step": 2 })]);
  assert.deepEqual(twice.map((p) => p.x.wall), [2]);
});

Deno.test("chartData() folds a reward into its only reward function and leaves other series apart", () => {
  const points = runPoints(RUN);
  const keys = metricKeys([points]);
  const item = { label: "run", color: "#2563eb", points };
  const reward = chartData(chart("reward"), [item], { axis: "step", smoothing: 0, keys });
  assert.deepEqual(reward.xs, [1, 2]);
  assert.deepEqual(reward.columns.map((c) => [c.label, c.values]), [
    ["reward/mean = rewards/correct/mean", [0.25, 0.5]],
  ]);
  // Acc@t1 has the same values but is its own quantity in its own chart.
  const sc = chartData(chart("self-correction"), [item], { axis: "step", smoothing: 0, keys });
  assert.deepEqual(sc.columns.map((c) => [c.label, c.values]), [
    ["Acc@t1 (Layer-1 answers)", [0.25, 0.5]],
    ["Acc@t1' (their corrections)", [0.125, null]],
  ]);
  // The held-out accuracy is Acc@t1, greedy, at the evaluations' x.
  const acc = chartData(chart("accuracy"), [item], { axis: "tokens", smoothing: 0, keys });
  assert.deepEqual(acc.xs, [0, 250]);
  assert.deepEqual(acc.columns.map((c) => [c.label, c.values]), [
    ["Acc@t1 (held-out, greedy)", [0.4, 0.5]],
  ]);
  const dev = chartData(chart("accuracy"), [item], {
    axis: "step",
    smoothing: 0,
    keys,
    config: { eval: { split: "dev", greedy: false } },
  });
  assert.equal(dev.columns[0]!.label, "Acc@t1 (dev, sampled)");
  // Clip ratios that differ are drawn apart.
  const clip = chartData(chart("clip"), [item], { axis: "step", smoothing: 0, keys });
  assert.deepEqual(clip.columns.map((c) => c.label), [
    "clip_ratio/low_mean",
    "clip_ratio/high_mean",
  ]);
  // No value: no series, and an empty chart.
  assert.ok(chartData(chart("value"), [item], { axis: "step", smoothing: 0, keys }).empty);
});

Deno.test("chartData() draws the held-out guided correction of an MGRPO evaluation line beside Acc@t1", () => {
  // What the Trainer logs for MGRPO (eval.correction: auto): 20 problems, 9 right at t1,
  // 2 corrected, 5 broken.
  const points = runPoints([
    evaluation(0, {
      "eval/accuracy": 0.45,
      "eval/acc_t2": 0.3,
      "eval/delta_i_to_c": 0.1,
      "eval/delta_c_to_i": 0.25,
      "eval/mcnemar_p": 0.453125,
    }),
  ]);
  const keys = metricKeys([points]);
  const item = { label: "run", color: "#2563eb", points };
  const acc = chartData(chart("accuracy"), [item], { axis: "step", smoothing: 0, keys });
  assert.deepEqual(acc.columns.map((c) => [c.label, c.values]), [
    ["Acc@t1 (held-out, greedy)", [0.45]],
    ["after one guided correction (Acc@t2, held-out)", [0.3]],
    ["Δi→c (held-out, wrong → right)", [0.1]],
    ["Δc→i (held-out, right → wrong)", [0.25]],
  ]);
});

Deno.test("chartData() throughput and busy fractions divide by the right times", () => {
  const points = runPoints(RUN);
  const keys = metricKeys([points]);
  const item = { label: "run", color: "#2563eb", points };
  const tp = chartData(chart("throughput"), [item], { axis: "step", smoothing: 0, keys });
  // tokens of the step (both layers) ÷ time/sampler and ÷ time/learner
  assert.deepEqual(tp.columns.map((c) => c.values), [[100, 75], [200, 150]]);
  const busy = chartData(chart("busy"), [item], { axis: "wall", smoothing: 0, keys });
  assert.deepEqual(busy.xs, [2, 5]);
  assert.deepEqual(busy.columns.map((c) => [c.label, c.values]), [
    ["learner", [0.25, 1 / 3]],
    ["sampler", [0.5, 2 / 3]],
  ]);
  for (const id of ["accuracy", "self-correction", "clip", "groups", "busy"]) {
    assert.equal(chart(id).fraction, true, `${id} is on a 0–1 axis`);
  }
});

Deno.test("chartData() with smoothing draws the raw values faint and the smoothed ones in the legend", () => {
  const points = runPoints(RUN);
  const keys = metricKeys([points]);
  const data = chartData(chart("reward"), [{ label: "run", color: "#2563eb", points }], {
    axis: "step",
    smoothing: 0.5,
    keys,
  });
  assert.deepEqual(data.columns.map((c) => [c.role, c.legend, c.faint]), [
    ["raw", false, true],
    ["smooth", true, false],
  ]);
  // w = 0.5: 0.25 → 0.25; (0.5 · 0.125 + 0.5 · 0.5) / (1 − 0.5²)
  assert.deepEqual(data.columns[1]!.values, [0.25, (0.0625 + 0.25) / 0.75]);
  assert.equal(data.columns[1]!.label, "reward/mean = rewards/correct/mean (smoothed)");
});

Deno.test("groupPoints() and chartData() give a group of seeds its mean ± sample std", () => {
  const seedA = runPoints([
    step(1, { kl: 0.2, "tokens/sampled_total": 10 }),
    step(2, { kl: 0.4, "tokens/sampled_total": 30 }),
  ]);
  const seedB = runPoints([
    step(1, { kl: 0.4, "tokens/sampled_total": 20 }),
    step(2, { kl: 0.4, "tokens/sampled_total": 50 }),
    step(3, { kl: 0.7, "tokens/sampled_total": 60 }),
  ]);
  const kl = chart("kl").series(new Set(), undefined)[0]!;
  const group = groupPoints([seedA, seedB], kl, "tokens");
  assert.deepEqual(group.map((g) => [g.x, g.n]), [[15, 2], [40, 2], [60, 1]]);
  assertClose(group[0]!.y, 0.3, 1e-12);
  assertClose(group[0]!.hi - group[0]!.y, Math.SQRT2 * 0.1, 1e-12); // std of 0.2, 0.4
  assert.equal(group[1]!.lo, 0.4);
  assert.equal(group[2]!.hi, 0.7);
  const runB = { label: "b", color: "#dc2626", points: seedB };
  const data = chartData(
    chart("kl"),
    [
      { label: "arm", color: "#2563eb", runs: [seedA, seedB], seeds: true, seedNames: [0, 1] },
      runB,
    ],
    { axis: "step", smoothing: 0, keys: metricKeys([seedA, seedB]) },
  );
  assert.deepEqual(data.xs, [1, 2, 3]);
  assert.deepEqual(data.columns.map((c) => [c.label, c.role, c.legend]), [
    ["arm seed 0 · kl", "seed", false],
    ["arm seed 1 · kl", "seed", false],
    ["arm · kl (mean − std)", "lo", false],
    ["arm · kl (mean + std)", "hi", false],
    ["arm · kl", "raw", true],
    ["b · kl", "raw", true],
  ]);
  assert.equal(data.columns[3]!.band, 2);
  // Several items: a colour per item.
  assert.deepEqual(data.columns.slice(4).map((c) => c.color), ["#2563eb", "#dc2626"]);
});

Deno.test("chartCsv() writes the x axis and every column, one row per x", () => {
  const points = runPoints(RUN);
  const keys = metricKeys([points]);
  const data = chartData(chart("self-correction"), [{ label: "run", color: "#000000", points }], {
    axis: "tokens",
    smoothing: 0,
    keys,
  });
  assert.equal(
    chartCsv(X_AXES.tokens.label, data),
    "sampled tokens,Acc@t1 (Layer-1 answers),Acc@t1' (their corrections)\n" +
      "100,0.25,0.125\n250,0.5,\n",
  );
  assert.equal(
    chartCsv("step", { xs: [1], columns: [{ label: 'a, "b"', values: [2] }] }),
    'step,"a, ""b"""\n1,2\n',
  );
});

Deno.test("sampleGroups() keeps sample groups and groups the older flat samples by prompt", () => {
  const groups = [{ step: 3, prompt: "p", completions: [] }];
  assert.equal(sampleGroups(groups, 9), groups);
  assert.deepEqual(
    sampleGroups([
      { prompt: "p", completion: "5", reward: 1, reason: "correct", correct: true },
      {
        prompt: "p",
        completion: "6",
        reward: 0,
        reason: "wrong answer",
        correct: false,
        correction: { completion: "5", correct: true },
      },
    ], 4),
    [{
      step: 4,
      prompt: "p",
      completions: [
        { text: "5", reward: 1, advantage: null, reason: "correct", correct: true },
        {
          text: "6",
          reward: 0,
          advantage: null,
          reason: "wrong answer",
          correct: false,
          corrections: [{ text: "5", reward: null, advantage: null, reason: "", correct: true }],
        },
      ],
    }],
  );
});
