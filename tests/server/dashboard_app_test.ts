import assert from "node:assert/strict";
import { createDashboardApp, RunCatalog } from "../../server/dashboard_app.ts";
import { sampleLine } from "../../training/samples_file.ts";

const lines = (...records: unknown[]) => records.map((r) => JSON.stringify(r) + "\n").join("");

const GROUP = {
  step: 1,
  prompt: "Ann has 2 pens and gets 3 more. How many pens now?",
  completions: [{
    text: "<think>2+3=5</think>5",
    reward: 1,
    advantage: 0.5,
    correct: true,
    reason: "correct",
    guidePhrase: "Wait, let me double-check that.",
    discarded: false,
    corrections: [{
      text: " 2+3=5</think>5",
      reward: 1,
      advantage: 0,
      correct: true,
      reason: "correct",
    }],
  }],
};

/** A compare folder with two MGRPO seed runs (one finished) and a GRPO run of its own. */
async function fixture() {
  const dir = await Deno.makeTempDir({ prefix: "dashboard_app_" });
  const cmp = `${dir}/compare`;
  for (const seed of [0, 1]) {
    const run = `${cmp}/mgrpo-seed${seed}`;
    await Deno.mkdir(run, { recursive: true });
    await Deno.writeTextFile(`${run}/config.yaml`, "algorithm: mgrpo\nrun:\n  steps: 2\n");
    await Deno.writeTextFile(
      `${run}/metrics.jsonl`,
      lines(
        { step: 0, "eval/accuracy": 0.5 },
        { step: 1, "reward/mean": 0.25 + seed / 10, "time/step": 2 },
      ),
    );
    await Deno.writeTextFile(
      `${run}/environment.jsonl`,
      lines({ started_at: "2026-12-06T05:00:00.000Z", start_step: 0 }),
    );
  }
  await Deno.writeTextFile(`${cmp}/mgrpo-seed0/summary.json`, '{"steps": 2, "seed": 0}');
  await Deno.writeTextFile(
    `${cmp}/mgrpo-seed0/samples.jsonl`,
    sampleLine(1, [GROUP]) + sampleLine(2, [{ ...GROUP, step: 2 }]),
  );
  const grpo = `${dir}/grpo`;
  await Deno.mkdir(grpo);
  await Deno.writeTextFile(`${grpo}/metrics.jsonl`, lines({ step: 1, kl: 0.01 }));
  const app = createDashboardApp(new RunCatalog([cmp, grpo]));
  const runs = await (await app.request("/api/runs")).json();
  const id = (name: string) => runs.find((r: { name: string }) => r.name === name).id;
  return { dir, cmp, grpo, app, runs, id };
}

