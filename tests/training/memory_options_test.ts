/**
 * The options that save memory for big models change no result: `sampler.share_weights`
 * (one copy of the model: the Sampler samples from the Learner's weights, which a copy would
 * hold anyway) and `learner.gradient_checkpointing` (activations recomputed in the backward).
 */
import assert from "node:assert/strict";
import { stepRecords } from "../helpers.ts";
import { trainInProcess } from "./run_trainer.ts";

async function runSteps(runDir: string, sets: string[]): Promise<Record<string, number>[]> {
  const common = ["run.steps=3", "eval.before=false", "eval.after=false"];
  await trainInProcess(runDir, "configs/smoke-mgrpo.yaml", [...common, ...sets]);
  return await stepRecords(runDir);
}

Deno.test("sampler.share_weights gives the same MGRPO run as a Sampler with its own copy", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "share-" });
  try {
    const copy = await runSteps(`${tmp}/copy`, ["sampler.share_weights=false"]);
    const shared = await runSteps(`${tmp}/shared`, ["sampler.share_weights=true"]);
    assert.equal(shared.length, 3);
    assert.deepEqual(shared, copy);
    assert.deepEqual(shared.map((r) => r["policy_version/sampler"]), [0, 1, 2]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("learner.gradient_checkpointing gives the same MGRPO run", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "ckpt-" });
  try {
    const plain = await runSteps(`${tmp}/plain`, [
      "run.steps=2",
      "learner.gradient_checkpointing=false",
    ]);
    const recomputed = await runSteps(`${tmp}/recomputed`, [
      "run.steps=2",
      "learner.gradient_checkpointing=true",
    ]);
    assert.equal(recomputed.length, 2);
    assert.deepEqual(recomputed, plain);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
