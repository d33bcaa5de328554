/**
 * The control server over a real socket (`startControlServer`) and `deno task ctl` against
 * it, as a separate process.
 */
import assert from "node:assert/strict";
import { TrainConfigSchema } from "../../cli/config_schema.ts";
import { RunControl } from "../../server/run_control.ts";
import { type ControlFile, startControlServer } from "../../server/serve.ts";
import { exists, REPO_ROOT } from "../helpers.ts";

async function withRunDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mgrpo_serve_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `deno task ctl ...args` as its own process. */
async function ctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-net", "cli/ctl.ts", ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

Deno.test("startControlServer() writes the token (0600) and control.json, serves, and cleans up", async () => {
  await withRunDir(async (dir) => {
    const control = new RunControl(TrainConfigSchema.parse({}));
    const server = await startControlServer(control, { host: "127.0.0.1", port: 0, runDir: dir });
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal((await Deno.readTextFile(`${dir}/control-token`)).trim(), server.token);
      assert.equal((await Deno.stat(`${dir}/control-token`)).mode! & 0o777, 0o600);
      const file: ControlFile = JSON.parse(await Deno.readTextFile(`${dir}/control.json`));
      assert.deepEqual(file, { url: server.url, pid: Deno.pid, tokenForReads: false });
      // Reads are open on loopback; changes need the token.
      const status = await fetch(`${server.url}/status`);
      assert.equal(status.status, 200);
      assert.equal((await status.json()).state, "starting");
      const denied = await fetch(`${server.url}/stop`, { method: "POST" });
      assert.equal(denied.status, 401);
      await denied.body?.cancel();
      const stop = await fetch(`${server.url}/stop`, {
        method: "POST",
        headers: { Authorization: `Bearer ${server.token}` },
      });
      assert.equal(stop.status, 202);
      await stop.body?.cancel();
      assert.equal(control.state, "stopping");
    } finally {
      await server.close();
    }
    assert.ok(!(await exists(`${dir}/control.json`)));
    await assert.rejects(fetch(`${server.url}/status`));
  });
});

Deno.test("startControlServer() off loopback requires the token for reads too", async () => {
  await withRunDir(async (dir) => {
    const control = new RunControl(TrainConfigSchema.parse({}));
    const server = await startControlServer(control, { host: "0.0.0.0", port: 0, runDir: dir });
    try {
      const port = new URL(server.url).port;
      const file: ControlFile = JSON.parse(await Deno.readTextFile(`${dir}/control.json`));
      assert.equal(file.tokenForReads, true);
      const open = await fetch(`http://127.0.0.1:${port}/status`);
      assert.equal(open.status, 401);
      await open.body?.cancel();
      const authed = await fetch(`http://127.0.0.1:${port}/status`, {
        headers: { Authorization: `Bearer ${server.token}` },
      });
      assert.equal(authed.status, 200);
      await authed.body?.cancel();
    } finally {
      await server.close();
    }
  });
});

Deno.test("deno task ctl reads the run folder and drives the run", async () => {
  await withRunDir(async (dir) => {
    const control = new RunControl(TrainConfigSchema.parse({ run: { steps: 50 } }), {
      eventsPath: `${dir}/events.jsonl`,
    });
    const server = await startControlServer(control, { host: "127.0.0.1", port: 0, runDir: dir });
    try {
      await control.atStepBoundary();
      control.recordStep(3, { "reward/mean": 0.5 });

      const status = await ctl("status", "--run-dir", dir);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /^state: running\nstep: 3\/50\nalgorithm: mgrpo\n/);

      const set = await ctl(
        "set",
        "learner.lr=1e-4",
        'mgrpo.guide_phrases=["Look again."]',
        "--run-dir",
        dir,
      );
      assert.equal(set.code, 0, set.stderr);
      assert.match(set.stdout, /learner\.lr: 0\.0003 -> 0\.0001\n/);
      assert.equal(control.config.learner.lr, 1e-4);
      assert.deepEqual(control.config.mgrpo.guide_phrases, ["Look again."]);

      const refused = await ctl("set", "run.steps=3", "--run-dir", dir);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^409: Cannot change config: field "run\.steps" cannot change/);
      assert.equal(control.config.run.steps, 50);

      const pause = await ctl("pause", "--run-dir", dir);
      assert.equal(pause.code, 0, pause.stderr);
      assert.equal(pause.stdout, "pause: accepted, takes effect after step 3\n");
      assert.equal(control.state, "pausing");

      const url = await ctl("url", "--run-dir", dir);
      assert.equal(url.stdout, `${server.url}\n`);
    } finally {
      await server.close();
    }
    const gone = await ctl("status", "--run-dir", dir);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no control\.json in it \(the run has ended/);
  });
});

Deno.test("deno task ctl refuses an unknown command and a malformed assignment (exit 2)", async () => {
  const unknown = await ctl("jump");
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Cannot run "jump": unknown command: commands are status, pause/);
  const malformed = await ctl("set", "learner.lr");
  assert.equal(malformed.code, 2);
  assert.match(malformed.stderr, /Cannot set: expected KEY=VALUE: current value is "learner\.lr"/);
});
