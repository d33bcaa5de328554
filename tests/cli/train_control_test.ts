/**
 * The control server of a real `cli/train.ts` process: discovery, auth, refused patches,
 * a live change reaching the Learner, pause/resume at step boundaries, a requested
 * checkpoint and stop → final checkpoint and exit 0.
 */
import assert from "node:assert/strict";
import { waitForControlFile } from "../../server/serve.ts";
import { exists, sleep, spawnLongTinyRun } from "../helpers.ts";

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

async function readMetrics(runDir: string): Promise<Record<string, number>[]> {
  const text = await Deno.readTextFile(`${runDir}/metrics.jsonl`);
  return text.trim().split("\n").map((line) => JSON.parse(line));
}

Deno.test({
  name: "train's control server pauses, resumes, changes lr live, checkpoints and stops (exit 0)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "train_control_" });
    const { child, output, runDir } = await spawnLongTinyRun(tmp, "configs/smoke-grpo.yaml", [
      "learner.lr_schedule=constant",
      "learner.warmup_ratio=0",
    ]);
    try {
      // Discovery: control.json appears once the server listens; the token file is 0600.
      const { url } = await waitForControlFile(runDir);
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

      // Stop: finishes the step, writes the final checkpoint, exits 0.
      const stop = await post(c, "/stop");
      assert.equal(stop.status, 202);
      const { effectiveAfterStep } = await stop.json();
      const out = await output;
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const summary = JSON.parse(await Deno.readTextFile(`${runDir}/summary.json`));
      assert.ok(summary.steps >= effectiveAfterStep);
      assert.ok(await exists(`${runDir}/checkpoint-${summary.steps}/model.safetensors`));
      assert.ok(!(await exists(`${runDir}/control.json`)), "control.json is removed at exit");

      // The change is in events.jsonl, and every step after the patch's boundary used it.
      const events = (await Deno.readTextFile(`${runDir}/events.jsonl`)).trim().split("\n")
        .map((line) => JSON.parse(line));
      assert.equal(events.length, 1);
      assert.equal(events[0].field, "learner.lr");
      assert.equal(events[0].old, 1e-4);
      assert.equal(events[0].new, 3e-4);
      const lrs = new Map(
        (await readMetrics(runDir)).filter((m) => "learning_rate" in m)
          .map((m) => [m.step!, m.learning_rate!]),
      );
      assert.equal(lrs.get(1), 1e-4);
      for (const [step, lr] of lrs) {
        if (step > afterPatch + 1) assert.equal(lr, 3e-4, `step ${step}`);
      }
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      await output.catch(() => {});
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
