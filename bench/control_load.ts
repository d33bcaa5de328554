/**
 * `deno task bench:control`: does the control server slow training down under load?
 *
 * Starts a real `cli/train.ts` run (the tiny GRPO config, no evaluation, steps enough to
 * outlast the bench) as a child process, then alternates windows of `--window` seconds:
 * quiet, loaded, quiet, loaded, quiet. In a loaded window `--clients` clients each hold
 * `GET /events` open and poll `GET /status` every `--poll-ms` ms (from this process, so the
 * load's client side runs beside training as a dashboard's would). Training throughput of a
 * window is Σ sampled tokens / Σ step time over the steps that finished inside it (from
 * `metrics.jsonl`). Prints both throughputs, the drop, request counts and failures, and a
 * JSON line; exits 1 when a request failed.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { REPO_ROOT } from "../cli/common.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    clients: { type: "string", default: "200" },
    window: { type: "string", default: "30" },
    "poll-ms": { type: "string", default: "1000" },
    config: { type: "string", default: "configs/tiny-grpo.yaml" },
    help: { type: "boolean", short: "h" },
  },
});
if (args.values.help) {
  console.log(
    "Usage: deno task bench:control [--clients 200] [--window 30] [--poll-ms 1000] [--config FILE]",
  );
  Deno.exit(0);
}
const CLIENTS = Number(args.values.clients);
const WINDOW_S = Number(args.values.window);
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

const runDir = await Deno.makeTempDir({ prefix: "bench_control_" });
const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-net",
    "cli/train.ts",
    "--config",
    args.values.config,
    "--set",
    "run.steps=100000",
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

/** Reads the steps finished so far, each with the wall-clock time this bench first saw it. */
const seen = new Map<number, { line: StepLine; at: number }>();
async function pollMetrics(): Promise<void> {
  let text = "";
  try {
    text = await Deno.readTextFile(`${runDir}/metrics.jsonl`);
  } catch {
    return;
  }
  const now = performance.now();
  for (const raw of text.split("\n")) {
    if (!raw.trim()) continue;
    let line: StepLine;
    try {
      line = JSON.parse(raw);
    } catch {
      continue; // a line being written
    }
    if (typeof line["time/step"] === "number" && !seen.has(line.step)) {
      seen.set(line.step, { line, at: now });
    }
  }
}
const metricsTimer = setInterval(pollMetrics, 100);

async function waitForControl(): Promise<string> {
  for (let i = 0; i < 1200; i++) {
    try {
      return JSON.parse(await Deno.readTextFile(`${runDir}/control.json`)).url;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error("Cannot run the bench: the training run wrote no control.json in 120 s");
}

/** Tokens per second of training over the steps first seen in [from, to). */
function throughput(from: number, to: number): { tokensPerS: number; steps: number } {
  let tokens = 0, seconds = 0, steps = 0;
  for (const { line, at } of seen.values()) {
    if (at < from || at >= to) continue;
    tokens += (line["completions/total_tokens"] ?? 0) +
      (line["layer2/completions/total_tokens"] ?? 0);
    seconds += line["time/step"];
    steps++;
  }
  return { tokensPerS: seconds > 0 ? tokens / seconds : NaN, steps };
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

const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));
const counts: LoadCounts = {
  statusOk: 0,
  statusFailed: 0,
  eventsOpened: 0,
  eventsReceived: 0,
  eventsFailed: 0,
  statusLatencyMs: [],
};
let code = 0;
try {
  const url = await waitForControl();
  // Warm-up: wait until three steps have finished.
  while (seen.size < 3) await sleep(0.5);
  const windows: { kind: "quiet" | "loaded"; tokensPerS: number; steps: number }[] = [];
  for (const kind of ["quiet", "loaded", "quiet", "loaded", "quiet"] as const) {
    const from = performance.now();
    if (kind === "loaded") {
      const abort = new AbortController();
      const running = load(url, abort.signal, counts);
      await sleep(WINDOW_S);
      abort.abort();
      await running;
    } else {
      await sleep(WINDOW_S);
    }
    await pollMetrics();
    windows.push({ kind, ...throughput(from, performance.now()) });
    const w = windows.at(-1)!;
    console.log(
      `${kind.padEnd(6)} window: ${
        w.tokensPerS.toFixed(0)
      } tokens/s of training over ${w.steps} steps`,
    );
  }
  const mean = (kind: string) => {
    const ws = windows.filter((w) => w.kind === kind);
    return ws.reduce((a, w) => a + w.tokensPerS, 0) / ws.length;
  };
  const quiet = mean("quiet"), loaded = mean("loaded");
  const drop = (quiet - loaded) / quiet;
  const latencies = [...counts.statusLatencyMs].sort((a, b) => a - b);
  const p = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  console.log(
    `\n${CLIENTS} clients, each holding GET /events open and polling GET /status every ${POLL_MS} ms, ` +
      `${WINDOW_S} s windows:`,
  );
  console.log(
    `training throughput quiet ${quiet.toFixed(0)} tokens/s, loaded ${
      loaded.toFixed(0)
    } tokens/s: ` +
      `${drop >= 0 ? "drop" : "gain"} ${(100 * Math.abs(drop)).toFixed(1)}%`,
  );
  console.log(
    `GET /status: ${counts.statusOk} ok, ${counts.statusFailed} failed, latency p50 ${
      p(0.5)?.toFixed(1)
    } ms, p99 ${p(0.99)?.toFixed(1)} ms`,
  );
  console.log(
    `GET /events: ${counts.eventsOpened} streams opened, ${counts.eventsFailed} failed, ` +
      `${counts.eventsReceived} events received`,
  );
  console.log(JSON.stringify({
    clients: CLIENTS,
    window_s: WINDOW_S,
    poll_ms: POLL_MS,
    quiet_tokens_per_s: quiet,
    loaded_tokens_per_s: loaded,
    drop,
    windows,
    status_ok: counts.statusOk,
    status_failed: counts.statusFailed,
    events_opened: counts.eventsOpened,
    events_failed: counts.eventsFailed,
    events_received: counts.eventsReceived,
  }));
  if (counts.statusFailed > 0 || counts.eventsFailed > 0) code = 1;
} finally {
  clearInterval(metricsTimer);
  child.kill("SIGKILL");
  const out = await child.output();
  if (code !== 0) console.error(new TextDecoder().decode(out.stderr).slice(-2000));
  await Deno.remove(runDir, { recursive: true });
}
Deno.exit(code);
