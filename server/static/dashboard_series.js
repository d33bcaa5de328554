/**
 * What the run dashboard draws, without the page: the charts and their series, the x axes,
 * smoothing, the mean ± std of a group of seed runs, and the CSV of a chart. Plain functions
 * over the history entries of `/history` (live server) and `/api/runs/:id/history` (dashboard
 * server), `{kind: "step" | "eval", step, time, metrics}`; `dashboard.html` imports them in the
 * browser and the tests import them in Deno.
 *
 * @module
 */

/**
 * The x axes every chart can use: the training step, the tokens sampled so far
 * (`tokens/sampled_total`, Layer 1 and Layer 2) and the wall time (the sum of `time/step` of
 * the steps so far; evaluations are not counted).
 */
export const X_AXES = {
  step: { label: "step", integer: true },
  tokens: { label: "sampled tokens", integer: true },
  wall: { label: "wall time (s, sum of time/step)", integer: false },
};

/**
 * One point per step of a run: the step's training metrics (`metrics`), the metrics of the
 * evaluation after it (`eval`; step 0 is the warm start's), and its x on each axis. Later
 * entries of the same kind and step replace earlier ones.
 *
 * @param {{kind: string, step: number, metrics: Record<string, number>}[]} history
 * @returns {{step: number, metrics?: Record<string, number>, eval?: Record<string, number>,
 *   x: {step: number, tokens: number, wall: number}}[]}
 */
export function runPoints(history) {
  const byStep = new Map();
  for (const entry of history) {
    const point = byStep.get(entry.step) ?? { step: entry.step };
    if (entry.kind === "eval") point.eval = entry.metrics;
    else point.metrics = entry.metrics;
    byStep.set(entry.step, point);
  }
  const points = [...byStep.values()].sort((a, b) => a.step - b.step);
  let tokens = 0, wall = 0;
  for (const p of points) {
    if (p.metrics) {
      const total = finite(p.metrics["tokens/sampled_total"]);
      tokens = total ?? tokens + stepTokens(p.metrics);
      wall += finite(p.metrics["time/step"]) ?? 0;
    }
    p.x = { step: p.step, tokens, wall };
  }
  return points;
}

/** The tokens sampled in one step: every `…completions/total_tokens` (Layer 1 and Layer 2). */
export function stepTokens(metrics) {
  let sum = 0;
  for (const [key, value] of Object.entries(metrics)) {
    if (key.endsWith("completions/total_tokens") && Number.isFinite(value)) sum += value;
  }
  return sum;
}

