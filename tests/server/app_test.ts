import assert from "node:assert/strict";
import { nextEvent, sleep, startLoop } from "../helpers.ts";
import { TrainConfigSchema } from "../../algorithms/builtins.ts";
import { hc } from "hono/client";
import { type ControlApp, createControlApp } from "../../server/app.ts";
import { type SampleGroup, SampleGroupSchema } from "../../actors/messages.ts";
import { z } from "zod";
import {
  type ConfigChange,
  LIVE_FIELDS,
  RunControl,
  type RunControlOptions,
} from "../../server/run_control.ts";

const TOKEN = "0123456789abcdef";
const AUTH = { Authorization: `Bearer ${TOKEN}` };
const MUTATING = [
  ["POST", "/pause"],
  ["POST", "/resume"],
  ["POST", "/stop"],
  ["POST", "/checkpoint"],
  ["PATCH", "/config"],
] as const;
const READS = ["/status", "/config", "/metrics", "/events", "/samples", "/openapi.json"] as const;

function setup(requireTokenForReads = false, options: RunControlOptions = {}) {
  const control = new RunControl(TrainConfigSchema.parse({ run: { steps: 1000 } }), {
    now: () => new Date("2025-01-02T03:04:05.000Z"),
    ...options,
  });
  const app = createControlApp(control, { token: TOKEN, requireTokenForReads });
  return { control, app };
}

function patch(app: ReturnType<typeof setup>["app"], body: string, headers = AUTH) {
  return app.request("/config", {
    method: "PATCH",
    headers: { ...headers, "Content-Type": "application/json" },
    body,
  });
}

/** Reads server-sent events from `body` until `count` have arrived. */
async function readEvents(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  count: number,
  buffer: { text: string },
): Promise<{ event: string; id: string; data: unknown }[]> {
  const decoder = new TextDecoder();
  const events: { event: string; id: string; data: unknown }[] = [];
  while (events.length < count) {
    let end = buffer.text.indexOf("\n\n");
    while (end < 0) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`Stream ended after ${events.length} events`);
      buffer.text += decoder.decode(value, { stream: true });
      end = buffer.text.indexOf("\n\n");
    }
    const frame = buffer.text.slice(0, end);
    buffer.text = buffer.text.slice(end + 2);
    const fields = Object.fromEntries(
      frame.split("\n").map((
        line,
      ) => [line.slice(0, line.indexOf(": ")), line.slice(line.indexOf(": ") + 2)]),
    );
    events.push({
      event: fields.event ?? "",
      id: fields.id ?? "",
      data: JSON.parse(fields.data ?? "null"),
    });
  }
  return events;
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mgrpo_app_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// --- reads ---

Deno.test("createControlApp() GET /status returns the run's status", async () => {
  const { control, app } = setup();
  control.recordStep(2, { "reward/mean": 0.5 }, {
    actors: { sampler: { busyMs: 10, queueDepth: 1 } },
    policyVersion: 2,
  });
  const res = await app.request("/status");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("Content-Type")!, /^application\/json/);
  assert.deepEqual(await res.json(), {
    state: "starting",
    step: 2,
    totalSteps: 1000,
    algorithm: "mgrpo",
    policyVersion: 2,
    actors: { sampler: { busyMs: 10, queueDepth: 1 } },
    checkpointPending: false,
    startedAt: "2025-01-02T03:04:05.000Z",
    lastStepAt: "2025-01-02T03:04:05.000Z",
    error: null,
  });
});

Deno.test("createControlApp() GET /config returns the live config", async () => {
  const { control, app } = setup();
  await control.patchConfig({ "learner.lr": 3e-4 });
  const body = await (await app.request("/config")).json();
  assert.equal(body.learner.lr, 3e-4);
  assert.equal(body.run.steps, 1000);
});

