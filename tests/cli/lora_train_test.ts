/**
 * `model.lora.r > 0` in a real run: only the adapters train, checkpoints hold the base weights
 * unchanged plus a PEFT adapter, and a resume continues bit for bit.
 */
import assert from "node:assert/strict";
import { TRAIN_RUN_ARGS } from "../../cli/common.ts";
import { REPO_ROOT, stepRecords } from "../helpers.ts";
import { decodeSafetensors } from "../../model/safetensors.ts";

async function train(args: string[]): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...TRAIN_RUN_ARGS, ...args],
    cwd: REPO_ROOT,
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

Deno.test("a LoRA run trains adapters only, checkpoints a PEFT adapter and resumes bit for bit", async () => {
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
      "control.enabled=false",
    ].flatMap((s) => ["--set", s]);
    await train(["--config", "configs/smoke-mgrpo.yaml", ...sets, "--run-dir", `${tmp}/run`]);
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
    await train(["--resume", `${tmp}/run`]);
    assert.deepEqual((await stepRecords(`${tmp}/run`))[2], full[2]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
