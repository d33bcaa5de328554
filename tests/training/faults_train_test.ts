/**
 * Injected faults in `Trainer` runs (`faults:` and `runtime.max_restarts`): with a restart
 * left the run completes and every step trains on all of its rollouts, once. (A fault without
 * a restart, and the exit code 1 of `deno task train`, is checked in `tests/cli/train_test.ts`.)
 */
import assert from "node:assert/strict";
import { ConfigError } from "../../config/load.ts";
import { loadConfig } from "../../training/config.ts";
import { comparable, metricsRecords, REPO_ROOT } from "../helpers.ts";
import { trainInProcess } from "./run_trainer.ts";

const COMMON = ["run.steps=3", "eval.before=false", "eval.after=false"];

async function train(runDir: string, sets: string[]): Promise<void> {
  await trainInProcess(runDir, "configs/smoke-grpo.yaml", [...COMMON, ...sets]);
}

async function steps(runDir: string): Promise<Record<string, number>[]> {
  return (await metricsRecords(runDir)).filter((r) => !("eval/accuracy" in r));
}

/** A step record without wall-clock fields and restart counters. */
const numbers = comparable;

Deno.test("Trainer.run() restarts actors that throw at step 2 and equals a run without the fault", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "faults-" });
  try {
    await train(`${tmp}/clean`, []);
    const a = await steps(`${tmp}/clean`);
    for (const actor of ["verifier", "sampler", "prompt_source"]) {
      await train(`${tmp}/${actor}`, [
        `faults=[{actor: ${actor}, step: 2, kind: throw}]`,
        `runtime.max_restarts={${actor}: 1}`,
      ]);
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

Deno.test("Trainer.run() loses no rollout and counts none twice when a verifier worker is killed", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "faults-" });
  try {
    await train(`${tmp}/run`, [
      "reward.checker=math",
      "reward.workers=2",
      "faults=[{actor: verifier, step: 2, kind: exit_worker}]",
    ]);
    const records = await steps(`${tmp}/run`);
    assert.deepEqual(records.map((r) => r.step), [1, 2, 3]);
    // B·G = 2 prompts × 4 completions trained on in every step, none lost, none twice.
    assert.deepEqual(records.map((r) => r["train/rows"]), [8, 8, 8]);
    assert.deepEqual(records.map((r) => r["policy_version/sampler"]), [0, 1, 2]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("TrainConfigSchema refuses runtime.max_restarts for the actors a restart would silently change", () => {
  assert.throws(
    () =>
      loadConfig(`${REPO_ROOT}configs/smoke-grpo.yaml`, {
        overrides: [...COMMON, "runtime.max_restarts={learner: 1}"],
      }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
      assert.match(
        e.message,
        /field "runtime\.max_restarts\.learner".*cannot restart the learner: its optimizer moments would be lost/,
      );
      return true;
    },
  );
});
