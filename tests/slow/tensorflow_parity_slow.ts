/**
 * `deno task test:slow` (not run by CI): the tensorflow backend trains GRPO, the RLOO plug-in
 * and MGRPO with LoRA and gradient checkpointing as the wasm backend does, every step's metrics
 * within 1e-4 (MGRPO, PPO and MGRPO on a Hugging Face model are compared by the default test run,
 * tests/training/tensorflow_test.ts). Needs `deno task setup:tensorflow`; without it the tests are
 * ignored, and with `MGRPO_REQUIRE_TENSORFLOW=1` that fails.
 *
 * @module
 */
import assert from "node:assert/strict";
import { TFJS_NODE_INSTALL } from "../../model/backend.ts";
import { tensorflowReady } from "../helpers.ts";
import { testParity } from "../tensorflow_parity.ts";

const ready = await tensorflowReady();

Deno.test("the tensorflow backend is set up where MGRPO_REQUIRE_TENSORFLOW=1 requires it", () => {
  assert.ok(ready || Deno.env.get("MGRPO_REQUIRE_TENSORFLOW") !== "1", `run ${TFJS_NODE_INSTALL}`);
  if (!ready) console.log("tensorflow: not set up; its tests are ignored");
});

for (
  const run of [
    { name: "grpo", config: "configs/smoke-grpo.yaml", sets: [] },
    {
      name: "rloo",
      config: "configs/smoke-grpo.yaml",
      sets: ["plugins=[algorithms/rloo/mod.ts]", "algorithm=rloo"],
    },
    {
      name: "mgrpo-lora-checkpointing",
      config: "configs/smoke-mgrpo.yaml",
      sets: ["model.lora.r=4", "learner.gradient_checkpointing=true"],
    },
  ]
) testParity(run, ready);
