/**
 * `model.lora.r > 0` in a `Trainer` run: only the adapters train, checkpoints hold the base
 * weights unchanged plus a PEFT adapter, and a resume continues bit for bit.
 */
import assert from "node:assert/strict";
import { REPO_ROOT, stepRecords } from "../helpers.ts";
import { decodeSafetensors } from "../../model/safetensors.ts";
import { trainInProcess } from "./run_trainer.ts";

Deno.test("Trainer.run() with LoRA trains adapters only, checkpoints a PEFT adapter and resumes bit for bit", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "lora-train-" });
  try {
    const sets = [
      "model.lora.r=4",
      "model.lora.alpha=8",
      "learner.lr=1e-2",
      "run.steps=3",
      "run.checkpoint_every=1",
      "run.keep_last=3",
      "eval.before=false",
      "eval.after=false",
    ];
    await trainInProcess(`${tmp}/run`, "configs/smoke-mgrpo.yaml", sets);
    const last = `${tmp}/run/checkpoint-3`;
    const adapter = JSON.parse(await Deno.readTextFile(`${last}/adapter_config.json`));
    assert.equal(adapter.r, 4);
    // The base weights are the warm start's, bit for bit.
    const base = decodeSafetensors(
      await Deno.readFile(`${REPO_ROOT}checkpoints/tiny-sft/model.safetensors`),
    );
    const saved = decodeSafetensors(await Deno.readFile(`${last}/model.safetensors`));
    assert.deepEqual([...saved.tensors.keys()].sort(), [...base.tensors.keys()].sort());
    for (const [name, t] of base.tensors) {
      assert.deepEqual(saved.tensors.get(name)!.data, t.data, name);
    }
    const lora = decodeSafetensors(await Deno.readFile(`${last}/adapter_model.safetensors`));
    const b = lora.tensors.get("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")!;
    assert.ok(b.data.some((x) => x !== 0), "the adapter trained");
    const full = await stepRecords(`${tmp}/run`);
    assert.ok(full.some((r) => r.kl! > 0), "the adapted policy moved away from the reference");

    await Deno.remove(last, { recursive: true });
    await trainInProcess(`${tmp}/run`, undefined, [], { resume: true });
    const resumed = await stepRecords(`${tmp}/run`);
    assert.equal(resumed.length, 3);
    assert.deepEqual(resumed[2], full[2]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