Deno.test("createControlApp() GET /samples returns the latest step's sample groups", async () => {
  const { control, app } = setup();
  assert.deepEqual(await (await app.request("/samples")).json(), []);
  const group = (step: number): SampleGroup => ({
    step,
    prompt: "2+3*4=",
    completions: [{
      text: "<think>3*4=12</think>15",
      reward: 0,
      advantage: -0.70700,
      correct: false,
      reason: "wrong answer",
      guidePhrase: "Check each step again.",
      discarded: false,
      corrections: [
        {
          text: "3*4=12, 2+12=14",
          reward: 1,
          advantage: 0.70700,
          correct: true,
          reason: "correct",
        },
        { text: "15", reward: 0, advantage: -0.70700, correct: false, reason: "wrong answer" },
      ],
    }, {
      text: "<think>3*4=12</think>14",
      reward: 1,
      advantage: 0.70700,
      correct: true,
      reason: "correct",
      guidePhrase: "Wait.",
      discarded: false,
      corrections: [],
    }],
  });
  control.recordSamples([group(1)]);
  control.recordSamples([group(2), { ...group(2), prompt: "1+1=" }]);
  const res = await app.request("/samples");
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.deepEqual(body, [group(2), { ...group(2), prompt: "1+1=" }]);
  assert.deepEqual(z.array(SampleGroupSchema).parse(body), body);
  // The OpenAPI document describes the same shape.
  const doc = await (await app.request("/openapi.json")).json();
  assert.deepEqual(doc.paths["/samples"].get.responses["200"].content["application/json"].schema, {
    type: "array",
    items: { $ref: "#/components/schemas/SampleGroup" },
  });
  const schema = doc.components.schemas.SampleGroup;
  assert.deepEqual(schema.required, ["step", "prompt", "completions"]);
  const completion = schema.properties.completions.items;
  assert.deepEqual(Object.keys(completion.properties), [
    "text",
    "reward",
    "advantage",
    "correct",
    "reason",
    "guidePhrase",
    "discarded",
    "corrections",
  ]);
  assert.deepEqual(completion.properties.advantage.type, ["number", "null"]);
});

Deno.test("createControlApp() GET /metrics writes the Prometheus text format", async () => {
  const { control, app } = setup();
  control.recordStep(3, {
    step: 3,
    "reward/mean": 0.625,
    "mgrpo/acc_t1": 0.5,
    "time/sampler": 1.25e-3,
    kl: Infinity,
    "reward.mean": 9, // takes the same name as reward/mean: left out
  });
  const res = await app.request("/metrics");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  assert.equal(
    await res.text(),
    [
      "# HELP mgrpo_step Last completed training step",
      "# TYPE mgrpo_step gauge",
      "mgrpo_step 3",
      "# HELP mgrpo_reward_mean reward/mean",
      "# TYPE mgrpo_reward_mean gauge",
      "mgrpo_reward_mean 0.625",
      "# HELP mgrpo_mgrpo_acc_t1 mgrpo/acc_t1",
      "# TYPE mgrpo_mgrpo_acc_t1 gauge",
      "mgrpo_mgrpo_acc_t1 0.5",
      "# HELP mgrpo_time_sampler time/sampler",
      "# TYPE mgrpo_time_sampler gauge",
      "mgrpo_time_sampler 0.00125",
      "# HELP mgrpo_kl kl",
      "# TYPE mgrpo_kl gauge",
      "mgrpo_kl +Inf",
      "",
    ].join("\n"),
  );
});

Deno.test("createControlApp() GET /metrics before the first step has only mgrpo_step", async () => {
  const { app } = setup(false, { startStep: 5 });
  assert.equal(
    await (await app.request("/metrics")).text(),
    "# HELP mgrpo_step Last completed training step\n# TYPE mgrpo_step gauge\nmgrpo_step 5\n",
  );
});

Deno.test("createControlApp() GET /openapi.json lists every route", async () => {
  const { app } = setup();
  const doc = await (await app.request("/openapi.json")).json();
  assert.equal(doc.openapi, "3.1.0");
  assert.deepEqual(Object.keys(doc.paths).sort(), [
    "/",
    "/checkpoint",
    "/config",
    "/events",
    "/history",
    "/metrics",
    "/openapi.json",
    "/pause",
    "/resume",
    "/samples",
    "/static/dashboard_series.js",
    "/static/uplot/uPlot.iife.min.js",
    "/static/uplot/uPlot.min.css",
    "/status",
    "/stop",
  ]);
  assert.deepEqual(Object.keys(doc.paths["/config"]).sort(), ["get", "patch"]);
  for (const path of ["/pause", "/resume", "/stop", "/checkpoint"]) {
    assert.deepEqual(Object.keys(doc.paths[path]), ["post"]);
    assert.deepEqual(doc.paths[path].post.security, [{ bearer: [] }]);
  }
  assert.deepEqual(doc.paths["/status"].get.security, []);
  const [nested, flat] = doc.components.schemas.ConfigPatch.anyOf;
  assert.deepEqual(nested.properties.learner.properties.lr, {
    type: "number",
    exclusiveMinimum: 0,
    description: "η: peak learning rate of Adam(W)",
  });
  // The run's live fields: an MGRPO run (the default) has all but PPO's clip range.
  assert.deepEqual(
    Object.keys(flat.properties),
    LIVE_FIELDS.filter((f) => f !== "ppo.cliprange"),
  );
  assert.equal(flat.additionalProperties, false);
});

