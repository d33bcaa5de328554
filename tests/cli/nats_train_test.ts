/**
 * `configs/smoke-nats.yaml` in real runs: the Sampler, the Verifier and the Learner in three
 * OS processes, talking to the coordinator through a real nats-server (`deno task test:all` starts one
 * and sets NATS_URL; else the test starts `nats-server` from PATH; with CI=true a missing
 * server fails the tests). Same seed, same metrics as a `Trainer` with every actor in this
 * process; a killed Sampler process is reported and the run stops cleanly, or, with a
 * restart, goes on with nothing lost or repeated.
 */
import assert from "node:assert/strict";
import { TRAIN_RUN_ARGS } from "../../cli/common.ts";
import { natsServer, REPO_ROOT } from "../helpers.ts";
import { trainInProcess } from "../training/run_trainer.ts";
import { readSamples } from "../../training/samples_file.ts";

const CI = Deno.env.get("CI") === "true";
const server = await natsServer().catch(() => undefined);
if (server === undefined && CI) {
  throw new Error("Cannot run the NATS training tests: no NATS_URL and no nats-server (CI)");
}
const ignore = server === undefined;

const COMMON = ["eval.before=false", "control.enabled=false"];
const IN_PROCESS = ["placement.sampler=inprocess", "placement.verifier=inprocess"]
  .concat("placement.learner=inprocess");

/** A child process whose stderr+stdout lines are collected and can be waited for. */
class Proc {
  readonly child: Deno.ChildProcess;
  readonly lines: { at: number; text: string }[] = [];
  readonly #waiters: { re: RegExp; resolve(at: number): void }[] = [];
  readonly drained: Promise<void>;

  constructor(args: string[], env: Record<string, string>) {
    this.child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.drained = Promise.all([this.#read(this.child.stdout), this.#read(this.child.stderr)])
      .then(() => {});
  }

  async #read(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const text of parts) this.#line(text);
    }
    if (rest) this.#line(rest);
  }

  #line(text: string): void {
    const at = performance.now();
    this.lines.push({ at, text });
    for (const w of [...this.#waiters]) {
      if (w.re.test(text)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(at);
      }
    }
  }

  /** When a line matching `re` was (or will be) printed; rejects after `ms` with the log. */
  waitFor(re: RegExp, ms = 120_000): Promise<number> {
    const seen = this.lines.find((l) => re.test(l.text));
    if (seen) return Promise.resolve(seen.at);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.findIndex((w) => w.re === re), 1);
        reject(new Error(`No line matched ${re} within ${ms} ms:\n${this.log}`));
      }, ms);
      this.#waiters.push({
        re,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      });
    });
  }

  /** Ends the process if it still runs (after a failed assertion). */
  async end(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.child.status;
    await this.drained;
  }

  get log(): string {
    return this.lines.map((l) => l.text).join("\n");
  }
}

function trainArgs(runDir: string, sets: string[]): string[] {
  return [
    ...TRAIN_RUN_ARGS,
    "--config",
    "configs/smoke-nats.yaml",
    ...COMMON.concat(sets).flatMap((s) => ["--set", s]),
    "--run-dir",
    runDir,
  ];
}

/**
 * The smoke-nats run with every actor in this process (a `Trainer`): the reference the runs
 * with actors placed apart must equal. smoke-nats runs every process on one wasm thread, as
 * runs in this process do.
 */
async function trainHere(runDir: string, sets: string[]): Promise<void> {
  await trainInProcess(runDir, "configs/smoke-nats.yaml", [...COMMON, ...sets, ...IN_PROCESS]);
}

async function train(runDir: string, sets: string[]): Promise<{ code: number; log: string }> {
  const proc = new Proc(trainArgs(runDir, sets), { NATS_URL: server!.url });
  const timer = setTimeout(() => void proc.end(), 180_000); // a hung run fails the test
  const { code } = await proc.child.status;
  clearTimeout(timer);
  await proc.drained;
  return { code, log: proc.log };
}

async function records(runDir: string): Promise<Record<string, number>[]> {
  return (await Deno.readTextFile(`${runDir}/metrics.jsonl`)).split("\n").filter((l) => l)
    .map((l) => JSON.parse(l) as Record<string, number>);
}

/** A record without wall-clock fields, scheduling artefacts and restart counters. */
function numbers(record: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(record).filter(([k]) => !/^(time|throughput|queue|restarts)\//.test(k)),
  );
}

/** The actor processes of the run named `name` still alive. */
async function actorProcesses(name: string): Promise<string[]> {
  const out = await new Deno.Command("ps", { args: ["-eo", "args"] }).output();
  return new TextDecoder().decode(out.stdout).split("\n")
    .filter((l) => l.includes("cli/actor.ts") && l.includes(`run.name=${name}`));
}

async function noActorsLeft(name: string, withinMs: number): Promise<string[]> {
  const deadline = performance.now() + withinMs;
  let left = await actorProcesses(name);
  while (left.length > 0 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    left = await actorProcesses(name);
  }
  return left;
}

const unique = () => `nats-${crypto.randomUUID().slice(0, 8)}`;

