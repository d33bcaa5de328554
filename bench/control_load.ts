/**
 * `deno task bench:control`: does the control server slow training down under load?
 *
 * Runs the same short training run (the tiny GRPO config, `--steps` steps, no evaluation:
 * about 35 s) `2 × --pairs` times, alternating quiet and loaded. A run is deterministic, so
 * every run computes exactly the same steps and only the load differs. During a loaded run
 * `--clients` clients each hold `GET /events` open and poll `GET /status` every `--poll-ms`
 * ms, from this process, for the whole run. Training throughput = Σ sampled tokens / Σ step
 * time over steps 2.. (from `metrics.jsonl`). Prints both throughputs, the drop, request
 * counts, latencies and failures, and a JSON line; exits 1 when a request failed.
 *
 * @module
 */
import { TRAIN_RUN_ARGS } from "../cli/common.ts";
import { REPO_ROOT } from "../training/setup.ts";
import { waitForControlFile } from "../server/serve.ts";
import { benchArgs } from "./cli.ts";

const args = {
  values: benchArgs(
    "bench:control",
    "Training speed while clients poll the control server, against a run without them.",
    {
      clients: { type: "string", default: "200", placeholder: "N", help: "Polling clients" },
      steps: { type: "string", default: "8", placeholder: "N", help: "Steps per run" },
      pairs: { type: "string", default: "3", placeholder: "N", help: "Loaded/unloaded run pairs" },
      "poll-ms": { type: "string", default: "1000", placeholder: "MS", help: "Poll interval" },
      config: {
        type: "string",
        default: "configs/tiny-grpo.yaml",
        placeholder: "FILE",
        help: "Config",
      },
    },
  ),
};
const CLIENTS = Number(args.values.clients);
const STEPS = Number(args.values.steps);
const PAIRS = Number(args.values.pairs);
const POLL_MS = Number(args.values["poll-ms"]);

interface StepLine {
  step: number;
  "time/step": number;
  "completions/total_tokens"?: number;
  "layer2/completions/total_tokens"?: number;
}

interface LoadCounts {
  statusOk: number;
  statusFailed: number;
  eventsOpened: number;
  eventsReceived: number;
  eventsFailed: number;
  statusLatencyMs: number[];
}

/** One training run of `--steps` steps; `loaded` runs the clients for its whole length. */
async function run(loaded: boolean, counts: LoadCounts): Promise<StepLine[]> {
  const runDir = await Deno.makeTempDir({ prefix: "bench_control_" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...TRAIN_RUN_ARGS,
      "--config",
      args.values.config,
      "--set",
      `run.steps=${STEPS}`,
      "--set",
      "eval.before=false",
      "--set",
      "eval.after=false",
      "--set",
      "run.log_every=1000000",
      "--run-dir",
      runDir,
    ],
    cwd: REPO_ROOT,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const abort = new AbortController();
  let clients: Promise<void> = Promise.resolve();
  try {
    if (loaded) {
      const { url } = await waitForControlFile(runDir);
      clients = load(url, abort.signal, counts);
      // The clients stop once the last step is recorded, before the run closes its server.
      lastStep(url).then(() => abort.abort(), () => abort.abort());
    }
    const out = await child.output();
    if (out.code !== 0) {
      throw new Error(
        `Cannot run the bench: the training run failed (exit ${out.code}): ${
          new TextDecoder().decode(out.stderr).slice(-2000)
        }`,
      );
    }
    abort.abort();
    await clients;
    const text = await Deno.readTextFile(`${runDir}/metrics.jsonl`);
    return text.trim().split("\n").map((l) => JSON.parse(l) as StepLine)
      .filter((l) => typeof l["time/step"] === "number");
  } finally {
    abort.abort();
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await Deno.remove(runDir, { recursive: true });
  }
}

/** Resolves when the run's event stream reports step `STEPS` (or the run ending). */
async function lastStep(url: string): Promise<void> {
  const res = await fetch(`${url}/events`);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      text += value;
      for (const m of text.matchAll(/"type":"(step|state)","(?:step|state)":("?\w+"?)/g)) {
        if (m[1] === "step" && Number(m[2]) >= STEPS) return;
        if (m[1] === "state" && /stopp|fail/.test(m[2]!)) return;
      }
      text = text.slice(text.lastIndexOf("\n\n") + 1);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Sampled tokens and summed step time of steps 2.. (step 1 warms the kernels up). */
function measure(lines: StepLine[]): { tokens: number; seconds: number } {
  let tokens = 0, seconds = 0;
  for (const line of lines) {
    if (line.step < 2) continue;
    tokens += (line["completions/total_tokens"] ?? 0) +
      (line["layer2/completions/total_tokens"] ?? 0);
    seconds += line["time/step"];
  }
  return { tokens, seconds };
}

/** Runs the clients until `signal` aborts. */
async function load(url: string, signal: AbortSignal, counts: LoadCounts): Promise<void> {
  const client = async (k: number) => {
    const events = fetch(`${url}/events`, { signal }).then(async (res) => {
      if (!res.ok || !res.body) {
        counts.eventsFailed++;
        return;
      }
      counts.eventsOpened++;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          counts.eventsReceived += value.split("\n\n").length - 1;
        }
      } catch (e) {
        if (!signal.aborted) {
          counts.eventsFailed++;
          console.error(`events stream ${k}: ${(e as Error).message}`);
        }
      }
    }).catch((e) => {
      if (!signal.aborted) {
        counts.eventsFailed++;
        console.error(`events ${k}: ${(e as Error).message}`);
      }
    });
    // Spread the polls over the interval.
    await new Promise((r) => setTimeout(r, (k * POLL_MS) / CLIENTS));
    while (!signal.aborted) {
      const t0 = performance.now();
      try {
        const res = await fetch(`${url}/status`, { signal });
        await res.json();
        if (res.ok) {
          counts.statusOk++;
          counts.statusLatencyMs.push(performance.now() - t0);
        } else counts.statusFailed++;
      } catch (e) {
        if (!signal.aborted) {
          counts.statusFailed++;
          console.error(`status ${k}: ${(e as Error).message}`);
        }
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    await events;
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, k) => client(k)));
}

