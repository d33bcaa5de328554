/**
 * The control server over a real socket (`startControlServer`) and `deno task ctl` against
 * it, as a separate process.
 */
import assert from "node:assert/strict";
import { TrainConfigSchema } from "../../algorithms/builtins.ts";
import {
  type ControlFile,
  type ControlServerOptions,
  LocalLoopControl,
  startControlServer,
} from "../../server/serve.ts";
import { exists, REPO_ROOT, sleep } from "../helpers.ts";

function serverOptions(dir: string, host = "127.0.0.1"): ControlServerOptions {
  return {
    host,
    port: 0,
    runDir: dir,
    startStep: 0,
    totalSteps: 50,
    policyVersion: 0,
    eventsPath: `${dir}/events.jsonl`,
    noReference: true,
  };
}

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
    const server = await startControlServer(TrainConfigSchema.parse({}), serverOptions(dir));
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
      // The loop learns it at its next boundary.
      assert.deepEqual(await server.atStepBoundary(), { stop: true, checkpoint: false });
    } finally {
      await server.close();
    }
    assert.ok(!(await exists(`${dir}/control.json`)));
    assert.ok(!(await exists(`${dir}/control-token`)), "the token does not outlive the server");
    await assert.rejects(fetch(`${server.url}/status`));
  });
});

Deno.test("startControlServer() off loopback requires the token for reads too", async () => {
  await withRunDir(async (dir) => {
    const config = TrainConfigSchema.parse({});
    const server = await startControlServer(config, serverOptions(dir, "0.0.0.0"));
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
    const config = TrainConfigSchema.parse({ run: { steps: 50 } });
    const server = await startControlServer(config, serverOptions(dir));
    const getConfig = async () => await (await fetch(`${server.url}/config`)).json();
    try {
      assert.deepEqual(await server.atStepBoundary(), { stop: false, checkpoint: false });
      server.recordStep(3, { "reward/mean": 0.5 }, { actors: {}, policyVersion: 3 });

      const status = await ctl("status", "--run-dir", dir);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /^state: running\nstep: 3\/50\nalgorithm: mgrpo\n/);

      const set = await ctl(
        "set",
        "learner.lr=3e-4",
        'mgrpo.guide_phrases=["Look again."]',
        "--run-dir",
        dir,
      );
      assert.equal(set.code, 0, set.stderr);
      assert.match(set.stdout, /learner\.lr: 0\.0001 -> 0\.0003\n/);
      assert.equal((await getConfig()).learner.lr, 3e-4);
      assert.deepEqual((await getConfig()).mgrpo.guide_phrases, ["Look again."]);

      const refused = await ctl("set", "run.steps=3", "--run-dir", dir);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^409: Cannot change config: field "run\.steps" cannot change/);
      assert.equal((await getConfig()).run.steps, 50);

      // β cannot rise above 0 in a run without a reference policy.
      const beta = await ctl("set", "grpo.beta=0.1", "--run-dir", dir);
      assert.equal(beta.code, 1);
      assert.match(
        beta.stderr,
        /^409: Cannot change config: field "grpo.beta" can be above 0 only/,
      );

      const pause = await ctl("pause", "--run-dir", dir);
      assert.equal(pause.code, 0, pause.stderr);
      assert.equal(pause.stdout, "pause: accepted, takes effect after step 3\n");
      assert.equal((await (await fetch(`${server.url}/status`)).json()).state, "pausing");

      // The loop's next boundary waits while paused, and carries the applied changes.
      const boundary = server.atStepBoundary();
      const raced = await Promise.race([boundary, sleep(300).then(() => "waiting")]);
      assert.equal(raced, "waiting");
      assert.equal((await ctl("resume", "--run-dir", dir)).code, 0);
      const resumed = await boundary;
      assert.equal(resumed.stop, false);
      assert.equal(resumed.config?.learner.lr, 3e-4);
      assert.deepEqual(resumed.changes?.map((c) => c.field), ["learner.lr", "mgrpo.guide_phrases"]);

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

Deno.test("LocalLoopControl hands live changes to the loop at the next boundary", async () => {
  await withRunDir(async (dir) => {
    const local = new LocalLoopControl(TrainConfigSchema.parse({}), serverOptions(dir));
    assert.deepEqual(await local.atStepBoundary(), { stop: false, checkpoint: false });
    await local.control.patchConfig({ "sampler.temperature": 0.5 });
    const next = await local.atStepBoundary();
    assert.equal(next.config?.sampler.temperature, 0.5);
    assert.deepEqual(next.changes, [{ field: "sampler.temperature", old: 1, new: 0.5 }]);
    assert.deepEqual(await local.atStepBoundary(), { stop: false, checkpoint: false });
    local.requestStop();
    local.requestStop(); // a second request (a second signal) is not an error
    assert.deepEqual(await local.atStepBoundary(), { stop: true, checkpoint: false });
  });
});
