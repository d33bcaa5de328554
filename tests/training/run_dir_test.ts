/**
 * Runs that cannot be mixed up: a new run never writes into a folder holding another run; the
 * default folder is dated, with `<run.dir>/<run.name>` a link to the newest run, which
 * `--resume` and `ctl` follow.
 */
import assert from "node:assert/strict";
import { loadRunConfig } from "../../training/plugins.ts";
import { Trainer } from "../../training/trainer.ts";
import { datedRunDir, resolveRunDir } from "../../training/run_dir.ts";
import { InputError } from "../../util/errors.ts";
import { makeTinyCheckpoint, REPO_ROOT } from "../helpers.ts";
import { IN_PROCESS_SETS } from "./run_trainer.ts";

/** One step of GRPO on the smoke config under `runs` (run.dir), named `name`; returns its folder. */
async function run(
  runs: string,
  init: string,
  options: { runDir?: string; overwrite?: boolean; resume?: string } = {},
): Promise<string> {
  const overrides = [
    ...IN_PROCESS_SETS,
    `model.init=${init}`,
    `run.dir=${runs}`,
    "run.name=exp",
    "run.steps=1",
    "eval.before=false",
    "eval.after=false",
  ];
  const { config, registry, resume } = await loadRunConfig({
    ...(options.resume ? { resume: options.resume } : {
      config: `${REPO_ROOT}configs/smoke-grpo.yaml`,
    }),
    overrides: options.resume ? ["run.steps=2"] : overrides,
  });
  const trainer = await Trainer.create(config, {
    registry,
    ...(options.runDir ?? options.resume ? { runDir: options.runDir ?? options.resume } : {}),
    ...(resume ? { resume } : {}),
    ...(options.overwrite ? { overwrite: true } : {}),
    log: () => {},
    warn: () => {},
  });
  try {
    await trainer.run();
    return trainer.runDir;
  } finally {
    await trainer.close();
  }
}

async function names(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

Deno.test("the default run folder is dated, never reused, and <run.dir>/<run.name> links to the newest", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "run_dir_" });
  try {
    const init = await makeTinyCheckpoint(`${tmp}/init`);
    const runs = `${tmp}/runs`;
    const first = await run(runs, init);
    assert.match(first, new RegExp(`^${runs}/exp-\\d{8}-\\d{6}$`));
    assert.equal(await Deno.readLink(`${runs}/exp`), first.split("/").at(-1));
    const firstMetrics = await Deno.readTextFile(`${first}/metrics.jsonl`);
    const second = await run(runs, init);
    assert.notEqual(second, first);
    assert.equal(await Deno.readLink(`${runs}/exp`), second.split("/").at(-1));
    // The first run is as it was: nothing appended, no checkpoint removed.
    assert.equal(await Deno.readTextFile(`${first}/metrics.jsonl`), firstMetrics);
    assert.ok((await Deno.stat(`${first}/checkpoint-1`)).isDirectory);
    // --resume runs/exp continues the newest run, through the link or without it.
    assert.equal(await resolveRunDir(`${runs}/exp`), `${runs}/exp`);
    await run(runs, init, { resume: `${runs}/exp` });
    assert.ok((await Deno.stat(`${second}/checkpoint-2`)).isDirectory);
    assert.ok(!(await Deno.stat(`${first}/checkpoint-2`).then(() => true, () => false)));
    await Deno.remove(`${runs}/exp`);
    assert.equal(await resolveRunDir(`${runs}/exp`), second);
    assert.equal(await resolveRunDir(`${runs}/other`), `${runs}/other`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("an explicit run folder that holds a run is refused, or moved aside with overwrite", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "run_dir_" });
  try {
    const init = await makeTinyCheckpoint(`${tmp}/init`);
    const dir = `${tmp}/mine`;
    await run(tmp, init, { runDir: dir });
    const before = await names(dir);
    const config = await Deno.readTextFile(`${dir}/config.yaml`);
    await assert.rejects(run(tmp, init, { runDir: dir }), (e: Error) => {
      assert.ok(e instanceof InputError);
      assert.equal(
        e.message,
        `Cannot start a new run in "${dir}": the folder is not empty (another run's config, ` +
          `metrics or checkpoints would be mixed with this one's); continue that run with ` +
          `--resume ${dir}, choose another --run-dir, or pass --overwrite to move it aside ` +
          `(to ${dir}.replaced-<time>, nothing is deleted)`,
      );
      return true;
    });
    assert.deepEqual(await names(dir), before);
    assert.equal(await Deno.readTextFile(`${dir}/config.yaml`), config);

    await run(tmp, init, { runDir: dir, overwrite: true });
    const aside = (await names(tmp)).filter((n) => /^mine\.replaced-\d{8}-\d{6}$/.test(n));
    assert.equal(aside.length, 1);
    assert.deepEqual(await names(`${tmp}/${aside[0]}`), before);
    assert.equal(await Deno.readTextFile(`${tmp}/${aside[0]}/config.yaml`), config);
    assert.ok((await Deno.stat(`${dir}/checkpoint-1`)).isDirectory);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("datedRunDir() adds a counter when the dated name is taken", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "run_dir_" });
  try {
    const now = new Date("2026-12-06T05:12:00Z");
    await Deno.mkdir(`${tmp}/x-20261206-051200`);
    assert.equal(await datedRunDir(`${tmp}/x`, now), `${tmp}/x-20261206-051200-2`);
    await Deno.mkdir(`${tmp}/x-20261206-051200-2`);
    assert.equal(await datedRunDir(`${tmp}/x`, now), `${tmp}/x-20261206-051200-3`);
    assert.equal(await resolveRunDir(`${tmp}/x`), `${tmp}/x-20261206-051200-2`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
