/**
 * `placement: { sampler: worker }` in real `cli/train.ts` runs: the Sampler in a Web Worker
 * trains exactly as the in-process Sampler does (same seed, same metrics bit for bit but the
 * wall-clock ones), and a bad placement is refused naming the field.
 */
import assert from "node:assert/strict";
import { TRAIN_RUN_ARGS } from "../../cli/common.ts";
import { REPO_ROOT } from "../helpers.ts";

async function train(runDir: string, sets: string[]): Promise<{ code: number; log: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      ...TRAIN_RUN_ARGS,
      "--config",
      "configs/smoke-grpo.yaml",
      ...["run.steps=2", "eval.before=false", "control.enabled=false", "model.wasm_threads=1"]
        .concat(sets).flatMap((s) => ["--set", s]),
      "--run-dir",
      runDir,
    ],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(180_000), // a hung run fails the test instead of blocking it
  }).output();
  const log = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, log };
}

async function records(runDir: string): Promise<Record<string, number>[]> {
  return (await Deno.readTextFile(`${runDir}/metrics.jsonl`)).split("\n").filter((l) => l)
    .map((l) => JSON.parse(l) as Record<string, number>);
}

/** A record without wall-clock fields and scheduling artefacts (mailbox depths). */
function numbers(record: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(record).filter(([k]) => !/^(time|throughput|queue)\//.test(k)),
  );
}

Deno.test("placement.sampler=worker trains exactly as the in-process Sampler", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "worker-train-" });
  try {
    const local = await train(`${tmp}/local`, []);
    assert.equal(local.code, 0, local.log);
    const worker = await train(`${tmp}/worker`, ["placement.sampler=worker"]);
    assert.equal(worker.code, 0, worker.log);
    const a = await records(`${tmp}/local`);
    const b = await records(`${tmp}/worker`);
    // Two steps and the evaluation after them, with real rollouts.
    assert.deepEqual(b.map((r) => r.step), [1, 2, 2]);
    assert.ok(b[0]!["completions/mean_length"]! > 0);
    assert.deepEqual(b.map((r) => r["policy_version/sampler"]), [0, 1, undefined]);
    assert.deepEqual(b.map(numbers), a.map(numbers));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("placement refuses an actor the algorithm does not have, naming it", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "worker-train-" });
  try {
    const unknown = await train(`${tmp}/a`, ["placement.samplr=worker"]);
    assert.equal(unknown.code, 2, unknown.log);
    assert.match(unknown.log, /placement\.samplr.*names no actor: current value is "samplr"/);
    // smoke-grpo has no Corrector (that is MGRPO's): the graph names what it has.
    const absent = await train(`${tmp}/b`, ["placement.corrector=worker"]);
    assert.notEqual(absent.code, 0, absent.log);
    assert.match(absent.log, /field "placement\.corrector" names no actor.*known actors are/);
    const where = await train(`${tmp}/c`, ["placement.sampler=gpu"]);
    assert.equal(where.code, 2, where.log);
    assert.match(where.log, /placement\.sampler/);
    const shared = await train(`${tmp}/d`, [
      "placement.sampler=worker",
      "sampler.share_weights=true",
    ]);
    assert.equal(shared.code, 2, shared.log);
    assert.match(shared.log, /placement\.sampler.*share_weights/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
