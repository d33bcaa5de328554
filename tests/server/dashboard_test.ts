import assert from "node:assert/strict";
import { TrainConfigSchema } from "../../algorithms/builtins.ts";
import { createControlApp } from "../../server/app.ts";
import { RunControl } from "../../server/run_control.ts";

const TOKEN = "0123456789abcdef";
const AUTH = { Authorization: `Bearer ${TOKEN}` };
const UPLOT_JS = "/static/uplot/uPlot.iife.min.js";
const UPLOT_CSS = "/static/uplot/uPlot.min.css";
const SERIES_JS = "/static/dashboard_series.js";
const SERIES_FILE = new URL("../../server/static/dashboard_series.js", import.meta.url);

function setup(requireTokenForReads = false) {
  const clock = { seconds: 0 };
  const control = new RunControl(TrainConfigSchema.parse({ run: { steps: 100 } }), {
    now: () => new Date(Date.UTC(2025, 0, 2, 3, 4, clock.seconds)),
  });
  const app = createControlApp(control, { token: TOKEN, requireTokenForReads });
  return { control, app, clock };
}

Deno.test("createControlApp() GET / serves the dashboard page", async () => {
  const { app } = setup();
  const res = await app.request("/");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("Content-Type"), "text/html; charset=utf-8");
  const html = await res.text();
  assert.match(html, /^<!doctype html>/i);
  assert.ok(html.includes(`<script src="${UPLOT_JS}"></script>`), "loads uPlot's script");
  assert.ok(html.includes(`<link rel="stylesheet" href="${UPLOT_CSS}">`), "loads uPlot's css");
  const ids = [
    "state",
    "step",
    "pause",
    "resume",
    "stop",
    "checkpoint",
    "token",
    "message",
    "charts",
    "x-axis",
    "smoothing",
    "samples",
    "samples-step",
    "run-picker",
  ];
  for (const id of ids) assert.ok(html.includes(`id="${id}"`), `has an element with id "${id}"`);
  assert.match(html, /<input\s[^>]*id="token"[^>]*type="password"/);
  for (const path of ["/status", "/history", "/samples", "/events", "/config"]) {
    assert.ok(html.includes(`"${path}"`), `reads ${path}`);
  }
  assert.ok(html.includes("document.body.dataset.updates"), "counts applied step events");
  assert.ok(!html.includes("localStorage"), "never stores the token");
  assert.ok(html.includes('from "/static/dashboard_series.js"'), "imports the chart series");
});

Deno.test("createControlApp() serves the dashboard's chart series module", async () => {
  const { app } = setup(true);
  const res = await app.request(SERIES_JS);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("Content-Type"), "text/javascript; charset=utf-8");
  assert.equal(await res.text(), await Deno.readTextFile(SERIES_FILE));
});

Deno.test("createControlApp() serves uPlot's script and style sheet", async () => {
  const { app } = setup();
  const js = await app.request(UPLOT_JS);
  assert.equal(js.status, 200);
  assert.equal(js.headers.get("Content-Type"), "text/javascript; charset=utf-8");
  const script = await js.text();
  assert.ok(script.includes("uPlot"), "is uPlot");
  assert.ok(script.length > 40_000, `is the whole minified build: ${script.length} characters`);
  const css = await app.request(UPLOT_CSS);
  assert.equal(css.status, 200);
  assert.equal(css.headers.get("Content-Type"), "text/css; charset=utf-8");
  assert.ok((await css.text()).includes(".uplot"), "is uPlot's style sheet");
});

Deno.test("createControlApp() serves the dashboard files without a token when reads need one", async () => {
  const { app } = setup(true);
  for (const path of ["/", SERIES_JS, UPLOT_JS, UPLOT_CSS]) {
    const res = await app.request(path);
    assert.equal(res.status, 200, path);
    assert.ok((await res.text()).length > 1000, path);
  }
  const status = await app.request("/status");
  assert.equal(status.status, 401);
  await status.body?.cancel();
});

Deno.test("createControlApp() lists the dashboard files in the OpenAPI document", async () => {
  const { app } = setup();
  const doc = await (await app.request("/openapi.json")).json();
  for (const path of ["/", SERIES_JS, UPLOT_JS, UPLOT_CSS]) {
    assert.equal(typeof doc.paths[path]?.get?.summary, "string", path);
  }
});

Deno.test("createControlApp() GET /history returns recorded steps and evaluations in order", async () => {
  const { control, app, clock } = setup();
  assert.deepEqual(await (await app.request("/history")).json(), []);
  clock.seconds = 1;
  control.recordStep(1, { "reward/mean": 0.25, "mgrpo/acc_t1": 0.5 });
  clock.seconds = 3;
  control.recordStep(2, { "reward/mean": 0.5, "mgrpo/acc_t1": 0.75 });
  clock.seconds = 5;
  control.recordEval(2, { "eval/accuracy": 0.625 });
  clock.seconds = 7;
  control.recordStep(3, { "reward/mean": 0.75 });
  const res = await app.request("/history");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), [
    {
      kind: "step",
      step: 1,
      time: "2025-01-02T03:04:01.000Z",
      metrics: { "reward/mean": 0.25, "mgrpo/acc_t1": 0.5 },
    },
    {
      kind: "step",
      step: 2,
      time: "2025-01-02T03:04:03.000Z",
      metrics: { "reward/mean": 0.5, "mgrpo/acc_t1": 0.75 },
    },
    {
      kind: "eval",
      step: 2,
      time: "2025-01-02T03:04:05.000Z",
      metrics: { "eval/accuracy": 0.625 },
    },
    { kind: "step", step: 3, time: "2025-01-02T03:04:07.000Z", metrics: { "reward/mean": 0.75 } },
  ]);
});

Deno.test("createControlApp() GET /history needs the token when reads do", async () => {
  const { control, app } = setup(true);
  control.recordStep(1, { kl: 0.01 });
  const denied = await app.request("/history");
  assert.equal(denied.status, 401);
  await denied.body?.cancel();
  const ok = await app.request("/history", { headers: AUTH });
  assert.equal(ok.status, 200);
  assert.deepEqual((await ok.json()).map((e: { step: number }) => e.step), [1]);
});
