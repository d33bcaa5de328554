/**
 * `deno task test:slow` (not run by CI): the committed MGRPO policies of earlier embedded defaults
 * and comparisons give the per-problem verdicts their reports record (the first 100 held-out
 * problems, first answer and one guided correction). The default's `checkpoints/tiny-mgrpo` is
 * checked by the default test run, tests/cli/eval_test.ts.
 *
 * @module
 */
import { initBackend } from "../../model/backend.ts";
import { assertSeed0Verdicts } from "../committed_policies.ts";

await initBackend("wasm");

Deno.test("checkpoints/tiny-mgrpo-count-heavy gives the verdicts docs/compare-2026-12-07c reports for MGRPO seed 0", async () => {
  // The earlier default's seed-0 policy, from the count-heavy warm start whose correction is SFT's.
  await assertSeed0Verdicts("tiny-mgrpo-count-heavy", "compare-2026-12-07c", []);
});

Deno.test("checkpoints/tiny-mgrpo-sft-count gives the verdicts docs/compare-2026-12-06c reports for MGRPO seed 0", async () => {
  // The earlier default's seed-0 policy, evaluated with that default's correction budget.
  await assertSeed0Verdicts("tiny-mgrpo-sft-count", "compare-2026-12-06c", [
    "mgrpo.layer2_max_new_tokens=112",
  ]);
});

Deno.test("checkpoints/tiny-mgrpo-latent gives the verdicts docs/compare-2026-12-07e reports for MGRPO seed 0", async () => {
  // MGRPO's seed-0 policy from checkpoints/tiny-sft-latent (the embedded settings otherwise): the
  // run in which Layer 2 teaches a warm start that corrects worse than it answers to correct.
  await assertSeed0Verdicts("tiny-mgrpo-latent", "compare-2026-12-07e", []);
});