function finite(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function ratio(a, b) {
  return finite(a) !== null && finite(b) !== null && b > 0 ? a / b : null;
}

// --- charts ---

/** A series read from the training step's metrics. */
function step(key, label = key, extra = {}) {
  return { id: key, label, from: "step", get: (m) => finite(m[key]), ...extra };
}

/** A series read from the evaluation after a step (not smoothed: one point per evaluation). */
function evaluation(key, label) {
  return { id: key, label, from: "eval", get: (m) => finite(m[key]), smooth: false };
}

/** The keys of `keys` that match `pattern`, sorted, each through `make`. */
function matching(keys, pattern, make) {
  return [...keys].filter((k) => pattern.test(k)).sort().map(make);
}

/**
 * The charts, in page order. Each has an `id` (the element `chart-<id>`), a `title`, a y-axis
 * title with its unit, `fraction` for a fixed 0–1 axis, and `series(keys, config)`: the
 * series it can draw for the metric keys seen in the runs shown (and the run's config, for
 * labels). A series reads one number from a step's metrics or from its evaluation's.
 */
export const CHARTS = [
  {
    id: "reward",
    title: "Reward",
    y: "reward (mean)",
    series: (keys) => [
      step("reward/mean", "reward/mean", { fold: "layer1" }),
      ...matching(keys, /^rewards\/[^/]+\/mean$/, (k) => step(k, k, { fold: "layer1" })),
      step("accuracy", "train accuracy (sampled)", { fold: "layer1" }),
      step("layer2/reward/mean", "layer2/reward/mean", { fold: "layer2" }),
      ...matching(keys, /^layer2\/rewards\/[^/]+\/mean$/, (k) => step(k, k, { fold: "layer2" })),
    ],
  },
  {
    id: "accuracy",
    title: "Held-out accuracy",
    y: "accuracy (0–1)",
    fraction: true,
    series: (_keys, config) => {
      const split = config?.eval?.split === "dev" ? "dev" : "held-out";
      const decoding = config?.eval?.greedy === false ? "sampled" : "greedy";
      return [
        evaluation("eval/accuracy", `Acc@t1 (${split}, ${decoding})`),
        evaluation("eval/acc_t2", `after one guided correction (Acc@t2, ${split})`),
        evaluation("eval/delta_i_to_c", `Δi→c (${split}, wrong → right)`),
        evaluation("eval/delta_c_to_i", `Δc→i (${split}, right → wrong)`),
        evaluation("eval/format_rate", `format rate (${split})`),
      ];
    },
  },
  {
    id: "self-correction",
    title: "Self-correction in training (MGRPO)",
    y: "fraction (0–1)",
    fraction: true,
    series: () => [
      step("mgrpo/acc_t1", "Acc@t1 (Layer-1 answers)"),
      step("mgrpo/acc_t1_prime", "Acc@t1' (their corrections)"),
      step("mgrpo/delta_i_to_c", "Δi→c (wrong → right)"),
      step("mgrpo/delta_c_to_i", "Δc→i (right → wrong)"),
      step("mgrpo/correction_rate", "correction rate"),
      step("mgrpo/confirmation_rate", "confirmation rate"),
    ],
  },
  {
    id: "loss",
    title: "Loss",
    y: "loss",
    series: (keys) => [
      ...matching(keys, /^loss\//, (k) => step(k)),
      ...matching(keys, /^layer2\/loss\//, (k) => step(k)),
    ],
  },
  {
    id: "kl",
    title: "KL",
    y: "KL (nats/token)",
    series: () => [step("kl"), step("layer2/kl"), step("approx_kl")],
  },
  {
    id: "entropy",
    title: "Entropy",
    y: "entropy (nats/token)",
    series: () => [step("entropy"), step("layer2/entropy")],
  },
  {
    id: "grad-norm",
    title: "Gradient norm",
    y: "grad norm (L2)",
    series: () => [step("grad_norm")],
  },
  {
    id: "lr",
    title: "Learning rate",
    y: "learning rate",
    series: () => [step("learning_rate")],
  },
  {
    id: "length",
    title: "Completion length",
    y: "length (tokens)",
    right: "clipped (0–1)",
    series: () => [
      step("completions/mean_length"),
      step("completions/min_length"),
      step("completions/max_length"),
      step("layer2/completions/mean_length"),
      evaluation("eval/mean_length", "eval/mean_length (held-out)"),
      step("completions/clipped_ratio", "completions/clipped_ratio", { scale: "right" }),
      step("layer2/completions/clipped_ratio", "layer2/completions/clipped_ratio", {
        scale: "right",
      }),
    ],
  },
  {
    id: "clip",
    title: "Clip ratio",
    y: "clipped (0–1)",
    fraction: true,
    series: () => [
      step("clip_ratio/low_mean", "clip_ratio/low_mean", { fold: "layer1" }),
      step("clip_ratio/high_mean", "clip_ratio/high_mean", { fold: "layer1" }),
      step("clip_ratio/region_mean", "clip_ratio/region_mean", { fold: "layer1" }),
      step("clip_ratio"),
      step("layer2/clip_ratio/low_mean", "layer2/clip_ratio/low_mean", { fold: "layer2" }),
      step("layer2/clip_ratio/high_mean", "layer2/clip_ratio/high_mean", { fold: "layer2" }),
      step("layer2/clip_ratio/region_mean", "layer2/clip_ratio/region_mean", { fold: "layer2" }),
      step("value/clip_ratio"),
    ],
  },
  {
    id: "groups",
    title: "Groups without a learning signal",
    y: "groups (0–1)",
    fraction: true,
    series: () => [
      step("frac_reward_zero_std", "frac_reward_zero_std (all rewards equal)"),
      step("layer2/frac_reward_zero_std", "layer2/frac_reward_zero_std"),
      step("mgrpo/discarded_frac", "mgrpo/discarded_frac (Layer-2 groups discarded)"),
    ],
  },
  {
    id: "value",
    title: "Value (PPO critic)",
    y: "value",
    series: () => [step("value/mean"), step("returns/mean")],
  },
  {
    id: "throughput",
    title: "Throughput",
    y: "tokens/s",
    series: () => [
      {
        id: "sampler tokens/s",
        label: "sampler: tokens sampled ÷ time/sampler",
        from: "step",
        get: (m) => ratio(stepTokens(m) || null, m["time/sampler"]),
      },
      {
        id: "learner tokens/s",
        label: "learner: tokens trained on ÷ time/learner",
        from: "step",
        get: (m) => ratio(stepTokens(m) || null, m["time/learner"]),
      },
    ],
  },
  {
    id: "busy",
    title: "Actor busy fraction",
    y: "busy (0–1 of step)",
    fraction: true,
    series: (keys) =>
      matching(keys, /^time\/./, (k) => ({
        id: k,
        label: k === "time/runtime_overhead" ? "runtime overhead" : k.slice(5),
        from: "step",
        get: (m) => ratio(m[k], m["time/step"]),
      })).filter((s) => s.id !== "time/step"),
  },
];

/** Every metric key of the steps and evaluations of `pointLists`. */
export function metricKeys(pointLists) {
  const keys = new Set();
  for (const points of pointLists) {
    for (const p of points) {
      for (const k of Object.keys(p.metrics ?? {})) keys.add(k);
      for (const k of Object.keys(p.eval ?? {})) keys.add(k);
    }
  }
  return keys;
}

// --- smoothing and groups ---

/**
 * TensorBoard's smoothing: an exponential moving average with weight `weight` (0 = none,
 * 0.99 = heavy), debiased so the first points are not pulled towards 0. `null`s stay `null`
 * and are skipped.
 *
 * @param {(number | null)[]} values
 * @param {number} weight in [0, 1)
 * @returns {(number | null)[]}
 */
export function emaSmooth(values, weight) {
  if (!(weight > 0)) return values.slice();
  let last = 0, debias = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return null;
    last = last * weight + (1 - weight) * v;
    debias = debias * weight + (1 - weight);
    return last / debias;
  });
}

/** The `[x, y]` points of `series` in one run's points, on the x axis `axis`. */
export function seriesPoints(points, series, axis) {
  const out = [];
  for (const p of points) {
    const metrics = series.from === "eval" ? p.eval : p.metrics;
    if (!metrics) continue;
    const y = series.get(metrics);
    if (y !== null) out.push([p.x[axis], y]);
  }
  return out;
}

/**
 * The mean ± sample standard deviation over the runs of a group, step by step: at each step
 * where any run has a value, x is the mean of those runs' x (their tokens or wall time differ)
 * and `lo`/`hi` are mean ∓ std (the mean itself with one run).
 *
 * @returns {{x: number, y: number, lo: number, hi: number, n: number}[]}
 */
export function groupPoints(runs, series, axis) {
  const byStep = new Map();
  for (const points of runs) {
    for (const p of points) {
      const metrics = series.from === "eval" ? p.eval : p.metrics;
      if (!metrics) continue;
      const y = series.get(metrics);
      if (y === null) continue;
      const at = byStep.get(p.step) ?? { xs: [], ys: [] };
      at.xs.push(p.x[axis]);
      at.ys.push(y);
      byStep.set(p.step, at);
    }
  }
  return [...byStep.entries()].sort((a, b) => a[0] - b[0]).map(([, { xs, ys }]) => {
    const n = ys.length;
    const mean = ys.reduce((a, b) => a + b, 0) / n;
    const std = n > 1 ? Math.sqrt(ys.reduce((a, y) => a + (y - mean) ** 2, 0) / (n - 1)) : 0;
    return { x: xs.reduce((a, b) => a + b, 0) / n, y: mean, lo: mean - std, hi: mean + std, n };
  });
}

// --- one chart's data ---

/** Line styles that tell the series of one run apart when colours tell the runs apart. */
const DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3], [1, 5], [12, 6]];

