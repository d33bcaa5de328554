import assert from "node:assert/strict";
import { exists, nextEvent, sleep, startLoop } from "../helpers.ts";
import { TrainConfigSchema } from "../../algorithms/builtins.ts";
import {
  type ConfigChange,
  ConfigPatchError,
  type ControlEvent,
  generateToken,
  LIVE_FIELDS,
  RunControl,
  type RunControlOptions,
  RunStateError,
  writeTokenFile,
} from "../../server/run_control.ts";

const T0 = new Date("2025-01-02T03:04:05.000Z");

function makeControl(options: RunControlOptions = {}): RunControl {
  return new RunControl(TrainConfigSchema.parse({ run: { steps: 1000 } }), {
    now: () => T0,
    ...options,
  });
}

async function tempFile(name: string): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "mgrpo_control_" });
  return { path: `${dir}/${name}`, cleanup: () => Deno.remove(dir, { recursive: true }) };
}

Deno.test("RunControl.status() reports the run before its first step", () => {
  const control = makeControl({ startStep: 4, policyVersion: 4 });
  assert.deepEqual(control.status(), {
    state: "starting",
    step: 4,
    totalSteps: 1000,
    algorithm: "mgrpo",
    policyVersion: 4,
    actors: {},
    checkpointPending: false,
    startedAt: "2025-01-02T03:04:05.000Z",
    lastStepAt: null,
    error: null,
  });
});

Deno.test("RunControl.recordStep() updates step, metrics, actors and policy version", () => {
  const control = makeControl();
  const events: ControlEvent[] = [];
  control.subscribe((event) => events.push(event));
  control.recordStep(3, { "reward/mean": 0.25, "time/sampler": 1.5 }, {
    actors: { sampler: { busyMs: 120, queueDepth: 2 }, learner: { busyMs: 80, queueDepth: 0 } },
    policyVersion: 3,
  });
  const status = control.status();
  assert.equal(status.step, 3);
  assert.equal(status.policyVersion, 3);
  assert.deepEqual(status.actors, {
    sampler: { busyMs: 120, queueDepth: 2 },
    learner: { busyMs: 80, queueDepth: 0 },
  });
  assert.equal(status.lastStepAt, "2025-01-02T03:04:05.000Z");
  assert.deepEqual(control.latestMetrics(), { "reward/mean": 0.25, "time/sampler": 1.5 });
  assert.deepEqual(events, [
    { type: "step", step: 3, metrics: { "reward/mean": 0.25, "time/sampler": 1.5 } },
  ]);
});

Deno.test("RunControl.recordStep() keeps only busyMs and queueDepth of actor stats", () => {
  const control = makeControl();
  const stats = { state: "idle", busyMs: 5, queueDepth: 1, handled: 9, restarts: 0 };
  control.recordStep(1, {}, { actors: { verifier: stats } });
  assert.deepEqual(control.status().actors, { verifier: { busyMs: 5, queueDepth: 1 } });
});

Deno.test("RunControl.atStepBoundary() moves starting to running and resolves at once", async () => {
  const control = makeControl();
  const states: string[] = [];
  control.subscribe((event) => event.type === "state" && states.push(event.state));
  assert.deepEqual(await control.atStepBoundary(), { stop: false, checkpoint: false });
  assert.equal(control.state, "running");
  assert.deepEqual(await control.atStepBoundary(), { stop: false, checkpoint: false });
  assert.deepEqual(states, ["running"]);
});

Deno.test("RunControl.requestPause() holds the loop at the next boundary until requestResume()", async () => {
  const control = makeControl();
  const { progress, done } = startLoop(control);
  await nextEvent(control, (e) => e.type === "step" && e.step === 3);
  const paused = nextEvent(control, (e) => e.type === "state" && e.state === "paused");
  const accepted = control.requestPause();
  assert.equal(control.state, "pausing");
  await paused;
  const pausedAt = progress.step;
  assert.equal(accepted.effectiveAfterStep, pausedAt);
  await sleep(30);
  assert.equal(progress.step, pausedAt);
  assert.equal(control.status().step, pausedAt);
  assert.equal(control.status().state, "paused");

  assert.deepEqual(control.requestResume(), { accepted: true, effectiveAfterStep: pausedAt });
  await nextEvent(control, (e) => e.type === "step" && e.step === pausedAt + 2);
  assert.ok(progress.step >= pausedAt + 2);
  control.requestStop();
  await done;
  assert.equal(control.state, "stopped");
});

