/**
 * `sampler.share_weights: true` (one copy of the model, for big models) changes no result:
 * the Sampler samples from the Learner's weights, which a copy would hold anyway.
 */
import assert from "node:assert/strict";
import { TRAIN_RUN_ARGS } from "../../cli/common.ts";
import { REPO_ROOT, stepRecords } from "../helpers.ts";

async function runSteps(runDir: string, share: boolean): Promise<Record<string, number>[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      ...TRAIN_RUN_ARGS,
      "--config",
      "configs/smoke-mgrpo.yaml",
      ...[
        "run.steps=3",
        `sampler.share_weights=${share}`,
        "eval.before=false",
        "eval.after=false",
        "control.enabled=false",
      ].flatMap((s) => ["--set", s]),
      "--run-dir",
      runDir,
    ],
    cwd: REPO_ROOT,
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return await stepRecords(runDir);
}

Deno.test("sampler.share_weights gives the same MGRPO run as a Sampler with its own copy", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "share-" });
  try {
    const copy = await runSteps(`${tmp}/copy`, false);
    const shared = await runSteps(`${tmp}/shared`, true);
    assert.equal(shared.length, 3);
    assert.deepEqual(shared, copy);
    assert.deepEqual(shared.map((r) => r["policy_version/sampler"]), [0, 1, 2]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
