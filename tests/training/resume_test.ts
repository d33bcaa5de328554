/**
 * Exact resume, end to end: the metrics of the steps after a resume equal, bit for bit, those
 * of an uninterrupted run with the same seed. The runs are `Trainer`s in this process, but
 * for the one killed with SIGKILL, a real `cli/train.ts` process.
 */
import assert from "node:assert/strict";
import { TRAIN_RUN_ARGS } from "../../cli/common.ts";
import { latestCheckpoint, liveConfigValues, truncateMetrics } from "../../training/resume.ts";
import { MANIFEST_FILE, writeManifest } from "../../model/checkpoint.ts";
import { loadConfig } from "../../training/config.ts";
import { makeTinyCheckpoint, REPO_ROOT, sleep, stepRecords } from "../helpers.ts";
import { IN_PROCESS_SETS, trainInProcess } from "./run_trainer.ts";
import { readSamples } from "../../training/samples_file.ts";

const QUIET = ["eval.before=false", "eval.after=false"];

/** Step records by step (see `stepRecords`); a step logged twice fails the test. */
async function stepMetrics(runDir: string): Promise<Map<number, Record<string, number>>> {
  const out = new Map<number, Record<string, number>>();
  for (const record of await stepRecords(runDir)) {
    assert.ok(!out.has(record.step!), `step ${record.step} logged twice in ${runDir}`);
    out.set(record.step!, record);
  }
  return out;
}

async function checkpointSteps(runDir: string): Promise<number[]> {
  const steps: number[] = [];
  for await (const e of Deno.readDir(runDir)) {
    const m = /^checkpoint-(\d+)$/.exec(e.name);
    if (m) steps.push(Number(m[1]));
  }
  return steps.sort((a, b) => a - b);
}