Deno.test("RunControl.requestPause() reports the step in progress as effectiveAfterStep", async () => {
  const control = makeControl();
  await control.atStepBoundary(); // step 1 starts
  assert.deepEqual(control.requestPause(), { accepted: true, effectiveAfterStep: 1 });
  control.recordStep(1, {});
  assert.equal(control.state, "pausing");
  const boundary = control.atStepBoundary();
  assert.equal(control.state, "paused");
  assert.deepEqual(control.requestCheckpoint(), { accepted: true, effectiveAfterStep: 1 });
  assert.deepEqual(control.requestResume(), { accepted: true, effectiveAfterStep: 1 });
  assert.deepEqual(await boundary, { stop: false, checkpoint: true });
});

Deno.test("RunControl.requestResume() cancels a pause that has not taken effect", async () => {
  const control = makeControl();
  control.requestPause();
  control.requestResume();
  assert.deepEqual(await control.atStepBoundary(), { stop: false, checkpoint: false });
  assert.equal(control.state, "running");
});

Deno.test("RunControl.requestStop() makes the boundary return stop", async () => {
  const control = makeControl();
  const { progress, done } = startLoop(control);
  await nextEvent(control, (e) => e.type === "step" && e.step === 2);
  const accepted = control.requestStop();
  assert.equal(control.state, "stopping");
  await done;
  assert.equal(progress.stoppedAt, accepted.effectiveAfterStep);
  assert.equal(progress.step, progress.stoppedAt);
  assert.equal(control.state, "stopped");
  assert.deepEqual(await control.atStepBoundary(), { stop: true, checkpoint: false });
});

Deno.test("RunControl.requestStop() wakes a paused loop", async () => {
  const control = makeControl();
  control.requestPause();
  const boundary = control.atStepBoundary();
  assert.equal(control.state, "paused");
  control.requestStop();
  assert.deepEqual(await boundary, { stop: true, checkpoint: false });
});

Deno.test("RunControl.requestCheckpoint() is reported at exactly one boundary", async () => {
  const control = makeControl();
  const { progress, done } = startLoop(control);
  await nextEvent(control, (e) => e.type === "step" && e.step === 2);
  const first = control.requestCheckpoint();
  assert.deepEqual(control.requestCheckpoint(), first); // the same request
  assert.equal(control.status().checkpointPending, true);
  await nextEvent(control, (e) => e.type === "step" && e.step === first.effectiveAfterStep + 3);
  control.requestStop();
  await done;
  assert.deepEqual(progress.checkpoints, [first.effectiveAfterStep]);
  assert.equal(control.status().checkpointPending, false);
});

Deno.test("RunControl.markFailed() wakes a paused loop and records the error", async () => {
  const control = makeControl();
  control.requestPause();
  const boundary = control.atStepBoundary();
  control.markFailed(new Error('actor "learner" failed'));
  assert.deepEqual(await boundary, { stop: true, checkpoint: false });
  assert.equal(control.status().state, "failed");
  assert.equal(control.status().error, 'actor "learner" failed');
  control.markStopped(); // the end state stays
  assert.equal(control.state, "failed");
});

Deno.test("RunControl requests refuse states that cannot take them", async () => {
  const control = makeControl();
  assert.throws(() => control.requestResume(), (error) => {
    assert.ok(error instanceof RunStateError);
    assert.equal(error.state, "starting");
    assert.equal(
      error.message,
      'Cannot resume the run: it is not paused: current state is "starting"',
    );
    return true;
  });
  control.requestPause();
  assert.throws(
    () => control.requestPause(),
    new RunStateError(
      'Cannot pause the run: it is not running: current state is "pausing"',
      "pausing",
    ),
  );
  control.requestStop();
  assert.throws(
    () => control.requestStop(),
    /^RunStateError: Cannot stop the run: it is already stopping: current state is "stopping"$/,
  );
  assert.deepEqual(await control.atStepBoundary(), { stop: true, checkpoint: false });
  control.markStopped();
  for (const request of ["requestPause", "requestResume", "requestStop", "requestCheckpoint"]) {
    assert.throws(
      () => (control[request as "requestStop"])(),
      (error) => error instanceof RunStateError && error.state === "stopped",
    );
  }
});

