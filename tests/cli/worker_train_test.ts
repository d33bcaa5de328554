/**
 * `placement: { sampler: worker }` in a real `cli/train.ts` process: the Sampler in a Web
 * Worker trains exactly as the in-process Sampler of a `Trainer` in this process does (same
 * seed, same backend, same metrics bit for bit but the wall-clock ones). The placements a run
 * refuses are checked in `tests/training/placement_test.ts`.
 */
import assert from "node:assert/strict";
import { comparable, metricsRecords, runTrain } from "../helpers.ts";
import { IN_PROCESS_SETS, trainInProcess } from "../training/run_trainer.ts";

const COMMON = ["run.steps=2", "eval.before=false"];

const records = metricsRecords;

/** A record without wall-clock fields and scheduling artefacts (mailbox depths). */
const numbers = comparable;

Deno.test("placement.sampler=worker trains exactly as the in-process Sampler", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "worker-train-" });
  try {
    await trainInProcess(`${tmp}/local`, "configs/smoke-grpo.yaml", COMMON);
    // The process gets the overrides of the run in this process: the same backend and threads.
    const worker = await runTrain(
      `${tmp}/worker`,
      "configs/smoke-grpo.yaml",
      [...IN_PROCESS_SETS, ...COMMON, "placement.sampler=worker"],
      { timeoutMs: 180_000 },
    );
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
