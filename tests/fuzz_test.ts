/**
 * Seeded fuzzing of the inputs a run takes from outside: the config loader, the dataset
 * readers, the math verifier and the control API (targets in `tests/fuzz/targets.ts`).
 *
 * Each target runs in a child process (`tests/fuzz/runner.ts`) for a fixed number of cases,
 * however long they take: how fast the cases run is a benchmark's business, not this test's.
 * Only a case that makes no progress at all for {@linkcode HANG_MS}, far longer than any
 * case needs even on a slow, busy machine, counts as a hang: the child is killed (a busy
 * Worker cannot be stopped in Deno 2.9) and the case rebuilt here to report it. Runs are
 * seeded: a failure prints the seed and the case number; `FUZZ_SEED=<seed>` reruns the same
 * cases, `FUZZ_SCALE=10` runs ten times as many.
 *
 * @module
 */
import assert from "node:assert/strict";
import { TrainConfigSchema } from "../algorithms/builtins.ts";
import { createControlApp } from "../server/app.ts";
import { RunControl } from "../server/run_control.ts";
import { caseRng, createTarget, type TargetName } from "./fuzz/targets.ts";
import type { RunnerReport } from "./fuzz/runner.ts";

/**
 * A case that reports no progress for this long is a hang: a safety net against an endless
 * loop, far beyond what any case takes on 2 busy cores, not a speed goal.
 */
const HANG_MS = 60_000;

/** Cases per target (each target takes a few seconds on 2 busy cores). */
const CASES: Record<TargetName, number> = {
  config: 400,
  datasets: 3000,
  verifier: 800,
  control: 400,
};

function envNumber(name: string): number | undefined {
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
    return undefined;
  }
  const text = Deno.env.get(name);
  if (text === undefined || text === "") return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`Invalid ${name}: must be an integer >= 0: current value is "${text}"`);
  }
  return value;
}

const SEED = envNumber("FUZZ_SEED") ?? 20240807;
const SCALE = envNumber("FUZZ_SCALE") ?? 1;

interface RunResult {
  cases: number;
  ms: number;
  notes: { i: number; kind: string; text: string }[];
}

/** Runs `target` in a child process and watches it; throws with the seed on any failure. */
async function fuzz(target: TargetName): Promise<RunResult> {
  const cases = CASES[target] * SCALE;
  const runner = new URL("./fuzz/runner.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-read",
      "--allow-env", // the yaml package reads LOG_TOKENS and LOG_STREAM while parsing
      runner,
      target,
      String(SEED),
      String(cases),
    ],
    cwd: new URL("../", import.meta.url).pathname,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();

  const rerun = `seed ${SEED}; rerun with FUZZ_SEED=${SEED}`;
  let current = -1;
  let lastProgress = performance.now();
  let hung = false;
  const watchdog = setInterval(() => {
    if (performance.now() - lastProgress > HANG_MS) {
      hung = true;
      clearInterval(watchdog);
      child.kill("SIGKILL");
    }
  }, 200);

  const notes: RunResult["notes"] = [];
  let done: { cases: number; ms: number } | undefined;
  let failure: Extract<RunnerReport, { type: "failure" }> | undefined;
  try {
    let buffer = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 1);
        if (line === "") continue;
        const report = JSON.parse(line) as RunnerReport;
        lastProgress = performance.now();
        if (report.type === "case") current = report.i;
        else if (report.type === "note") notes.push(report);
        else if (report.type === "failure") failure = report;
        else done = report;
      }
    }
  } finally {
    clearInterval(watchdog);
  }
  const status = await child.status;
  const errors = (await stderr).trim();

  if (hung) {
    const built = await createTarget(target);
    const input = built.describe(built.makeCase(caseRng(target, SEED, current)));
    throw new Error(
      `Fuzz target "${target}" hung on case ${current} (no progress for ${HANG_MS} ms; ${rerun})\n` +
        `  input: ${input.slice(0, 4000)}`,
    );
  }
  if (failure !== undefined) {
    throw new Error(
      `Fuzz target "${target}" failed on case ${failure.i} (${rerun}): ${failure.message}\n` +
        `  input: ${failure.input.slice(0, 4000)}`,
    );
  }
  if (!status.success || done === undefined) {
    throw new Error(
      `Fuzz target "${target}" crashed after case ${current} (exit code ${status.code}; ${rerun}):\n${
        errors.slice(-4000)
      }`,
    );
  }
  const summary = `fuzz ${target}: ${done.cases} cases in ${done.ms} ms (seed ${SEED})`;
  console.log(
    [summary, ...notes.slice(0, 10).map((n) => `  case ${n.i}, ${n.kind}: ${n.text}`)].join("\n"),
  );
  return { ...done, notes };
}

/** Every one of the target's cases ran: a fuzz run is a fixed number of cases, not a time. */
function assertAllCases(target: TargetName, result: RunResult): void {
  assert.equal(result.cases, CASES[target] * SCALE, `fuzz ${target}: cases run`);
}

Deno.test("loadConfig() answers fuzzed YAML, paths and overrides with a config or a ConfigError naming the file", async () => {
  assertAllCases("config", await fuzz("config"));
});

Deno.test("parseProblemsJsonl() and parseBenchmark() answer fuzzed JSONL with problems or an error naming path and line", async () => {
  assertAllCases("datasets", await fuzz("datasets"));
});

Deno.test("verifyMath() and its parts give a verdict for fuzzed LaTeX without throwing or hanging", async () => {
  // Calls slower than SLOW_CALL_MS are printed, not failed: the VerifierPool bounds those.
  assertAllCases("verifier", await fuzz("verifier"));
});

Deno.test("createControlApp() answers fuzzed requests below 500 and leaves the config alone when it refuses", async () => {
  assertAllCases("control", await fuzz("control"));
});

// --- regressions the fuzzer found ---

Deno.test("createControlApp() answers HEAD /events without leaving an event subscriber", async () => {
  const control = new RunControl(TrainConfigSchema.parse({}));
  const app = createControlApp(control, { token: "t", requireTokenForReads: false });
  const response = await app.request("/events", { method: "HEAD" });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("Content-Type"), "text/event-stream");
  assert.equal(response.body, null);
  assert.equal(control.subscriberCount, 0);
});

Deno.test("createControlApp() refuses a PATCH /config body nested 100,000 deep with 409, not 500", async () => {
  const control = new RunControl(TrainConfigSchema.parse({}));
  const app = createControlApp(control, { token: "t", requireTokenForReads: false });
  const before = control.config;
  const body = '{"a":'.repeat(100_000) + "1" + "}".repeat(100_000);
  const response = await app.request("/config", {
    method: "PATCH",
    headers: { Authorization: "Bearer t", "Content-Type": "application/json" },
    body,
  });
  assert.equal(response.status, 409);
  const { error } = await response.json() as { error: string };
  assert.match(error, /^Cannot change config: field "a\.a\.a\.a/);
  assert.equal(control.config, before);
});