Deno.test("RunControl.patchConfig() applies nested and flat patches and tells listeners", async () => {
  const { path, cleanup } = await tempFile("events.jsonl");
  try {
    const control = makeControl({ eventsPath: path });
    control.recordStep(7, {});
    const seen: ConfigChange[][] = [];
    control.onConfigChange((changes) => seen.push(changes));
    const changes = await control.patchConfig({
      learner: { lr: 3e-4 },
      "sampler.temperature": 0.7,
      mgrpo: { guide_phrases: ["Wait,"] },
    });
    const defaults = TrainConfigSchema.parse({}).mgrpo.guide_phrases; // the paper's seven
    assert.equal(defaults.length, 7);
    const expected = [
      { field: "learner.lr", old: 1e-4, new: 3e-4 },
      { field: "sampler.temperature", old: 1, new: 0.7 },
      { field: "mgrpo.guide_phrases", old: defaults, new: ["Wait,"] },
    ];
    assert.deepEqual(changes, expected);
    assert.deepEqual(seen, [expected]);
    assert.equal(control.config.learner.lr, 3e-4);
    assert.equal(control.config.sampler.temperature, 0.7);
    assert.deepEqual(control.config.mgrpo.guide_phrases, ["Wait,"]);
    assert.equal(control.config.learner.lr_schedule, "cosine"); // the rest of the section stays
    const lines = (await Deno.readTextFile(path)).trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines, [
      { time: T0.toISOString(), step: 7, field: "learner.lr", old: 1e-4, new: 3e-4 },
      { time: T0.toISOString(), step: 7, field: "sampler.temperature", old: 1, new: 0.7 },
      {
        time: T0.toISOString(),
        step: 7,
        field: "mgrpo.guide_phrases",
        old: defaults,
        new: ["Wait,"],
      },
    ]);
    await control.patchConfig({ grpo: { beta: 0.04 } });
    assert.equal((await Deno.readTextFile(path)).trimEnd().split("\n").length, 4);
  } finally {
    await cleanup();
  }
});

Deno.test("RunControl.patchConfig() keeps the old config object intact", async () => {
  const control = makeControl();
  const before = control.config;
  await control.patchConfig({ "grpo.epsilon": 0.3 });
  assert.equal(before.grpo.epsilon, 0.2);
  assert.equal(control.config.grpo.epsilon, 0.3);
  assert.notEqual(control.config, before);
});

Deno.test("RunControl.patchConfig() refuses a bad value and changes nothing", async () => {
  const { path, cleanup } = await tempFile("events.jsonl");
  try {
    const control = makeControl({ eventsPath: path });
    const before = control.config;
    let called = false;
    control.onConfigChange(() => called = true);
    await assert.rejects(
      control.patchConfig({ learner: { lr: -1 }, sampler: { temperature: 0.5 } }),
      (error) => {
        assert.ok(error instanceof ConfigPatchError);
        assert.equal(error.kind, "invalid");
        assert.equal(
          error.message,
          'Cannot change config: field "learner.lr" must be > 0: current value is -1',
        );
        assert.equal(error.issues.length, 1);
        assert.deepEqual(error.issues[0]!.path, ["learner", "lr"]);
        assert.equal(error.issues[0]!.code, "too_small");
        return true;
      },
    );
    assert.equal(control.config, before);
    assert.equal(control.config.sampler.temperature, 1);
    assert.equal(called, false);
    assert.equal(await exists(path), false);
  } finally {
    await cleanup();
  }
});

Deno.test("RunControl.patchConfig() lists every bad value in the project's words", async () => {
  const control = makeControl();
  await assert.rejects(
    control.patchConfig({
      "mgrpo.num_corrections": 2.5,
      "mgrpo.guide_phrases": [],
      "sampler.top_p": 2,
      "run.log_every": "often",
    }),
    (error) => {
      assert.ok(error instanceof ConfigPatchError);
      assert.equal(
        error.message,
        [
          'Cannot change config: field "mgrpo.num_corrections" must be an integer: current value is 2.5',
          'field "mgrpo.guide_phrases" must have at least 1 items: current value is []',
          'field "sampler.top_p" must be <= 1: current value is 2',
          'field "run.log_every" must be an integer: current value is "often"',
        ].join("\n  "),
      );
      assert.deepEqual(error.issues.map((i) => i.path.join(".")), [
        "mgrpo.num_corrections",
        "mgrpo.guide_phrases",
        "sampler.top_p",
        "run.log_every",
      ]);
      return true;
    },
  );
});

Deno.test("RunControl.patchConfig() refuses fields that cannot change during a run", async () => {
  const control = makeControl();
  await assert.rejects(
    control.patchConfig({ run: { steps: 5, log_every: 2 }, "learner.micro_batch_size": 8 }),
    (error) => {
      assert.ok(error instanceof ConfigPatchError);
      assert.equal(error.kind, "not_live");
      // An MGRPO run (the default algorithm): every live field but PPO's clip range.
      assert.deepEqual(error.liveFields, LIVE_FIELDS.filter((f) => f !== "ppo.cliprange"));
      assert.equal(
        error.message,
        'Cannot change config: fields "run.steps", "learner.micro_batch_size" cannot change ' +
          'during this run: live fields are "learner.lr", "sampler.temperature", ' +
          '"sampler.top_p", "eval.every", "run.log_every", "grpo.beta", "grpo.epsilon", ' +
          '"mgrpo.guide_phrases", "mgrpo.num_corrections"',
      );
      return true;
    },
  );
  assert.equal(control.config.run.log_every, 1);
});