Deno.test("createControlApp() answers an unknown route with 404 JSON", async () => {
  const { app } = setup();
  const res = await app.request("/nope", { method: "DELETE" });
  assert.equal(res.status, 404);
  assert.deepEqual(await res.json(), { error: 'No route "DELETE /nope"' });
});

// --- auth ---

Deno.test("createControlApp() refuses mutating routes without the right token", async () => {
  const { control, app } = setup();
  const cases: [Record<string, string>, string][] = [
    [{}, 'Cannot authorize request: no "Authorization: Bearer <token>" header'],
    [{ Authorization: "Bearer wrong" }, "Cannot authorize request: the bearer token is wrong"],
    [
      { Authorization: `Bearer ${TOKEN}x` },
      "Cannot authorize request: the bearer token is wrong",
    ],
    [
      { Authorization: `Basic ${TOKEN}` },
      'Cannot authorize request: the Authorization header is not "Bearer <token>"',
    ],
  ];
  for (const [method, path] of MUTATING) {
    for (const [headers, error] of cases) {
      const res = await app.request(path, {
        method,
        headers: { ...headers, "Content-Type": "application/json" },
        body: '{"learner":{"lr":1}}',
      });
      assert.equal(res.status, 401, `${method} ${path} with ${JSON.stringify(headers)}`);
      assert.equal(res.headers.get("WWW-Authenticate"), 'Bearer realm="mgrpo"');
      assert.deepEqual(await res.json(), { error });
    }
  }
  assert.equal(control.state, "starting");
  assert.equal(control.config.learner.lr, 1e-4);
  assert.equal(control.status().checkpointPending, false);
});

Deno.test("createControlApp() leaves reads open when requireTokenForReads is false", async () => {
  const { app } = setup(false);
  for (const path of READS) {
    const res = await app.request(path);
    assert.equal(res.status, 200, path);
    await res.body?.cancel();
  }
});

Deno.test("createControlApp() requires the token for reads when requireTokenForReads is true", async () => {
  const { app } = setup(true);
  for (const path of READS) {
    const denied = await app.request(path);
    assert.equal(denied.status, 401, path);
    await denied.body?.cancel();
    const wrong = await app.request(path, { headers: { Authorization: "Bearer nope" } });
    assert.equal(wrong.status, 401, path);
    await wrong.body?.cancel();
    const ok = await app.request(path, { headers: AUTH });
    assert.equal(ok.status, 200, path);
    await ok.body?.cancel();
  }
  const doc = await (await app.request("/openapi.json", { headers: AUTH })).json();
  assert.deepEqual(doc.paths["/status"].get.security, [{ bearer: [] }]);
});

Deno.test("createControlApp() accepts the auth scheme in any case", async () => {
  const { app } = setup();
  const res = await app.request("/checkpoint", {
    method: "POST",
    headers: { Authorization: `bearer ${TOKEN}` },
  });
  assert.equal(res.status, 202);
  await res.body?.cancel();
});

// --- requests ---

