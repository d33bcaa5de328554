/**
 * `placement: { sampler: worker }` in real `cli/train.ts` runs: the Sampler in a Web Worker
 * trains exactly as the in-process Sampler does (same seed, same metrics bit for bit but the
 * wall-clock ones), and a bad placement is refused naming the field.
 */
import assert from "node:assert/strict";
import { comparable, metricsRecords, runTrain } from "../helpers.ts";

function train(runDir: string, sets: string[]): Promise<{ code: number; log: string }> {
  const common = ["run.steps=2", "eval.before=false", "control.enabled=false"];
  return runTrain(runDir, "configs/smoke-grpo.yaml", [...common, "model.wasm_threads=1", ...sets], {
    timeoutMs: 180_000,
  });
}

const records = metricsRecords;

/** A record without wall-clock fields and scheduling artefacts (mailbox depths). */
const numbers = comparable;

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
