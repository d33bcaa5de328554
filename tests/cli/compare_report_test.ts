/** `deno task compare`'s report records where its runs ran. */
import assert from "node:assert/strict";
import { type CompareRun, environmentLines } from "../../cli/compare_report.ts";
import { correctionMetrics } from "../../algorithms/mgrpo/self_correction.ts";

function run(arm: string, seed: number, environment?: Record<string, unknown>): CompareRun {
  const t1 = [true, false], t2 = [true, true];
  return {
    arm,
    seed,
    steps: 16,
    sampledTokens: 1000,
    seconds: 10,
    heldout: correctionMetrics(t1, t2),
    t1,
    t2,
    curve: [],
    ...(environment ? { environment } : {}),
  };
}

const ENV = {
  deno: "2.9.6",
  tfjs: "4.22.0",
  project: "abc1234",
  backend: "wasm",
  learner_backend: "wasm",
  sampler_backend: "wasm",
  wasm_threads: 2,
  cpu: "Intel Xeon",
  cores: 2,
};

Deno.test("environmentLines() groups the runs by where they ran, and names those that did not record it", () => {
  assert.deepEqual(
    environmentLines([
      run("mgrpo", 0, ENV),
      run("grpo", 0, ENV),
      run("mgrpo", 1, { ...ENV, wasm_threads: 1 }),
      run("grpo", 1),
    ]),
    [
      "Deno 2.9.6, tfjs 4.22.0, project abc1234, learner wasm, sampler wasm (2 wasm threads), " +
      "Intel Xeon, 2 cores: mgrpo-seed0, grpo-seed0",
      "Deno 2.9.6, tfjs 4.22.0, project abc1234, learner wasm, sampler wasm (1 wasm threads), " +
      "Intel Xeon, 2 cores: mgrpo-seed1",
      "not recorded: grpo-seed1",
    ],
  );
});