Deno.test("createControlApp() POST /pause and /resume pause and resume a training loop", async () => {
  const { control, app } = setup();
  const { progress, done } = startLoop(control);
  await nextEvent(control, (e) => e.type === "step" && e.step === 2);
  const paused = nextEvent(control, (e) => e.type === "state" && e.state === "paused");
  const res = await app.request("/pause", { method: "POST", headers: AUTH });
  assert.equal(res.status, 202);
  const { effectiveAfterStep } = await res.json();
  await paused;
  assert.equal(progress.step, effectiveAfterStep);
  await sleep(30);
  assert.equal(progress.step, effectiveAfterStep); // no step while paused
  const status = await (await app.request("/status")).json();
  assert.equal(status.state, "paused");
  assert.equal(status.step, effectiveAfterStep);

  const again = await app.request("/pause", { method: "POST", headers: AUTH });
  assert.equal(again.status, 409);
  assert.deepEqual(await again.json(), {
    error: 'Cannot pause the run: it is not running: current state is "paused"',
    state: "paused",
  });

  const resumed = await app.request("/resume", { method: "POST", headers: AUTH });
  assert.equal(resumed.status, 202);
  assert.deepEqual(await resumed.json(), { accepted: true, effectiveAfterStep });
  await nextEvent(control, (e) => e.type === "step" && e.step === effectiveAfterStep + 2);
  assert.ok(progress.step >= effectiveAfterStep + 2);

  const stopped = await app.request("/stop", { method: "POST", headers: AUTH });
  assert.equal(stopped.status, 202);
  await done;
});

Deno.test("createControlApp() POST /resume is 409 when the run is not paused", async () => {
  const { app } = setup();
  const res = await app.request("/resume", { method: "POST", headers: AUTH });
  assert.equal(res.status, 409);
  assert.deepEqual(await res.json(), {
    error: 'Cannot resume the run: it is not paused: current state is "starting"',
    state: "starting",
  });
});

Deno.test("createControlApp() POST /stop makes the loop's boundary return stop", async () => {
  const { control, app } = setup();
  const { progress, done } = startLoop(control);
  await nextEvent(control, (e) => e.type === "step" && e.step === 3);
  const res = await app.request("/stop", { method: "POST", headers: AUTH });
  assert.equal(res.status, 202);
  const body = await res.json();
  assert.deepEqual(body, { accepted: true, effectiveAfterStep: 4 });
  await done;
  assert.equal(progress.stoppedAt, 4);
  assert.equal(progress.step, 4);
  assert.equal(control.state, "stopped");
  const late = await app.request("/stop", { method: "POST", headers: AUTH });
  assert.equal(late.status, 409);
  assert.equal((await late.json()).state, "stopped");
});

Deno.test("createControlApp() POST /checkpoint is taken at one boundary", async () => {
  const { control, app } = setup();
  const { progress, done } = startLoop(control);
  await nextEvent(control, (e) => e.type === "step" && e.step === 1);
  const res = await app.request("/checkpoint", { method: "POST", headers: AUTH });
  assert.equal(res.status, 202);
  const { effectiveAfterStep } = await res.json();
  assert.equal(effectiveAfterStep, 2);
  await nextEvent(control, (e) => e.type === "step" && e.step === 5);
  (await app.request("/stop", { method: "POST", headers: AUTH })).body?.cancel();
  await done;
  assert.deepEqual(progress.checkpoints, [2]);
});

// --- config ---

Deno.test("createControlApp() PATCH /config applies a good patch", async () => {
  await withTempDir(async (dir) => {
    const eventsPath = `${dir}/events.jsonl`;
    const { control, app } = setup(false, { eventsPath });
    const seen: ConfigChange[][] = [];
    control.onConfigChange((changes) => seen.push(changes));
    const res = await patch(app, JSON.stringify({ learner: { lr: 3e-4 }, "grpo.beta": 0.04 }));
    assert.equal(res.status, 200);
    const changes = [
      { field: "learner.lr", old: 1e-4, new: 3e-4 },
      { field: "grpo.beta", old: 0, new: 0.04 },
    ];
    assert.deepEqual(await res.json(), { changes });
    assert.deepEqual(seen, [changes]);
    assert.equal(control.config.learner.lr, 3e-4);
    assert.equal(control.config.grpo.beta, 0.04);
    assert.equal(
      await Deno.readTextFile(eventsPath),
      '{"time":"2025-01-02T03:04:05.000Z","step":0,"field":"learner.lr","old":0.0001,"new":0.0003}\n' +
        '{"time":"2025-01-02T03:04:05.000Z","step":0,"field":"grpo.beta","old":0,"new":0.04}\n',
    );
  });
});

