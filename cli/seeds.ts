/**
 * `deno task seeds`: before and after held-out accuracy per seed. Runs `train` on the embedded default (or
 * `--config`) once per seed, sequentially, and prints held-out accuracy before and after and
 * the wall time of each run. Extra arguments after `--` go to every `train` run.
 *
 * @module
 */
import { ArgsError, type FlagSpec, formatHelp, parseFlags } from "./args.ts";
import { runMain, TRAIN_RUN_ARGS } from "./common.ts";
import { formatTable } from "../util/table.ts";

const FLAGS: Readonly<Record<string, FlagSpec>> = {
  seeds: { type: "string", placeholder: "LIST", help: "Seeds, comma-separated (default 0,1,2)" },
  dir: {
    type: "string",
    placeholder: "DIR",
    help: "Folder of the runs, one seed-<n> each, replaced on every call (default runs/seeds)",
  },
  config: { type: "string", placeholder: "FILE", help: "YAML config (default: the embedded one)" },
  help: { type: "boolean", short: "h", help: "Print this help and exit" },
};

const HELP = formatHelp(FLAGS, {
  usage: "deno task seeds [--seeds 0,1,2] [--dir DIR] [--config FILE] [-- TRAIN_FLAGS...]",
  summary: "Runs train once per seed, one after the other, and prints held-out accuracy before\n" +
    "and after and the wall time of each run. Flags after -- go to every train run.",
  examples: ["deno task seeds", "deno task seeds --seeds 0,1 -- --set run.steps=8"],
});

async function main(argv: string[]): Promise<number> {
  const { values: v, passThrough } = parseFlags(argv, FLAGS, { allowPassThrough: true });
  if (v.help === true) {
    console.log(HELP);
    return 0;
  }
  const list = (v.seeds as string | undefined) ?? "0,1,2";
  const seeds = list.split(",").map((s) => Number(s.trim()));
  if (seeds.some((s) => !Number.isInteger(s) || s < 0)) {
    throw new ArgsError(
      `Invalid value for --seeds: must be integers >= 0, comma-separated: current value is "${list}"`,
    );
  }
  const values = {
    dir: (v.dir as string | undefined) ?? "runs/seeds",
    config: v.config as string | undefined,
  };
  const positionals = passThrough;
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
      return status.code || 1;
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
  return 0;
}

if (import.meta.main) await runMain(main);
