/**
 * A smoke training run on the wasm backend and on the native `tensorflow` backend, each as a
 * process of its own (tfjs' backend is global to a process), compared step by step: what
 * tests/training/tensorflow_test.ts and `deno task test:slow` (tests/slow/tensorflow_parity_slow.ts)
 * share.
 *
 * @module
 */
import assert from "node:assert/strict";
import { REPO_ROOT, runTrain, stepRecords } from "./helpers.ts";

/** A smoke run: its name in the test's title, its config (from the repository root), `--set`s. */
export interface ParityRun {
  name: string;
  config: string;
  sets: string[];
}

/** `|a - b| <= tol · max(1, |a|)` for every numeric field of every step record. */
function assertClose(
  a: Record<string, number>[],
  b: Record<string, number>[],
  what: string,
  tol = 1e-4,
): number {
  assert.equal(b.length, a.length, `${what}: steps`);
  let worst = 0;
  a.forEach((ra, i) => {
    assert.deepEqual(Object.keys(b[i]!).sort(), Object.keys(ra).sort(), `${what}: step ${i} keys`);
    for (const [k, v] of Object.entries(ra)) {
      if (typeof v !== "number") continue;
      const d = Math.abs(v - b[i]![k]!);
      assert.ok(
        d <= tol * Math.max(1, Math.abs(v)),
        `${what}: step ${i} ${k}: ${v} vs ${b[i]![k]}`,
      );
      worst = Math.max(worst, d / Math.max(1, Math.abs(v)));
    }
  });
  return worst;
}

/**
 * Registers a test that trains `run` on both backends and asserts every step's metrics agree
 * within 1e-4; ignored unless the tensorflow backend is `ready`.
 */
export function testParity(run: ParityRun, ready: boolean): void {
  Deno.test({
    name: `tensorflow trains ${run.name} as wasm does (every step's metrics within 1e-4)`,
    ignore: !ready,
    fn: async () => {
      const dir = await Deno.makeTempDir({ prefix: `tf-${run.name}-` });
      try {
        const records: Record<string, number>[][] = [];
        for (const backend of ["wasm", "tensorflow"]) {
          const r = await runTrain(`${dir}/${backend}`, `${REPO_ROOT}${run.config}`, [
            ...run.sets,
            `model.backend=${backend}`,
            "control.enabled=false",
          ], { timeoutMs: 300_000 });
          assert.equal(r.code, 0, `${backend}: ${r.log}`);
          records.push(await stepRecords(`${dir}/${backend}`));
        }
        assert.ok(records[0]!.length >= 2, "at least two steps");
        const worst = assertClose(records[0]!, records[1]!, run.name);
        console.log(`${run.name}: largest relative difference ${worst.toExponential(1)}`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