Deno.test("a run killed with SIGKILL resumes bit for bit (MGRPO: data cursor, sampling and guide-phrase RNGs, LR schedule)", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "resume-mgrpo-" });
  try {
    const config = "configs/smoke-mgrpo.yaml";
    const sets = ["run.steps=4", "run.checkpoint_every=1", "run.keep_last=2", ...QUIET];
    await trainInProcess(`${tmp}/full`, config, sets);
    const full = await stepMetrics(`${tmp}/full`);
    assert.deepEqual([...full.keys()], [1, 2, 3, 4]);
    assert.deepEqual(await checkpointSteps(`${tmp}/full`), [3, 4], "keep_last: 2");

    // The same run as a process of its own (on the same backend and threads as the runs in
    // this process), killed without warning once its first checkpoint is on disk.
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        ...TRAIN_RUN_ARGS,
        "--config",
        config,
        ...[...IN_PROCESS_SETS, ...sets].flatMap((s) => ["--set", s]),
        "--run-dir",
        `${tmp}/cut`,
      ],
      cwd: REPO_ROOT,
      stdout: "null",
      stderr: "null",
    }).spawn();
    while ((await checkpointSteps(`${tmp}/cut`).catch(() => [])).length === 0) await sleep(20);
    child.kill("SIGKILL");
    await child.status;
    const at = (await checkpointSteps(`${tmp}/cut`)).at(-1)!;
    assert.ok(at < 4, `the kill landed before the end (newest checkpoint ${at})`);
    const control = `${tmp}/control`;
    await Deno.mkdir(control);
    for (const name of ["config.yaml", `checkpoint-${at}`]) {
      await new Deno.Command("cp", { args: ["-r", `${tmp}/cut/${name}`, control] }).output();
    }

    const { log } = await trainInProcess(`${tmp}/cut`, undefined, [], { resume: true });
    assert.match(log, new RegExp(`resume: .*checkpoint-${at} \\(step ${at}`));
    const resumed = await stepMetrics(`${tmp}/cut`);
    assert.deepEqual([...resumed.keys()], [1, 2, 3, 4]);
    for (let step = at + 1; step <= 4; step++) {
      assert.deepEqual(resumed.get(step), full.get(step), `step ${step} after resuming at ${at}`);
    }
    // Each step's samples once, those after the checkpoint the same as the full run's.
    const fullSamples = await readSamples(`${tmp}/full`);
    const cutSamples = await readSamples(`${tmp}/cut`);
    assert.deepEqual(cutSamples.map((l) => l.step), [1, 2, 3, 4]);
    assert.deepEqual(cutSamples.slice(at), fullSamples.slice(at));

    // Control: the same checkpoint without its actor snapshots (the old format) does not
    // reproduce the run, so the comparison above can fail.
    const statePath = `${control}/checkpoint-${at}/trainer_state.json`;
    const state = JSON.parse(await Deno.readTextFile(statePath));
    delete state.actors;
    await Deno.writeTextFile(statePath, JSON.stringify(state));
    await writeManifest(`${control}/checkpoint-${at}`); // edited on purpose
    await trainInProcess(control, undefined, [], { resume: true });
    const approx = await stepMetrics(control);
    assert.notDeepEqual(approx.get(at + 1), full.get(at + 1));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a resumed run drops the samples.jsonl lines after its checkpoint and logs those steps once", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "resume-samples-" });
  try {
    const runDir = `${tmp}/run`;
    const sets = ["run.steps=3", "run.checkpoint_every=1", "run.keep_last=3", ...QUIET];
    await trainInProcess(runDir, "configs/smoke-mgrpo.yaml", sets);
    const first = await readSamples(runDir);
    assert.deepEqual(first.map((l) => l.step), [1, 2, 3]);
    // As after a kill right after step 1's checkpoint, with steps 2 and 3 already logged.
    for (const step of [2, 3]) {
      await Deno.remove(`${runDir}/checkpoint-${step}`, { recursive: true });
    }
    const { log } = await trainInProcess(runDir, undefined, [], { resume: true });
    assert.match(log, /resume: .*checkpoint-1 \(step 1; dropped 2 metrics lines logged after it\)/);
    const again = await readSamples(runDir);
    assert.deepEqual(again.map((l) => l.step), [1, 2, 3]);
    // Exact resume: steps 2 and 3 sampled, scored and trained as before.
    assert.deepEqual(again, first);
    assert.deepEqual([...(await stepMetrics(runDir)).keys()], [1, 2, 3]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("PPO resumes bit for bit: value model, its optimizer and the adaptive KL coefficient", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "resume-ppo-" });
  try {
    await trainInProcess(`${tmp}/full`, "configs/smoke-ppo.yaml", [
      "run.steps=4",
      "run.checkpoint_every=2",
      "run.keep_last=3",
      "ppo.adaptive_kl=true",
      "ppo.kl_coef=0.05",
      ...QUIET,
    ]);
    const full = await stepMetrics(`${tmp}/full`);
    assert.deepEqual(await checkpointSteps(`${tmp}/full`), [2, 4]);
    const files = [...Deno.readDirSync(`${tmp}/full/checkpoint-2`)].map((e) => e.name).sort();
    assert.ok(files.includes("critic.model.safetensors"), files.join(", "));
    assert.ok(files.includes("critic.optimizer.safetensors"), files.join(", "));
    const state = JSON.parse(
      await Deno.readTextFile(`${tmp}/full/checkpoint-2/trainer_state.json`),
    );
    // β after step 2 is the one step 3 uses.
    assert.equal(state.actors.critic.state.kl_coef, full.get(3)!["ppo/kl_coef"]);
    assert.notEqual(state.actors.critic.state.kl_coef, 0.05, "the controller moved β");

    await Deno.remove(`${tmp}/full/checkpoint-4`, { recursive: true });
    await trainInProcess(`${tmp}/full`, undefined, [], { resume: true });
    const resumed = await stepMetrics(`${tmp}/full`);
    for (const step of [3, 4]) assert.deepEqual(resumed.get(step), full.get(step), `step ${step}`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/**
 * One GRPO step with a reference policy from a copy of the warm start in `<tmp>/init`
 * (returned), run folder `<tmp>/run`: a run whose reference a test can then alter.
 */
async function oneStepWithReference(tmp: string): Promise<string> {
  const init = `${tmp}/init`;
  await new Deno.Command("cp", { args: ["-r", `${REPO_ROOT}checkpoints/tiny-sft`, init] }).output();
  await trainInProcess(`${tmp}/run`, "configs/smoke-grpo.yaml", [
    "run.steps=1",
    `model.init=${init}`,
    "grpo.beta=0.04",
    ...QUIET,
  ]);
  return init;
}

Deno.test("resuming refuses a reference policy whose weights changed since the checkpoint", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "resume-ref-" });
  try {
    const init = await oneStepWithReference(tmp);
    const weights = await Deno.readFile(`${init}/model.safetensors`);
    weights[weights.length - 1] = weights.at(-1)! ^ 0x01;
    await Deno.writeFile(`${init}/model.safetensors`, weights);
    await writeManifest(init); // replaced on purpose, not corrupted
    await assert.rejects(
      () => trainInProcess(`${tmp}/run`, undefined, [], { resume: true }),
      /Cannot resume from ".*checkpoint-1": the reference policy ".*init" changed/,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("live settings in force at a checkpoint come back as values of the saved config, under the command line's overrides", () => {
  const config = loadConfig(undefined, {
    overrides: ["learner.lr=1e-4", 'mgrpo.guide_phrases=["Check: ", "a: b"]'],
  });
  const live = liveConfigValues(config);
  assert.equal(live["learner.lr"], 1e-4);
  const back = loadConfig(undefined, { values: live });
  assert.equal(back.learner.lr, 1e-4);
  assert.deepEqual(back.mgrpo.guide_phrases, ["Check: ", "a: b"]);
  assert.deepEqual(liveConfigValues(back), live);
  // A phrase holding "=", ":" or quotes is a value, never text to parse.
  const odd = loadConfig(undefined, {
    values: { "mgrpo.guide_phrases": ['x = "y": z'], "learner.lr": 2e-4 },
    overrides: ["learner.lr=3e-4"],
  });
  assert.deepEqual(odd.mgrpo.guide_phrases, ['x = "y": z']);
  assert.equal(odd.learner.lr, 3e-4);
});

Deno.test("truncateMetrics() drops the records logged after the checkpoint and a cut last line", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(
      path,
      ['{"step":1,"a":1}', '{"step":2,"a":2}', '{"step":2,"eval/accuracy":0.5}', '{"step":3,"a":3}']
        .join("\n") + '\n{"step":4,"a',
    );
    assert.equal(await truncateMetrics(path, 2), 2);
    assert.equal(
      await Deno.readTextFile(path),
      '{"step":1,"a":1}\n{"step":2,"a":2}\n{"step":2,"eval/accuracy":0.5}\n',
    );
    assert.equal(await truncateMetrics(path, 2), 0);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("resuming refuses a checkpoint whose architecture differs from the reference policy's", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "resume-arch-" });
  try {
    const init = await oneStepWithReference(tmp);
    const config = JSON.parse(await Deno.readTextFile(`${init}/config.json`));
    await Deno.writeTextFile(
      `${init}/config.json`,
      JSON.stringify({ ...config, rms_norm_eps: 1e-5 }),
    );
    await writeManifest(init);
    await assert.rejects(
      () => trainInProcess(`${tmp}/run`, undefined, [], { resume: true }),
      /its architecture differs from the reference policy ".*init": field "rms_norm_eps" is 0\.000001 in the checkpoint and 0\.00001 in the reference/,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("--resume falls back past a corrupt, emptied or unmanifested newest checkpoint, keeping each aside", async () => {
  const run = await Deno.makeTempDir({ prefix: "resume_fallback_" });
  try {
    for (const step of [1, 2, 3, 4]) await makeTinyCheckpoint(`${run}/checkpoint-${step}`, step);
    // 4: a flipped bit; 3: emptied; 2: its manifest lost. 1 is whole.
    const weights = await Deno.readFile(`${run}/checkpoint-4/model.safetensors`);
    weights[weights.length - 1]! ^= 1;
    await Deno.writeFile(`${run}/checkpoint-4/model.safetensors`, weights);
    for await (const e of Deno.readDir(`${run}/checkpoint-3`)) {
      await Deno.remove(`${run}/checkpoint-3/${e.name}`);
    }
    await Deno.remove(`${run}/checkpoint-2/${MANIFEST_FILE}`);
    const warnings: string[] = [];
    assert.equal(await latestCheckpoint(run, (l) => warnings.push(l)), `${run}/checkpoint-1`);
    assert.equal(warnings.length, 4);
    assert.match(
      warnings[0]!,
      /^resume: Cannot load checkpoint ".*checkpoint-4": file "model\.safetensors" is corrupt: .*; kept aside as .*checkpoint-4\.corrupt-\d+, trying the next older checkpoint$/,
    );
    assert.match(warnings[1]!, /checkpoint-3": its manifest\.json is missing; kept aside/);
    assert.match(warnings[2]!, /checkpoint-2": its manifest\.json is missing; kept aside/);
    assert.equal(
      warnings[3],
      `resume: continuing from ${run}/checkpoint-1, the newest checkpoint that verifies`,
    );
    // Nothing is deleted: the bad ones wait beside the run for inspection.
    const names = (await Array.fromAsync(Deno.readDir(run))).map((e) => e.name).sort();
    assert.equal(names.length, 4);
    assert.equal(names[0], "checkpoint-1");
    assert.ok(names.slice(1).every((n) => /^checkpoint-[234]\.corrupt-\d+$/.test(n)), names.join());
    // With nothing left that verifies, the error says so.
    await Deno.remove(`${run}/checkpoint-1/${MANIFEST_FILE}`);
    await assert.rejects(latestCheckpoint(run, () => {}), {
      name: "InputError",
      message:
        `Cannot resume from "${run}": none of its checkpoints verifies (1 kept aside as *.corrupt-*)`,
    });
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});