Deno.test("createDashboardApp() GET /api/runs lists the runs with their groups", async () => {
  const { dir, cmp, grpo, runs } = await fixture();
  try {
    assert.deepEqual(runs.map(({ id: _, ...r }: { id: string }) => r), [
      {
        name: "mgrpo-seed0",
        path: `${cmp}/mgrpo-seed0`,
        group: "compare/mgrpo",
        arm: "mgrpo",
        seed: 0,
        algorithm: "mgrpo",
        finished: true,
        live: false,
        steps: 1,
        totalSteps: 2,
      },
      {
        name: "mgrpo-seed1",
        path: `${cmp}/mgrpo-seed1`,
        group: "compare/mgrpo",
        arm: "mgrpo",
        seed: 1,
        algorithm: "mgrpo",
        finished: false,
        live: false,
        steps: 1,
        totalSteps: 2,
      },
      {
        name: "grpo",
        path: grpo,
        group: null,
        arm: null,
        seed: null,
        algorithm: null,
        finished: false,
        live: false,
        steps: 1,
        totalSteps: null,
      },
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("createDashboardApp() GET /api/runs/:id/history has the live /history's shape and follows a growing file", async () => {
  const { dir, cmp, app, id } = await fixture();
  try {
    const url = `/api/runs/${id("mgrpo-seed1")}/history`;
    assert.deepEqual(await (await app.request(url)).json(), [
      {
        kind: "eval",
        step: 0,
        time: "2026-12-06T05:00:00.000Z",
        metrics: { "eval/accuracy": 0.5 },
      },
      {
        kind: "step",
        step: 1,
        time: "2026-12-06T05:00:02.000Z",
        metrics: { "reward/mean": 0.35, "time/step": 2 },
      },
    ]);
    await Deno.writeTextFile(
      `${cmp}/mgrpo-seed1/metrics.jsonl`,
      lines({ step: 2, "reward/mean": 0.5, "time/step": 3 }),
      { append: true },
    );
    const again = await (await app.request(url)).json();
    assert.deepEqual(again.map((e: { step: number }) => e.step), [0, 1, 2]);
    assert.equal(again[2].time, "2026-12-06T05:00:05.000Z");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("createDashboardApp() GET /api/runs/:id/samples gives the steps and one step's groups", async () => {
  const { dir, app, id } = await fixture();
  try {
    const base = `/api/runs/${id("mgrpo-seed0")}/samples`;
    assert.deepEqual(await (await app.request(base)).json(), {
      steps: [1, 2],
      step: 2,
      groups: [{ ...GROUP, step: 2 }],
    });
    assert.deepEqual(await (await app.request(`${base}?step=1`)).json(), {
      steps: [1, 2],
      step: 1,
      groups: [GROUP],
    });
    const missing = await app.request(`${base}?step=7`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), {
      error: 'Run "mgrpo-seed0" has no samples of step 7: steps with samples are 1, 2',
    });
    const bad = await app.request(`${base}?step=x`);
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error, /Invalid query "step"/);
    // A run without samples.jsonl has none.
    assert.deepEqual(await (await app.request(`/api/runs/${id("grpo")}/samples`)).json(), {
      steps: [],
      step: null,
      groups: [],
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("createDashboardApp() GET config, summary and environment of a run", async () => {
  const { dir, app, id } = await fixture();
  try {
    const seed0 = `/api/runs/${id("mgrpo-seed0")}`;
    assert.deepEqual(await (await app.request(`${seed0}/config`)).json(), {
      algorithm: "mgrpo",
      run: { steps: 2 },
    });
    assert.deepEqual(await (await app.request(`${seed0}/summary`)).json(), { steps: 2, seed: 0 });
    assert.deepEqual(await (await app.request(`${seed0}/environment`)).json(), [
      { started_at: "2026-12-06T05:00:00.000Z", start_step: 0 },
    ]);
    const unfinished = await app.request(`/api/runs/${id("mgrpo-seed1")}/summary`);
    assert.equal(unfinished.status, 404);
    assert.deepEqual(await unfinished.json(), {
      error: 'Run "mgrpo-seed1" has no summary.json: it has not finished',
    });
    const noConfig = await app.request(`/api/runs/${id("grpo")}/config`);
    assert.equal(noConfig.status, 404);
    await noConfig.body?.cancel();
    const unknown = await app.request("/api/runs/0123456789ab/history");
    assert.equal(unknown.status, 404);
    assert.deepEqual(await unknown.json(), { error: 'No run with id "0123456789ab"' });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("createDashboardApp() names the file and line of a bad metrics line", async () => {
  const { dir, grpo, app, id } = await fixture();
  try {
    await Deno.writeTextFile(`${grpo}/metrics.jsonl`, '{"step":1}\n{"step":2,"kl":"high"}\n');
    const res = await app.request(`/api/runs/${id("grpo")}/history`);
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), {
      error:
        `Cannot read "${grpo}/metrics.jsonl": line 2: field "kl" must be a number: current value is "high"`,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("createDashboardApp() is read-only: any method but GET and HEAD is 405", async () => {
  const { dir, app, id } = await fixture();
  try {
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      for (const path of ["/", "/api/runs", `/api/runs/${id("grpo")}/history`]) {
        const res = await app.request(path, { method });
        assert.equal(res.status, 405, `${method} ${path}`);
        assert.equal(res.headers.get("Allow"), "GET, HEAD");
        assert.deepEqual(await res.json(), {
          error: `The dashboard is read-only: ${method} is not allowed`,
        });
      }
    }
    const json = await app.request("/api/runs", {
      method: "POST",
      body: "{}",
      headers: { "Content-Type": "application/json" },
    });
    assert.equal(json.status, 405);
    await json.body?.cancel();
    assert.equal((await app.request("/api/runs", { method: "HEAD" })).status, 200);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("createDashboardApp() refuses a foreign Host or Origin with 403, as the control server does", async () => {
  const { dir, app } = await fixture();
  try {
    const get = (headers: Record<string, string>) =>
      app.request("http://127.0.0.1:8080/api/runs", { headers });
    const rebinding = await get({ Host: "evil.example:8080" });
    assert.equal(rebinding.status, 403);
    assert.match((await rebinding.json()).error, /the Host "evil\.example" is not a loopback/);
    const foreign = await get({ Host: "127.0.0.1:8080", Origin: "https://evil.example" });
    assert.equal(foreign.status, 403);
    assert.match((await foreign.json()).error, /Origin "https:\/\/evil\.example"/);
    const nullOrigin = await get({ Host: "127.0.0.1:8080", Origin: "null" });
    assert.equal(nullOrigin.status, 403);
    await nullOrigin.body?.cancel();
    const own = await get({ Host: "127.0.0.1:8080", Origin: "http://127.0.0.1:8080" });
    assert.equal(own.status, 200);
    await own.body?.cancel();
    // A foreign page's form post is refused before the method is looked at.
    const form = await app.request("http://127.0.0.1:8080/api/runs", {
      method: "POST",
      body: "a=1",
      headers: {
        Host: "127.0.0.1:8080",
        Origin: "https://evil.example",
        "Content-Type": "application/x-www-form-urlencoded",
      },
    });
    assert.equal(form.status, 403);
    await form.body?.cancel();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("createDashboardApp() serves the same page and files as the control server", async () => {
  const { dir, app } = await fixture();
  try {
    const files: [string, string, string][] = [
      ["/", "dashboard.html", "text/html; charset=utf-8"],
      ["/static/dashboard_series.js", "dashboard_series.js", "text/javascript; charset=utf-8"],
      [
        "/static/uplot/uPlot.iife.min.js",
        "vendor/uplot/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
      ],
      ["/static/uplot/uPlot.min.css", "vendor/uplot/uPlot.min.css", "text/css; charset=utf-8"],
    ];
    for (const [route, file, type] of files) {
      const res = await app.request(route);
      assert.equal(res.status, 200, route);
      assert.equal(res.headers.get("Content-Type"), type, route);
      const text = await Deno.readTextFile(new URL(`../../server/static/${file}`, import.meta.url));
      assert.equal(await res.text(), text, route);
    }
    const missing = await app.request("/api/nothing");
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { error: 'No route "GET /api/nothing"' });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
