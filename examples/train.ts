// Two steps of GRPO on the smoke config, from TypeScript: deno run -A examples/train.ts [DIR]
import { loadConfig, Trainer } from "../mod.ts";

const config = loadConfig("configs/smoke-grpo.yaml", {
  overrides: ["run.steps=2", "control.enabled=false"],
});
// DIR must be new or empty; without it, a fresh runs/smoke-grpo-<date> folder.
const trainer = await Trainer.create(config, Deno.args[0] ? { runDir: Deno.args[0] } : {});
try {
  const summary = await trainer.run(); // evaluates before and after, checkpoints at the end
  console.log(`accuracy ${summary.accuracy_before} -> ${summary.accuracy_after}`);
  console.log(`checkpoint ${summary.checkpoint}`);
} finally {
  await trainer.close();
}
