/**
 * `deno task compare`: GRPO, MGRPO and PPO on the embedded task at the same budget of sampled
 * completion tokens, over several seeds. Writes `<out>/report.md` (the paper's Table 2
 * columns, mean ± std over seeds) and `<out>/accuracy.svg` (training accuracy against sampled
 * tokens), with every run in `<out>/<algorithm>-seed<k>/`.
 *
 * The budget is `--budget` tokens (default: about what 100 GRPO steps sample, 100 steps × 64
 * completions × 17.5 tokens). GRPO runs `configs/tiny-grpo.yaml` (100 steps), MGRPO the embedded
 * default (16 steps, about the same tokens), PPO `configs/tiny-ppo.yaml` (100 steps); each run stops at the step where it reaches the
 * budget, and the report gives the tokens each actually sampled.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  evaluateCheckpointTwoTurn,
  formatTable,
  heldOut,
  REPO_ROOT,
  resolveRepoPath,
  TRAIN_RUN_ARGS,
  TWO_TURN_COLUMNS,
} from "./common.ts";
import { loadConfig } from "./config.ts";
import { initBackend } from "../model/backend.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seeds: { type: "string", default: "0,1,2" },
    budget: { type: "string", default: "112000" },
    out: { type: "string" },
    jobs: { type: "string", default: "2" },
    algorithms: { type: "string", default: "grpo,mgrpo,ppo" },
    reuse: { type: "boolean", default: false },
  },
  strict: true,
});
const seeds = values.seeds.split(",").map((s) => Number(s.trim()));
const budget = Number(values.budget);
const out = values.out ?? `runs/compare-${new Date().toISOString().slice(0, 10)}`;
await Deno.mkdir(out, { recursive: true });

async function train(runDir: string, args: string[]): Promise<void> {
  await Deno.remove(runDir, { recursive: true }).catch(() => {});
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      ...TRAIN_RUN_ARGS,
      "--run-dir",
      runDir,
      ...args,
    ],
  }).output();
  const decoder = new TextDecoder();
  await Deno.writeTextFile(
    `${runDir}.log`,
    decoder.decode(output.stdout) + decoder.decode(output.stderr),
  );
  if (!output.success) throw new Error(`train failed for ${runDir}: see ${runDir}.log`);
}

async function metrics(runDir: string): Promise<Record<string, number>[]> {
  const text = await Deno.readTextFile(`${runDir}/metrics.jsonl`);
  return text.trim().split("\n").map((l) => JSON.parse(l));
}

// GRPO runs configs/tiny-grpo.yaml (100 steps), MGRPO the embedded default (16 steps), PPO
// configs/tiny-ppo.yaml (100 steps of 64 prompts × 1): the steps are chosen so that each
// samples about the budget; the budget stops a run at the step that reaches it.
const CONFIGS: Record<string, string[]> = {
  grpo: ["--config", `${REPO_ROOT}configs/tiny-grpo.yaml`],
  mgrpo: [],
  ppo: ["--config", `${REPO_ROOT}configs/tiny-ppo.yaml`],
};
const algorithms = values.algorithms.split(",").map((a) => a.trim());
for (const a of algorithms) {
  if (!(a in CONFIGS)) {
    console.error(`Invalid value for --algorithms: "${a}" is not one of grpo, mgrpo, ppo`);
    Deno.exit(2);
  }
}
const jobs: { algorithm: string; seed: number; args: string[] }[] = [];
for (const seed of seeds) {
  for (const algorithm of algorithms) {
    jobs.push({ algorithm, seed, args: [...CONFIGS[algorithm]!, "--seed", String(seed)] });
  }
}
// --reuse keeps finished runs (a summary.json) of an earlier compare into the same --out.
const done = async (dir: string) => {
  try {
    await Deno.stat(`${dir}/summary.json`);
    return true;
  } catch {
    return false;
  }
};
const queue: typeof jobs = [];
for (const job of jobs) {
  if (!(values.reuse && await done(`${out}/${job.algorithm}-seed${job.seed}`))) queue.push(job);
}
await Promise.all(
  Array.from({ length: Number(values.jobs) }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const dir = `${out}/${job.algorithm}-seed${job.seed}`;
      console.log(`running ${dir}`);
      await train(dir, [...job.args, "--set", `run.max_sampled_tokens=${budget}`]);
    }
  }),
);

// Two-turn evaluation of every final policy, and the table.
const config = loadConfig(undefined);
await initBackend(config.model.backend, { wasmThreads: config.model.wasm_threads });
const { problems } = heldOut(config.task);
type Row = Record<string, number>;
const results: Record<string, Row[]> = Object.fromEntries(algorithms.map((a) => [a, []]));
const curves: Record<string, [number, number][][]> = Object.fromEntries(
  algorithms.map((a) => [a, []]),
);
async function twoTurn(checkpoint: string) {
  return (await evaluateCheckpointTwoTurn(checkpoint, config, problems)).metrics;
}
const base = await twoTurn(resolveRepoPath(config.model.init));
for (const job of jobs) {
  const dir = `${out}/${job.algorithm}-seed${job.seed}`;
  const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
  const m = await twoTurn(summary.checkpoint);
  const lines = (await metrics(dir)).filter((l) => "tokens/sampled_total" in l);
  const last = lines.slice(-5);
  const avg = (k: string) => last.reduce((a, l) => a + (l[k] ?? 0), 0) / Math.max(1, last.length);
  results[job.algorithm]!.push({
    before: summary.accuracy_before,
    after: summary.accuracy_after,
    acc_t1: m.acc_t1,
    acc_t1_prime: m.acc_t1_prime,
    acc_t2: m.acc_t2!,
    delta: m.delta_t1_prime_t2!,
    i_to_c: m.delta_i_to_c!,
    c_to_i: m.delta_c_to_i!,
    tokens: summary.sampled_tokens,
    steps: summary.steps,
    seconds: summary.seconds,
    train_acc_t1_prime: avg("mgrpo/acc_t1_prime"),
  });
  curves[job.algorithm]!.push(lines.map((l) => [l["tokens/sampled_total"]!, l["accuracy"]!]));
}

function stat(rows: Row[], key: string, scale = 100, digits = 1): string {
  const xs = rows.map((r) => r[key]!);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1
    ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1))
    : 0;
  return `${(mean * scale).toFixed(digits)} ± ${(sd * scale).toFixed(digits)}`;
}
const header = [
  "method",
  "held-out before %",
  ...TWO_TURN_COLUMNS,
  "sampled tokens",
  "steps",
  "wall s",
];
const pct = (x: number | undefined) => (x === undefined ? "-" : (100 * x).toFixed(1));
const table = [
  [
    "warm start (intrinsic self-correction)",
    pct(base.acc_t1),
    pct(base.acc_t1),
    pct(base.acc_t1_prime),
    pct(base.acc_t2),
    pct(base.delta_t1_prime_t2),
    pct(base.delta_i_to_c),
    pct(base.delta_c_to_i),
    "0",
    "0",
    "-",
  ],
  ...Object.entries(results).map(([alg, rows]) => [
    alg.toUpperCase(),
    stat(rows, "before"),
    stat(rows, "acc_t1"),
    stat(rows, "acc_t1_prime"),
    stat(rows, "acc_t2"),
    stat(rows, "delta"),
    stat(rows, "i_to_c"),
    stat(rows, "c_to_i"),
    stat(rows, "tokens", 1, 0),
    stat(rows, "steps", 1, 0),
    stat(rows, "seconds", 1, 0),
  ]),
];
const md = [
  `# ${algorithms.map((a) => a.toUpperCase()).join(" vs ")} on the embedded task (${
    new Date().toISOString().slice(0, 10)
  })`,
  "",
  `Seeds ${
    seeds.join(", ")
  }; budget ${budget} sampled completion tokens per run (both MGRPO layers count); GRPO runs configs/tiny-grpo.yaml (100 steps of 8 prompts × 8), MGRPO the embedded default configs/tiny-mgrpo.yaml (16 steps, plus 4 corrections of each response), PPO configs/tiny-ppo.yaml (100 steps of 64 prompts × 1, 2 PPO epochs); each stops at the step that reaches the budget. Mean ± std over seeds; wall time with two runs side by side.`,
  `Acc@t1 is greedy held-out accuracy of the final policy on ${problems.length} problems; Acc@t1' and Acc@t2 are after one and two self-correction prompts (deno task eval --two-turn protocol); the Δ columns are between t1' and t2, as fractions of all problems (%).`,
  "",
  "| " + header.join(" | ") + " |",
  "| " + header.map(() => "---").join(" | ") + " |",
  ...table.map((r) => "| " + r.join(" | ") + " |"),
  "",
  results.mgrpo
    ? `MGRPO's Layer-2 accuracy in training (mean of its last 5 steps, sampled): ${
      stat(results.mgrpo, "train_acc_t1_prime")
    } %.`
    : "",
  "",
  "Command: `deno task compare` (" +
  `--seeds ${values.seeds} --budget ${budget} --algorithms ${values.algorithms}` + ").",
  "",
  "![training accuracy against sampled tokens](accuracy.svg)",
  "",
].join("\n");
await Deno.writeTextFile(`${out}/report.md`, md);

// SVG: training (Layer-1, sampled) accuracy against cumulative sampled tokens, one line a run.
const W = 640, H = 360, P = 48;
const maxX = Math.max(budget, ...Object.values(curves).flat().flat().map(([x]) => x));
const colors: Record<string, string> = { grpo: "#1f77b4", mgrpo: "#d62728", ppo: "#2ca02c" };
const path = (pts: [number, number][]) =>
  pts.map(([x, y], i) =>
    `${i ? "L" : "M"}${(P + (x / maxX) * (W - 2 * P)).toFixed(1)},${
      (H - P - y * (H - 2 * P)).toFixed(1)
    }`
  ).join(" ");
const svg = [
  `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
  `<rect width="${W}" height="${H}" fill="white"/>`,
  `<line x1="${P}" y1="${H - P}" x2="${W - P}" y2="${H - P}" stroke="black"/>`,
  `<line x1="${P}" y1="${P}" x2="${P}" y2="${H - P}" stroke="black"/>`,
  `<text x="${W / 2}" y="${H - 12}" text-anchor="middle">sampled completion tokens (max ${
    maxX.toFixed(0)
  })</text>`,
  `<text x="14" y="${H / 2}" transform="rotate(-90 14 ${
    H / 2
  })" text-anchor="middle">training accuracy (Layer 1, sampled)</text>`,
  ...[0, 0.5, 1].map((y) =>
    `<text x="${P - 6}" y="${H - P - y * (H - 2 * P) + 4}" text-anchor="end">${y}</text>`
  ),
  ...Object.entries(curves).flatMap(([alg, runs]) =>
    runs.map((pts) =>
      `<path d="${path(pts)}" fill="none" stroke="${
        colors[alg]
      }" stroke-width="1.5" opacity="0.8"/>`
    )
  ),
  ...Object.keys(curves).map((alg, i) =>
    `<text x="${W - P - 80}" y="${P + 16 * i}" fill="${colors[alg]}">${alg.toUpperCase()}</text>`
  ),
  `</svg>`,
].join("\n");
await Deno.writeTextFile(`${out}/accuracy.svg`, svg);
console.log(md);
console.log(formatTable(header, table));
Deno.exit(0); // threaded wasm workers would keep the process alive