const counts: LoadCounts = {
  statusOk: 0,
  statusFailed: 0,
  eventsOpened: 0,
  eventsReceived: 0,
  eventsFailed: 0,
  statusLatencyMs: [],
};
const runs: { kind: "quiet" | "loaded"; tokens: number; seconds: number; tokensPerS: number }[] =
  [];
for (let pair = 0; pair < PAIRS; pair++) {
  for (const kind of ["quiet", "loaded"] as const) {
    const { tokens, seconds } = measure(await run(kind === "loaded", counts));
    runs.push({ kind, tokens, seconds, tokensPerS: tokens / seconds });
    console.log(
      `${kind.padEnd(6)} run: ${tokens} tokens in ${seconds.toFixed(1)} s of steps 2-${STEPS}: ` +
        `${(tokens / seconds).toFixed(0)} tokens/s`,
    );
  }
}
const same = new Set(runs.map((r) => r.tokens)).size === 1;
const total = (kind: string) => {
  const rs = runs.filter((r) => r.kind === kind);
  return rs.reduce((a, r) => a + r.tokens, 0) / rs.reduce((a, r) => a + r.seconds, 0);
};
const quiet = total("quiet"), loaded = total("loaded");
const drop = (quiet - loaded) / quiet;
const latencies = [...counts.statusLatencyMs].sort((a, b) => a - b);
const p = (q: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
console.log(
  `\n${CLIENTS} clients, each holding GET /events open and polling GET /status every ${POLL_MS} ms ` +
    `for a whole run; ${PAIRS} quiet/loaded pairs of ${STEPS}-step runs (${
      same ? "the same" : "NOT the same"
    } sampled tokens in every run):`,
);
console.log(
  `training throughput quiet ${quiet.toFixed(0)} tokens/s, loaded ${loaded.toFixed(0)} tokens/s: ` +
    `${drop >= 0 ? "drop" : "gain"} ${(100 * Math.abs(drop)).toFixed(1)}%`,
);
console.log(
  `GET /status: ${counts.statusOk} ok, ${counts.statusFailed} failed, latency p50 ${
    p(0.5).toFixed(1)
  } ms, p99 ${p(0.99).toFixed(1)} ms, max ${p(1).toFixed(1)} ms`,
);
console.log(
  `GET /events: ${counts.eventsOpened} streams opened, ${counts.eventsFailed} failed, ` +
    `${counts.eventsReceived} events received`,
);
console.log(JSON.stringify({
  clients: CLIENTS,
  poll_ms: POLL_MS,
  steps: STEPS,
  pairs: PAIRS,
  quiet_tokens_per_s: quiet,
  loaded_tokens_per_s: loaded,
  drop,
  runs,
  status_ok: counts.statusOk,
  status_failed: counts.statusFailed,
  status_p50_ms: p(0.5),
  status_p99_ms: p(0.99),
  events_opened: counts.eventsOpened,
  events_failed: counts.eventsFailed,
  events_received: counts.eventsReceived,
}));
Deno.exit(counts.statusFailed > 0 || counts.eventsFailed > 0 ? 1 : 0);