Deno.test("RunControl.patchConfig() refuses malformed patches", async () => {
  const control = makeControl();
  for (
    const [patch, message] of [
      [[1], "Cannot change config: the patch must be a JSON object: current value is [1]"],
      [null, "Cannot change config: the patch must be a JSON object: current value is null"],
      [{}, "Cannot change config: the patch names no field: current value is {}"],
      [{ learner: {} }, "Cannot change config: the patch names no field: current value is {}"],
      [
        { learner: { lr: 3e-4 }, "learner.lr": 2e-4 },
        'Cannot change config: field "learner.lr" is given twice (nested and flat)',
      ],
    ] as const
  ) {
    await assert.rejects(control.patchConfig(patch), (error) => {
      assert.ok(error instanceof ConfigPatchError);
      assert.equal(error.kind, "invalid");
      assert.equal(error.message, message);
      return true;
    });
  }
  assert.equal(control.config.learner.lr, 1e-4);
});

Deno.test("RunControl.patchConfig() skips fields set to their current value", async () => {
  const { path, cleanup } = await tempFile("events.jsonl");
  try {
    const control = makeControl({ eventsPath: path });
    let calls = 0;
    control.onConfigChange(() => calls++);
    assert.deepEqual(await control.patchConfig({ "learner.lr": 1e-4, "grpo.beta": 0 }), []);
    assert.equal(calls, 0);
    assert.equal(await exists(path), false);
    assert.deepEqual(await control.patchConfig({ "learner.lr": 1e-4, "grpo.beta": 0.1 }), [
      { field: "grpo.beta", old: 0, new: 0.1 },
    ]);
    assert.equal(calls, 1);
  } finally {
    await cleanup();
  }
});

Deno.test("RunControl.patchConfig() applies concurrent patches in call order", async () => {
  const { path, cleanup } = await tempFile("events.jsonl");
  try {
    const control = makeControl({ eventsPath: path });
    const [a, b] = await Promise.all([
      control.patchConfig({ "learner.lr": 3e-4 }),
      control.patchConfig({ "learner.lr": 2e-4 }),
    ]);
    assert.deepEqual(a, [{ field: "learner.lr", old: 1e-4, new: 3e-4 }]);
    assert.deepEqual(b, [{ field: "learner.lr", old: 3e-4, new: 2e-4 }]);
    assert.equal(control.config.learner.lr, 2e-4);
  } finally {
    await cleanup();
  }
});

Deno.test("RunControl.subscribe() delivers state, step and config events until unsubscribed", async () => {
  const control = makeControl();
  const events: ControlEvent[] = [];
  const unsubscribe = control.subscribe((event) => events.push(event));
  await control.atStepBoundary();
  control.recordStep(1, { kl: 0.5 });
  await control.patchConfig({ "grpo.beta": 0.1 });
  unsubscribe();
  control.recordStep(2, { kl: 0.25 });
  assert.deepEqual(events, [
    { type: "state", state: "running", step: 0 },
    { type: "step", step: 1, metrics: { kl: 0.5 } },
    { type: "config", step: 1, changes: [{ field: "grpo.beta", old: 0, new: 0.1 }] },
  ]);
});

Deno.test("RunControl.recordSamples() keeps the latest step's first maxSamples groups", () => {
  const control = makeControl({ maxSamples: 2 });
  assert.deepEqual(control.samples(), []);
  const group = (step: number, prompt: string) => ({
    step,
    prompt,
    completions: [{ text: `${prompt} 2`, reward: 1, advantage: 0, reason: "correct" }],
  });
  control.recordSamples([group(1, "a"), group(1, "b"), group(1, "c")]);
  assert.deepEqual(control.samples(), [group(1, "a"), group(1, "b")]);
  control.recordSamples([group(2, "d")]);
  assert.deepEqual(control.samples(), [group(2, "d")]);
  assert.throws(
    () => makeControl({ maxSamples: -1 }),
    new RangeError(
      "Cannot create run control: maxSamples must be an integer >= 0: current value is -1",
    ),
  );
});

Deno.test("generateToken() returns 64 hex digits, different every time", () => {
  const a = generateToken();
  const b = generateToken();
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.notEqual(a, b);
});

Deno.test("writeTokenFile() writes the token readable by the owner only", {
  ignore: Deno.build.os === "windows",
}, async () => {
  const { path, cleanup } = await tempFile("token");
  try {
    await Deno.writeTextFile(path, "old token, world-readable", { mode: 0o644 });
    await Deno.chmod(path, 0o644);
    await writeTokenFile(path, "abc123");
    assert.equal(await Deno.readTextFile(path), "abc123\n");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const fresh = `${path}-new`;
    await writeTokenFile(fresh, "def456");
    assert.equal((await Deno.stat(fresh)).mode! & 0o777, 0o600);
  } finally {
    await cleanup();
  }
});