/** Colours of series (one run shown) and of runs (several shown). */
export const PALETTE = [
  "#2563eb",
  "#dc2626",
  "#16a34a",
  "#9333ea",
  "#ea580c",
  "#0891b2",
  "#ca8a04",
  "#db2777",
  "#4b5563",
  "#65a30d",
];

function sameValues(a, b) {
  if (a.length !== b.length) return false;
  return a.every(([x, y], i) => x === b[i][0] && Math.abs(y - b[i][1]) <= 1e-12);
}

/**
 * One column of a chart's data.
 *
 * @typedef {object} Column
 * @property {string} label its name in the legend and the CSV header
 * @property {"raw" | "smooth" | "seed" | "lo" | "hi"} role what it draws
 * @property {boolean} legend whether the legend lists it
 * @property {boolean} faint whether it is drawn faintly
 * @property {(number | null)[]} values its values at the chart's x values
 * @property {string} color its colour
 * @property {number[]} dash its line's dash pattern
 * @property {string} scale `"y"`, or `"right"` for the right-hand axis
 * @property {boolean} eval whether it holds evaluations (drawn as points)
 * @property {number} [band] on a `"hi"` column, the index of its `"lo"` partner
 */

/**
 * The data of one chart for the items shown: each item is a run
 * (`{label, color, points}`) or a group of seed runs (`{label, color, runs: points[],
 * seeds?: boolean}`, drawn as mean ± std, and each seed faintly when `seeds`). Series with no
 * point are left out; a series with the very same points as an earlier one of its `fold` (the
 * same quantity under other names: a reward that is its only reward function, the clip ratios
 * of a run that clips nothing) in every item is folded into its label
 * (`reward/mean = rewards/correct/mean`). With `smoothing` > 0 each step
 * series is drawn raw (faint) and smoothed.
 *
 * Returns the x values (sorted, every x that has a point) and the columns over them:
 * `role` is `"raw"`, `"smooth"`, `"seed"` (one seed of a group), `"lo"` or `"hi"` (a band's
 * edges), `legend` whether the legend lists it, `faint` whether it is drawn faintly, `band`
 * (on a `"hi"` column) the index of its `"lo"` partner; `empty` when nothing has a point.
 *
 * @param {object} chart one of {@linkcode CHARTS}
 * @param {object[]} items the runs and groups shown
 * @param {{axis: "step" | "tokens" | "wall", smoothing: number, keys: Set<string>, config?: object}} options
 */
