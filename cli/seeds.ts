/**
 * `deno task seeds`: before and after held-out accuracy per seed. Runs `train` on the embedded default (or
 * `--config`) once per seed, sequentially, and prints held-out accuracy before and after and
 * the wall time of each run. Extra arguments after `--` go to every `train` run.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { TRAIN_RUN_ARGS } from "./common.ts";
import { formatTable } from "../util/table.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: {
    seeds: { type: "string", default: "0,1,2" },
    dir: { type: "string", default: "runs/seeds" },
    config: { type: "string" },
  },
  allowPositionals: true,
  strict: true,
});
const seeds = values.seeds.split(",").map((s) => Number(s.trim()));
const rows: (string | number)[][] = [];
for (const seed of seeds) {
  const runDir = `${values.dir}/seed-${seed}`;
  await Deno.remove(runDir, { recursive: true }).catch(() => {});
  const t0 = performance.now();
  const args = [
    ...TRAIN_RUN_ARGS,
    ...(values.config ? ["--config", values.config] : []),
    "--seed",
    String(seed),
    "--run-dir",
    runDir,
    ...positionals,
  ];
  console.log(`$ deno ${args.join(" ")}`);
  const status = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "inherit",
    stderr: "inherit",
  })
    .spawn().status;
  if (!status.success) {
    console.error(`seed ${seed}: train exited with code ${status.code}`);
    Deno.exit(status.code || 1);
  }
  const seconds = (performance.now() - t0) / 1000;
  const summary = JSON.parse(await Deno.readTextFile(`${runDir}/summary.json`));
  const before = 100 * summary.accuracy_before, after = 100 * summary.accuracy_after;
  rows.push([
    seed,
    before.toFixed(1),
    after.toFixed(1),
    (after - before).toFixed(1),
    seconds.toFixed(0),
  ]);
}
console.log("\n" + formatTable(["seed", "before %", "after %", "gain (points)", "wall s"], rows));