Deno.test({
  name:
    "smoke-nats: Sampler, Verifier and Learner in three processes train as in-process (also durable)",
  ignore,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "nats-train-" });
    const name = unique();
    try {
      await trainHere(`${tmp}/local`, [`run.name=${name}-local`]);
      const remote = await train(`${tmp}/remote`, [`run.name=${name}`]);
      assert.equal(remote.code, 0, remote.log);
      for (const actor of ["sampler", "verifier", "learner"]) {
        assert.match(remote.log, new RegExp(`actor ${actor}: ready \\(pid \\d+\\)`));
      }
      const a = await records(`${tmp}/local`);
      const b = await records(`${tmp}/remote`);
      assert.deepEqual(b.map((r) => r.step), [1, 2, 2]); // two steps, the evaluation after
      assert.ok(b[0]!["completions/mean_length"]! > 0);
      assert.deepEqual(b.map((r) => r["policy_version/sampler"]), [0, 1, undefined]);
      assert.deepEqual(b.map(numbers), a.map(numbers));
      // The Learner's StepStats crossed NATS (validated on receipt): the same samples.
      const samples = await readSamples(`${tmp}/remote`);
      assert.deepEqual(samples.map((l) => l.step), [1, 2]);
      assert.deepEqual(samples, await readSamples(`${tmp}/local`));
      assert.deepEqual(await noActorsLeft(name, 30_000), []);
      // nats.durable: the rollouts go through a JetStream stream; still the same run.
      const durable = await train(`${tmp}/durable`, [`run.name=${name}-d`, "nats.durable=true"]);
      assert.equal(durable.code, 0, durable.log);
      assert.deepEqual((await records(`${tmp}/durable`)).map(numbers), a.map(numbers));
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

/**
 * Starts the Sampler by hand (`deno task actor sampler`), then the coordinator (which starts
 * the Verifier and the Learner), and kills the Sampler with SIGKILL while it samples step 2.
 */
async function killSamplerRun(runDir: string, name: string, sets: string[]) {
  const env = { NATS_URL: server!.url, MGRPO_ACTOR_TRACE: "1" };
  const overrides = [`run.name=${name}`, "run.steps=3", ...COMMON, ...sets];
  const sampler = new Proc([
    "run",
    "--allow-all",
    `${REPO_ROOT}cli/actor.ts`,
    "sampler",
    "--config",
    "configs/smoke-nats.yaml",
    "--nats",
    server!.url,
    ...overrides.flatMap((s) => ["--set", s]),
  ], env);
  let coordinator: Proc | undefined;
  try {
    await sampler.waitFor(/actor sampler: ready/);
    coordinator = new Proc(trainArgs(runDir, overrides.slice(0)), { NATS_URL: server!.url });
    await sampler.waitFor(/handling Generate train 2/);
    sampler.child.kill("SIGKILL");
    await sampler.child.status;
    await sampler.drained;
    // The coordinator notices the lost host and says so (the wait is a deadline for a hang,
    // not a bound on how soon).
    await coordinator.waitFor(/actor "sampler": The host of actor "sampler"/);
    const { code } = await coordinator.child.status;
    await coordinator.drained;
    return { code, log: coordinator.log };
  } catch (error) {
    await sampler.end();
    await coordinator?.end();
    throw error;
  }
}

Deno.test({
  name: "smoke-nats: a killed Sampler process is reported and the run stops cleanly",
  ignore,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "nats-train-" });
    const name = unique();
    try {
      const run = await killSamplerRun(`${tmp}/run`, name, []);
      assert.equal(run.code, 1, run.log);
      assert.match(
        run.log,
        /ActorFailed: actor "sampler" failed while handling "(Generate|HostLost|Weights)"/,
      );
      // Step 1 was trained and written; nothing after the loss.
      assert.deepEqual((await records(`${tmp}/run`)).map((r) => r.step), [1]);
      // The Verifier and Learner processes the coordinator started are gone too.
      assert.deepEqual(await noActorsLeft(name, 30_000), []);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "smoke-nats: with max_restarts a killed Sampler is restarted and no rollout is lost or repeated",
  ignore,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "nats-train-" });
    const name = unique();
    try {
      const restarts = ["runtime.max_restarts={sampler: 1}"];
      const run = await killSamplerRun(`${tmp}/run`, name, restarts);
      assert.equal(run.code, 0, run.log);
      await trainHere(`${tmp}/local`, [`run.name=${name}-local`, "run.steps=3"]);
      const a = await records(`${tmp}/local`);
      const b = await records(`${tmp}/run`);
      assert.deepEqual(b.map((r) => r.step), [1, 2, 3, 3]);
      assert.deepEqual(b.map((r) => r["restarts/sampler"]), [undefined, 1, 1, undefined]);
      // B·G = 2 × 4 rollouts trained on in every step, none lost, none twice; same samples.
      assert.deepEqual(b.map((r) => r["train/rows"]), a.map((r) => r["train/rows"]));
      assert.deepEqual(b.map(numbers), a.map(numbers));
      assert.deepEqual(await noActorsLeft(name, 30_000), []);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

// The shared server goes once every test of this file has run (a hook, not a test).
Deno.test.afterAll(async () => {
  await server?.stop();
});