export function chartData(chart, items, options) {
  const { axis, smoothing } = options;
  const defs = chart.series(options.keys, options.config);
  // Each def's points in each item: [itemIndex] -> {main, seeds?}
  const drawn = [];
  for (const def of defs) {
    const perItem = items.map((item) => {
      if (!item.runs) return { main: seriesPoints(item.points, def, axis) };
      const group = groupPoints(item.runs, def, axis);
      return {
        main: group.map((g) => [g.x, g.y]),
        group,
        seeds: item.seeds ? item.runs.map((r) => seriesPoints(r, def, axis)) : [],
      };
    });
    if (perItem.every((p) => p.main.length === 0)) continue;
    const twin = def.fold !== undefined &&
      drawn.find((d) =>
        d.def.fold === def.fold && d.perItem.every((p, i) => sameValues(p.main, perItem[i].main))
      );
    if (twin) {
      twin.label += ` = ${def.label}`;
      continue;
    }
    drawn.push({ def, label: def.label, perItem });
  }

  const traces = [];
  const many = items.length > 1;
  drawn.forEach((d, di) => {
    d.perItem.forEach((p, ii) => {
      const item = items[ii];
      if (p.main.length === 0) return;
      const color = many ? item.color : PALETTE[di % PALETTE.length];
      const dash = many ? DASHES[di % DASHES.length] : [];
      const label = many ? `${item.label} · ${d.label}` : d.label;
      const smooth = smoothing > 0 && d.def.smooth !== false;
      const base = { color, dash, scale: d.def.scale ?? "y", eval: d.def.from === "eval" };
      for (const [k, seed] of (p.seeds ?? []).entries()) {
        if (seed.length === 0) continue;
        traces.push({
          ...base,
          label: `${item.label} seed ${item.seedNames?.[k] ?? k} · ${d.label}`,
          points: seed,
          role: "seed",
          smooth,
        });
      }
      if (p.group) {
        traces.push({
          ...base,
          label: `${label} (mean − std)`,
          points: p.group.map((g) => [g.x, g.lo]),
          role: "lo",
          smooth,
        });
        traces.push({
          ...base,
          label: `${label} (mean + std)`,
          points: p.group.map((g) => [g.x, g.hi]),
          role: "hi",
          smooth,
        });
      }
      traces.push({ ...base, label, points: p.main, role: "main", smooth });
    });
  });

  const xs = [...new Set(traces.flatMap((t) => t.points.map(([x]) => x)))].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  /** @type {Column[]} */
  const columns = [];
  for (const t of traces) {
    const raw = new Array(xs.length).fill(null);
    for (const [x, y] of t.points) raw[at.get(x)] = y;
    const values = t.smooth ? emaSmooth(raw, smoothing) : raw;
    const common = { color: t.color, dash: t.dash, scale: t.scale, eval: t.eval };
    const suffix = t.smooth ? " (smoothed)" : "";
    if (t.role === "main") {
      // Smoothed: the raw values faint (and out of the legend), the smoothed ones solid.
      if (t.smooth) {
        columns.push({
          ...common,
          label: t.label,
          role: "raw",
          legend: false,
          faint: true,
          values: raw,
        });
      }
      columns.push({
        ...common,
        label: t.label + suffix,
        role: t.smooth ? "smooth" : "raw",
        legend: true,
        faint: false,
        values,
      });
    } else {
      const label = t.role === "seed" ? t.label + suffix : t.label;
      columns.push({
        ...common,
        label,
        role: t.role,
        legend: false,
        faint: t.role === "seed",
        values,
      });
    }
  }
  // Each band's edges: the "hi" column points at its "lo" partner.
  for (let i = 0; i < columns.length; i++) {
    if (columns[i].role === "hi" && columns[i - 1]?.role === "lo") columns[i].band = i - 1;
  }
  return { xs, columns, empty: columns.length === 0 };
}

