/**
 * Injected faults in real `cli/train.ts` runs (`faults:` and `runtime.max_restarts`): with a
 * restart left the run completes and every step trains on all of its rollouts, once.
 */
import assert from "node:assert/strict";
import { comparable, metricsRecords, runTrain } from "../helpers.ts";

function train(runDir: string, sets: string[]): Promise<{ code: number; log: string }> {
  const common = ["run.steps=3", "eval.before=false", "eval.after=false", "control.enabled=false"];
  return runTrain(runDir, "configs/smoke-grpo.yaml", [...common, ...sets]);
}

async function steps(runDir: string): Promise<Record<string, number>[]> {
  return (await metricsRecords(runDir)).filter((r) => !("eval/accuracy" in r));
}

/** A step record without wall-clock fields and restart counters. */
const numbers = comparable;

Deno.test("actors that throw at step 2 are restarted and the run equals a run without the fault", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "faults-" });
  try {
    const clean = await train(`${tmp}/clean`, []);
    assert.equal(clean.code, 0, clean.log);
    const a = await steps(`${tmp}/clean`);
    for (const actor of ["verifier", "sampler", "prompt_source"]) {
      const faulty = await train(`${tmp}/${actor}`, [
        `faults=[{actor: ${actor}, step: 2, kind: throw}]`,
        `runtime.max_restarts={${actor}: 1}`,
      ]);
      assert.equal(faulty.code, 0, faulty.log);
      const b = await steps(`${tmp}/${actor}`);
      assert.deepEqual(b.map((r) => r.step), [1, 2, 3]);
      assert.deepEqual(b.map((r) => r[`restarts/${actor}`]), [undefined, 1, 1], actor);
      // The redelivered message was handled once, from the state before the failed attempt:
      // same prompts, same samples, same rewards, same updates.
      assert.deepEqual(b.map(numbers), a.map(numbers), actor);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a sampler fault without restarts stops the run with the actor and message named", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "faults-" });
  try {
    const run = await train(`${tmp}/run`, ["faults=[{actor: sampler, step: 2, kind: throw}]"]);
    assert.equal(run.code, 1, run.log);
    assert.match(
      run.log,
      /ActorFailed: actor "sampler" failed while handling "Generate": injected fault/,
    );
    assert.deepEqual((await steps(`${tmp}/run`)).map((r) => r.step), [1]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a killed verifier worker loses no rollout and counts none twice", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "faults-" });
  try {
    const run = await train(`${tmp}/run`, [
      "reward.checker=math",
      "reward.workers=2",
      "faults=[{actor: verifier, step: 2, kind: exit_worker}]",
    ]);
    assert.equal(run.code, 0, run.log);
    const records = await steps(`${tmp}/run`);
    assert.deepEqual(records.map((r) => r.step), [1, 2, 3]);
    // B·G = 2 prompts × 4 completions trained on in every step, none lost, none twice.
    assert.deepEqual(records.map((r) => r["train/rows"]), [8, 8, 8]);
    assert.deepEqual(records.map((r) => r["policy_version/sampler"]), [0, 1, 2]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("runtime.max_restarts refuses the actors a restart would silently change", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "faults-" });
  try {
    const run = await train(`${tmp}/run`, ["runtime.max_restarts={learner: 1}"]);
    assert.equal(run.code, 2, run.log);
    assert.match(
      run.log,
      /field "runtime\.max_restarts\.learner".*cannot restart the learner: its optimizer moments would be lost/,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
