/**
 * A committed MGRPO policy against the report it came from: what tests/cli/eval_test.ts (the
 * embedded default's `checkpoints/tiny-mgrpo`) and `deno task test:slow`
 * (tests/slow/committed_policies_slow.ts, the earlier ones) share.
 *
 * @module
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "./helpers.ts";
import { parseCompareData } from "../cli/compare_report.ts";
import { loadConfig } from "../training/config.ts";
import { evaluateCheckpointTwoTurn } from "../training/evaluate.ts";
import { heldOut } from "../training/setup.ts";

/**
 * The first 100 held-out verdicts (first answer, one guided correction) of
 * `checkpoints/<checkpoint>` match `docs/<report>/results.json`'s MGRPO seed-0 record, with the
 * embedded config and `overrides`. Needs the wasm backend initialised.
 */
export async function assertSeed0Verdicts(
  checkpoint: string,
  report: string,
  overrides: string[],
): Promise<void> {
  const path = `${REPO_ROOT}docs/${report}/results.json`;
  const results = parseCompareData(await Deno.readTextFile(path), path);
  const run = results.runs.find((r) => r.arm === "mgrpo" && r.seed === 0)!;
  const config = loadConfig(undefined, { overrides });
  const problems = heldOut(config.task, "heldout").problems.slice(0, 100);
  const { result } = await evaluateCheckpointTwoTurn(
    `${REPO_ROOT}checkpoints/${checkpoint}`,
    config,
    problems,
  );
  assert.deepEqual(result.verdicts.map((v) => v[0]), run.t1.slice(0, 100));
  assert.deepEqual(result.verdicts.map((v) => v[1]), run.t2.slice(0, 100));
}
