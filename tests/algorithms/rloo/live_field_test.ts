/**
 * A plug-in's own live field, declared in its folder only (`algorithms/rloo/mod.ts`):
 * `rloo.epsilon` is patched like a built-in field, validated with the plug-in's schema, reaches
 * the Learner's algorithm, is saved in the checkpoint and comes back on resume as a value.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  algorithm as rloo,
  rlooAlgorithm,
  RlooConfigSchema,
} from "../../../algorithms/rloo/mod.ts";
import { builtinAlgorithms } from "../../../algorithms/builtins.ts";
import { liveSectionSchemas } from "../../../config/schema.ts";
import { loadConfigWith } from "../../../config/load.ts";
import { ConfigPatchError, liveFieldsFor, RunControl } from "../../../server/run_control.ts";
import type { LocalLoopControl } from "../../../server/loop_control.ts";
import { loadConfigWithPlugins } from "../../../training/plugins.ts";
import { readTrainerState, resumePoint } from "../../../training/resume.ts";
import { Trainer } from "../../../training/trainer.ts";
import { REPO_ROOT, stepRecords } from "../../helpers.ts";

const registry = () => builtinAlgorithms().register(rloo);

Deno.test("rloo.epsilon is live: the plug-in declares it and the Learner's algorithm applies it", () => {
  assert.ok(liveFieldsFor(rloo).includes("rloo.epsilon"));
  assert.ok(liveFieldsFor(rloo).includes("learner.lr")); // the shared ones stay
  assert.ok(!liveFieldsFor(rloo).includes("grpo.beta"));
  // One token, ratio e^0.3 ≈ 1.35, advantage 1: the clipped surrogate is -(1 + ε).
  const algorithm = rlooAlgorithm(RlooConfigSchema.parse({ loss_type: "grpo" }), 1);
  const loss = () =>
    tf.tidy(() =>
      algorithm.loss({
        logp: tf.tensor2d([[0.3]]),
        oldLogp: tf.tensor2d([[0]]),
        refLogp: tf.tensor2d([[0.3]]),
        advantages: tf.tensor1d([1]),
        mask: tf.tensor2d([[1]]),
      }, { rowFraction: 1, numItemsInBatch: 1 }).loss.dataSync()[0]!
    );
  assert.ok(Math.abs(loss() - -1.2) < 1e-6);
  algorithm.configure!({ type: "Configure", values: { "rloo.epsilon": 0.1, "learner.lr": 1 } });
  assert.ok(Math.abs(loss() - -1.1) < 1e-6);
});

Deno.test("PATCH of rloo.epsilon is validated with the plug-in's section schema", async () => {
  const config = loadConfigWith("inline.yaml", {
    text: "algorithm: rloo\nrloo:\n  epsilon: 0.2\n",
    sections: registry().sections(),
  });
  const control = new RunControl(config as never, {
    liveFields: liveFieldsFor(rloo),
    sectionSchemas: liveSectionSchemas(registry().sections()),
  });
  assert.deepEqual(await control.patchConfig({ rloo: { epsilon: 0.1 } }), [
    { field: "rloo.epsilon", old: 0.2, new: 0.1 },
  ]);
  await assert.rejects(() => control.patchConfig({ "rloo.epsilon": 1.5 }), (e) => {
    assert.ok(e instanceof ConfigPatchError);
    assert.equal(e.kind, "invalid");
    assert.match(e.message, /field "rloo\.epsilon" must be < 1: current value is 1\.5/);
    return true;
  });
  await assert.rejects(() => control.patchConfig({ "rloo.loss_type": "bnpo" }), (e) => {
    assert.ok(e instanceof ConfigPatchError);
    assert.equal(e.kind, "not_live");
    return true;
  });
});

/** Two steps of RLOO on the smoke config, in this process. */
async function rlooRun(runDir: string, sets: string[], patch?: Record<string, unknown>) {
  const { config, registry } = await loadConfigWithPlugins(`${REPO_ROOT}configs/smoke-grpo.yaml`, {
    overrides: [
      `plugins=[${REPO_ROOT}algorithms/rloo/mod.ts]`,
      "algorithm=rloo",
      "model.backend=wasm",
      "model.wasm_threads=1",
      "control.enabled=false",
      "eval.before=false",
      "eval.after=false",
      "grpo.num_iterations=2", // the second iteration's ratio is not 1: ε matters
      "learner.lr=0.01",
      "learner.warmup_ratio=0", // step 1 must move the policy for ε to matter
      ...sets,
    ],
  });
  const trainer = await Trainer.create(config, {
    runDir,
    registry,
    log: () => {},
    warn: () => {},
  });
  try {
    if (patch) await (trainer.control as LocalLoopControl).control.patchConfig(patch);
    await trainer.run();
  } finally {
    await trainer.close();
  }
}

Deno.test("a live rloo.epsilon change trains as if set from the start, is checkpointed and resumed as a value", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rloo-live-" });
  const backend = tf.getBackend(); // the runs switch this process to wasm: switch back after
  try {
    await rlooRun(`${dir}/patched`, [], { "rloo.epsilon": 0.05 });
    await rlooRun(`${dir}/set`, ["rloo.epsilon=0.05"]);
    await rlooRun(`${dir}/default`, []);
    const patched = await stepRecords(`${dir}/patched`);
    assert.equal(patched.length, 2);
    assert.deepEqual(patched, await stepRecords(`${dir}/set`));
    // ε matters in this run (the second iteration's ratios leave [0.95, 1.05]): with the
    // default 0.2 the step differs, so the equality above is the patch taking effect.
    const unpatched = await stepRecords(`${dir}/default`);
    assert.notEqual(unpatched[0]!["clip_ratio/region_mean"], patched[0]!["clip_ratio/region_mean"]);
    const state = await readTrainerState(`${dir}/patched/checkpoint-2`);
    assert.equal(state.live_config?.["rloo.epsilon"], 0.05);
    // The run folder's config.yaml still says 0.2; the checkpoint's live value wins on resume.
    const point = await resumePoint(`${dir}/patched`);
    const { config } = await loadConfigWithPlugins(`${dir}/patched/config.yaml`, {
      values: point.saved.live_config ?? {},
    });
    assert.equal((config.rloo as { epsilon: number }).epsilon, 0.05);
  } finally {
    await tf.setBackend(backend);
    await Deno.remove(dir, { recursive: true });
  }
});