Deno.test("createControlApp() PATCH /config is 400 with zod issues for a bad value", async () => {
  await withTempDir(async (dir) => {
    const eventsPath = `${dir}/events.jsonl`;
    const { control, app } = setup(false, { eventsPath });
    let called = false;
    control.onConfigChange(() => called = true);
    const before = control.config;
    const res = await patch(app, '{"learner":{"lr":-1}}');
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), {
      error: 'Cannot change config: field "learner.lr" must be > 0: current value is -1',
      issues: [
        {
          origin: "number",
          code: "too_small",
          minimum: 0,
          inclusive: false,
          path: ["learner", "lr"],
          message: "Too small: expected number to be >0",
        },
      ],
    });
    assert.equal(control.config, before);
    assert.equal(control.config.learner.lr, 1e-4);
    assert.equal(called, false);
    await assert.rejects(Deno.stat(eventsPath), Deno.errors.NotFound);
  });
});

Deno.test("createControlApp() PATCH /config is 400 for a body that is not JSON", async () => {
  const { control, app } = setup();
  const res = await patch(app, '{"learner": {"lr": ');
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.match(body.error, /^Cannot change config: the body is not JSON: /);
  assert.equal(control.config.learner.lr, 1e-4);
  const array = await patch(app, "[1, 2]");
  assert.equal(array.status, 400);
  assert.deepEqual(await array.json(), {
    error: "Cannot change config: the patch must be a JSON object: current value is [1,2]",
    issues: [],
  });
});

Deno.test("createControlApp() PATCH /config is 409 for a field that cannot change", async () => {
  const { control, app } = setup();
  const res = await patch(app, '{"run.steps": 5}');
  assert.equal(res.status, 409);
  assert.deepEqual(await res.json(), {
    error: 'Cannot change config: field "run.steps" cannot change during this run: live fields ' +
      `are ${control.liveFields.map((f) => `"${f}"`).join(", ")}`,
    liveFields: [...control.liveFields],
  });
  assert.equal(control.config.run.steps, 1000);
});

// --- events ---

Deno.test("createControlApp() GET /events streams the state, then steps as they come", async () => {
  const { control, app } = setup();
  const res = await app.request("/events");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("Content-Type"), "text/event-stream");
  const reader = res.body!.getReader();
  const buffer = { text: "" };
  assert.deepEqual(await readEvents(reader, 1, buffer), [
    { event: "state", id: "0", data: { type: "state", state: "starting", step: 0 } },
  ]);
  await control.atStepBoundary();
  control.recordStep(1, { "reward/mean": 0.5 });
  control.recordStep(2, { "reward/mean": 0.75 });
  assert.deepEqual(await readEvents(reader, 3, buffer), [
    { event: "state", id: "1", data: { type: "state", state: "running", step: 0 } },
    { event: "step", id: "2", data: { type: "step", step: 1, metrics: { "reward/mean": 0.5 } } },
    { event: "step", id: "3", data: { type: "step", step: 2, metrics: { "reward/mean": 0.75 } } },
  ]);
  assert.equal(control.subscriberCount, 1);
  await reader.cancel();
  await sleep(0);
  assert.equal(control.subscriberCount, 0); // the subscription ends with the stream
});

Deno.test("createControlApp() GET /events ends after the run stops", async () => {
  const { control, app } = setup();
  const res = await app.request("/events");
  const reader = res.body!.getReader();
  const buffer = { text: "" };
  await readEvents(reader, 1, buffer);
  control.requestStop();
  control.markStopped();
  assert.deepEqual((await readEvents(reader, 2, buffer)).map((e) => e.data), [
    { type: "state", state: "stopping", step: 0 },
    { type: "state", state: "stopped", step: 0 },
  ]);
  assert.deepEqual(await reader.read(), { done: true, value: undefined });
  assert.equal(control.subscriberCount, 0);
});

Deno.test("ControlApp types the routes for hono/client", async () => {
  const { control, app } = setup();
  const client = hc<ControlApp>("http://127.0.0.1:8080", {
    fetch: (input: RequestInfo | URL, init?: RequestInit) => app.request(input, init),
    headers: AUTH,
  });
  const status = await (await client.status.$get()).json();
  const state: string = status.state;
  assert.equal(state, "starting");
  const res = await client.checkpoint.$post();
  assert.equal(res.status, 202);
  const accepted = await res.json();
  assert.equal(accepted.effectiveAfterStep, 0);
  assert.equal(control.status().checkpointPending, true);
});
