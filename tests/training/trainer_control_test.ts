/**
 * The control server of a `Trainer` run in this process, driven over HTTP: discovery, auth,
 * refused patches, a live change reaching the Learner, pause/resume at step boundaries, a
 * requested checkpoint and stop → final checkpoint and a summary; the latest step's samples.
 */
import assert from "node:assert/strict";
import { waitForControlFile } from "../../server/serve.ts";
import type { Trainer } from "../../training/trainer.ts";
import { exists, makeTinyCheckpoint, metricsRecords, sleep } from "../helpers.ts";
import { trainInProcess } from "./run_trainer.ts";
import { readSamples } from "../../training/samples_file.ts";

interface Control {
  url: string;
  token: string;
}

/** Polls `fn` every 50 ms until it returns a value other than `undefined` (or times out). */
async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await fn();
    if (value !== undefined) return value;
    await sleep(50);
  }
  throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
}

async function status(c: Control): Promise<{ state: string; step: number }> {
  return await (await fetch(`${c.url}/status`)).json();
}

async function post(c: Control, path: string, token = c.token): Promise<Response> {
  return await fetch(`${c.url}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}` },
  });
}

async function patch(c: Control, body: string): Promise<Response> {
  return await fetch(`${c.url}/config`, {
    method: "PATCH",
    headers: { Authorization: `Bearer ${c.token}`, "Content-Type": "application/json" },
    body,
  });
}

Deno.test("Trainer's control server pauses, resumes, changes lr live, checkpoints and stops", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "trainer_control_" });
  const runDir = `${tmp}/run`;
  let trainer: Trainer | undefined;
  const run = trainInProcess(runDir, "configs/smoke-grpo.yaml", [
    `model.init=${await makeTinyCheckpoint(`${tmp}/tiny-init`)}`,
    "run.steps=1000",
    "eval.before=false",
    "eval.after=false",
    "control.enabled=true",
    "learner.lr_schedule=constant",
    "learner.warmup_ratio=0",
  ], { started: (t) => trainer = t });
  let settled = false;
  run.then(() => settled = true, () => settled = true);
  try {
    // Discovery: control.json appears once the server listens; the token file is 0600.
    const { url } = await Promise.race([
      waitForControlFile(runDir),
      run.then(() => assert.fail("the run ended before its control server listened")),
    ]);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const token = (await Deno.readTextFile(`${runDir}/control-token`)).trim();
    assert.match(token, /^[0-9a-f]{64}$/);
    assert.equal((await Deno.stat(`${runDir}/control-token`)).mode! & 0o777, 0o600);
    const c: Control = { url, token };

    // Requests that change the run need the token; reads on loopback do not.
    const denied = await post(c, "/pause", "wrong");
    assert.equal(denied.status, 401);
    await denied.body?.cancel();
    await waitFor("step 2", async () => ((await status(c)).step >= 2 ? true : undefined));

    // A bad body and a field that cannot change are refused and change nothing.
    const bad = await patch(c, '{"learner.lr": -1}');
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).issues[0].path.join("."), "learner.lr");
    const notLive = await patch(c, '{"run.steps": 5}');
    assert.equal(notLive.status, 409);
    await notLive.body?.cancel();
    const noRef = await fetch(`${url}/config`);
    const config = await noRef.json();
    assert.equal(config.learner.lr, 1e-4);
    assert.equal(config.run.steps, 1000);

    // A live change of the learning rate reaches the Learner at the next step boundary.
    const ok = await patch(c, '{"learner": {"lr": 0.0003}}');
    assert.equal(ok.status, 200);
    const changedAt = (await ok.json()).changes[0];
    assert.deepEqual(changedAt, { field: "learner.lr", old: 1e-4, new: 3e-4 });
    const afterPatch = (await status(c)).step;

    // Pause: the step counter stops advancing.
    const paused = await post(c, "/pause");
    assert.equal(paused.status, 202);
    await paused.body?.cancel();
    const pausedAt = await waitFor("paused", async () => {
      const s = await status(c);
      return s.state === "paused" ? s.step : undefined;
    });
    await sleep(1500);
    assert.deepEqual(await status(c), { ...(await status(c)), state: "paused", step: pausedAt });
    // GET /samples holds the last step's sample groups, as samples.jsonl logged them.
    const logged = (await readSamples(runDir)).at(-1)!;
    assert.equal(logged.step, pausedAt);
    assert.deepEqual(logged.groups.map((g) => [g.step, g.completions.length]), [
      [pausedAt, 4],
      [pausedAt, 4],
    ]);
    assert.deepEqual(await (await fetch(`${url}/samples`)).json(), logged.groups);

    // A checkpoint asked for while paused is written when the run goes on.
    (await post(c, "/checkpoint")).body?.cancel();
    const resumed = await post(c, "/resume");
    assert.equal(resumed.status, 202);
    await resumed.body?.cancel();
    await waitFor("steps after resume", async () => {
      const s = await status(c);
      return s.state === "running" && s.step >= pausedAt + 2 ? true : undefined;
    });
    assert.ok(await exists(`${runDir}/checkpoint-${pausedAt}`));

    // Stop: finishes the step, writes the final checkpoint, and the run returns its summary.
    const stop = await post(c, "/stop");
    assert.equal(stop.status, 202);
    const { effectiveAfterStep } = await stop.json();
    const { summary } = await run;
    assert.ok(summary.steps >= effectiveAfterStep);
    assert.ok(summary.steps < 1000, "the run stopped before its last step");
    const written = JSON.parse(await Deno.readTextFile(`${runDir}/summary.json`));
    assert.equal(written.steps, summary.steps);
    assert.ok(await exists(`${runDir}/checkpoint-${summary.steps}/model.safetensors`));
    assert.ok(!(await exists(`${runDir}/control.json`)), "control.json is removed at the end");

    // The change is in events.jsonl, and every step after the patch's boundary used it.
    const events = (await Deno.readTextFile(`${runDir}/events.jsonl`)).trim().split("\n")
      .map((line) => JSON.parse(line));
    assert.equal(events.length, 1);
    assert.equal(events[0].field, "learner.lr");
    assert.equal(events[0].old, 1e-4);
    assert.equal(events[0].new, 3e-4);
    const lrs = new Map(
      (await metricsRecords(runDir)).filter((m) => "learning_rate" in m)
        .map((m) => [m.step!, m.learning_rate!]),
    );
    assert.equal(lrs.get(1), 1e-4);
    for (const [step, lr] of lrs) {
      if (step > afterPatch + 1) assert.equal(lr, 3e-4, `step ${step}`);
    }
  } finally {
    // After a failed assertion: stop the run (it checkpoints and returns) before cleaning up.
    if (!settled) trainer?.requestStop();
    await run.catch(() => {});
    await Deno.remove(tmp, { recursive: true });
  }
});