// --- export ---

function csvCell(value) {
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * The CSV of a chart's data: a header (the x axis, then every column's label) and one row per
 * x value; a missing value is an empty cell.
 *
 * @param {string} xLabel
 * @param {{xs: number[], columns: {label: string, values: (number | null)[]}[]}} data
 * @returns {string}
 */
export function chartCsv(xLabel, data) {
  const lines = [[xLabel, ...data.columns.map((c) => c.label)].map(csvCell).join(",")];
  data.xs.forEach((x, i) => {
    lines.push([x, ...data.columns.map((c) => c.values[i] ?? "")].map(csvCell).join(","));
  });
  return lines.join("\n") + "\n";
}

// --- samples ---

/**
 * Samples as sample groups, `{step, prompt, completions: [...]}`, from either shape the
 * servers send: sample groups as they are, or the live server's older flat list of rollouts
 * (`{prompt, completion, reward, reason, correct?, layer?, correction?}`), grouped by prompt at
 * step `step`.
 */
export function sampleGroups(samples, step) {
  if (!Array.isArray(samples)) return [];
  if (samples.every((s) => Array.isArray(s?.completions))) return samples;
  const groups = new Map();
  for (const s of samples) {
    const group = groups.get(s.prompt) ?? { step, prompt: s.prompt, completions: [] };
    group.completions.push({
      text: s.completion,
      reward: s.reward,
      advantage: null,
      reason: s.reason,
      ...(typeof s.correct === "boolean" ? { correct: s.correct } : {}),
      ...(s.correction
        ? {
          corrections: [{
            text: s.correction.completion,
            reward: s.correction.reward ?? null,
            advantage: null,
            reason: s.correction.reason ?? "",
            ...(typeof s.correction.correct === "boolean" ? { correct: s.correction.correct } : {}),
          }],
        }
        : {}),
    });
    groups.set(s.prompt, group);
  }
  return [...groups.values()];
}
