/**
 * `placement:` a run cannot honour is refused before it trains, naming the field: an actor
 * the algorithm does not have, an unknown place, a Sampler apart that would share the
 * Learner's weights.
 */
import assert from "node:assert/strict";
import { ConfigError } from "../../config/load.ts";
import { trainInProcess } from "./run_trainer.ts";

/** The error a smoke-grpo run with `sets` is refused with (failing the test if it trains). */
async function refusal(runDir: string, sets: string[]): Promise<Error> {
  const common = ["run.steps=2", "eval.before=false"];
  try {
    await trainInProcess(runDir, "configs/smoke-grpo.yaml", [...common, ...sets]);
  } catch (error) {
    assert.ok(error instanceof Error, `expected an Error, got ${error}`);
    return error;
  }
  assert.fail(`the run with ${sets.join(" ")} trained`);
}

Deno.test("placement refuses an actor the algorithm does not have, naming it", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "placement-" });
  try {
    const unknown = await refusal(`${tmp}/a`, ["placement.samplr=worker"]);
    assert.ok(unknown instanceof ConfigError, String(unknown));
    assert.match(unknown.message, /placement\.samplr.*names no actor: current value is "samplr"/);
    // smoke-grpo has no Corrector (that is MGRPO's): the graph names what it has.
    const absent = await refusal(`${tmp}/b`, ["placement.corrector=worker"]);
    assert.match(absent.message, /field "placement\.corrector" names no actor.*known actors are/);
    const where = await refusal(`${tmp}/c`, ["placement.sampler=gpu"]);
    assert.ok(where instanceof ConfigError, String(where));
    assert.match(where.message, /placement\.sampler/);
    const shared = await refusal(`${tmp}/d`, [
      "placement.sampler=worker",
      "sampler.share_weights=true",
    ]);
    assert.ok(shared instanceof ConfigError, String(shared));
    assert.match(shared.message, /placement\.sampler.*share_weights/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
