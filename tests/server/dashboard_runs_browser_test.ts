/**
 * The dashboard of finished runs in a real browser: three short smoke runs trained to the end
 * (two MGRPO seeds in a compare-style folder, one GRPO run of its own), `deno task dashboard`
 * started on them as a user starts it, and headless Chromium (playwright-core, as in
 * `dashboard_browser_test.ts`) checking the charts, the x-axis switch, overlays, the group's
 * band, the samples' step filter and the CSV export against the runs' own files. Screenshots go
 * to `runs/dashboard-test/`.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { launchChromium, requireChromium, startDashboard } from "../browser.ts";
import { REPO_ROOT, runTrain } from "../helpers.ts";

const SHOTS = `${REPO_ROOT}runs/dashboard-test`;

/** Charts an MGRPO and a GRPO run both have data for. */
const CHARTS = [
  "reward",
  "accuracy",
  "self-correction",
  "loss",
  "kl",
  "entropy",
  "grad-norm",
  "lr",
  "length",
  "clip",
  "groups",
  "throughput",
  "busy",
];

async function train(runDir: string, config: string, seed: number): Promise<void> {
  const r = await runTrain(runDir, config, [
    "run.steps=3",
    `run.seed=${seed}`,
    "control.enabled=false",
    "model.wasm_threads=1",
  ], { timeoutMs: 300_000 });
  assert.equal(r.code, 0, r.log);
}

/** `data-*` of every chart container, by chart id. */
/** What a chart container says about itself (its `data-*` and what the page shows). */
interface ChartFacts {
  xLabel?: string;
  yLabel?: string;
  series: string;
  columns: string;
  rows: string;
  canvases: string;
  hidden: string;
  legend: string;
}

function chartFacts(page: Page): Promise<Record<string, ChartFacts>> {
  return page.evaluate(`Object.fromEntries([...document.querySelectorAll(".chart")].map((c) => [
    c.id.slice(6),
    { ...c.dataset, canvases: String(c.querySelectorAll("canvas").length),
      hidden: String(c.closest(".card").hidden),
      legend: [...c.querySelectorAll(".u-legend .u-series")]
        .filter((r) => r.style.display !== "none").map((r) => r.textContent).join("\\n") },
  ]))`);
}

async function waitForRedraw(page: Page): Promise<void> {
  // Redraws happen on the next animation frame.
  await page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))");
}

async function metricsOf(runDir: string): Promise<Record<string, number>[]> {
  return (await Deno.readTextFile(`${runDir}/metrics.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l));
}

async function csvOf(page: Page, chart: string): Promise<string[][]> {
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.click(`#card-${chart} button:has-text("CSV")`),
  ]);
  assert.equal(download.suggestedFilename(), `${chart}.csv`);
  const text = await Deno.readTextFile((await download.path())!);
  return text.trim().split("\n").map((l) => l.split(","));
}

Deno.test({
  name: "deno task dashboard in headless Chromium: finished runs, groups, x axes, samples, CSV",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await requireChromium();
    const tmp = await Deno.makeTempDir({ prefix: "dashboard_runs_" });
    const cmp = `${tmp}/compare-test`;
    const seed0 = `${cmp}/mgrpo-seed0`, seed1 = `${cmp}/mgrpo-seed1`, grpo = `${tmp}/grpo-run`;
    await train(seed0, "configs/smoke-mgrpo.yaml", 0);
    await train(seed1, "configs/smoke-mgrpo.yaml", 1);
    await train(grpo, "configs/smoke-grpo.yaml", 0);
    const server = await startDashboard([cmp, grpo]);
    const browser = await launchChromium();
    try {
      assert.match(server.line, /\(3 runs\)$/);
      await Deno.mkdir(SHOTS, { recursive: true });
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(error.message));
      await page.goto(server.url);
      await page.waitForFunction('document.body.dataset.ready === "true"', null, {
        timeout: 30_000,
      });
      assert.equal(await page.getAttribute("body", "data-mode"), "runs");
      // Read-only: no controls on the page.
      assert.equal(await page.isVisible("#pause"), false);
      assert.equal(await page.isVisible("#token"), false);

      // At first: the arm of the compare folder (mean ± std) and the run of its own.
      await waitForRedraw(page);
      let facts = await chartFacts(page);
      for (const id of CHARTS) {
        const f = facts[id]!;
        assert.equal(f.hidden, "false", `${id} is shown`);
        assert.ok(Number(f.canvases) > 0, `${id} has a canvas`);
        assert.equal(f.xLabel, "step", `${id}'s x axis`);
        assert.ok((f.yLabel ?? "").length > 2, `${id}'s y axis: "${f.yLabel}"`);
      }
      // PPO's critic chart has no data: hidden, not an empty axis.
      assert.equal(facts["value"]!.hidden, "true");
      assert.equal(facts["value"]!.canvases, "0");
      assert.match(facts["kl"]!.legend, /mgrpo \(mean ± std, 2 seeds\) · kl/);
      assert.match(facts["kl"]!.legend, /grpo-run · kl/);
      assert.match(facts["accuracy"]!.legend, /Acc@t1 \(held-out, greedy\)/);
      await page.screenshot({ path: `${SHOTS}/runs-overview.png`, fullPage: true });

      // The x axis switch relabels every chart.
      for (
        const [axis, label] of [
          ["tokens", "sampled tokens"],
          ["wall", "wall time (s, sum of time/step)"],
          ["step", "step"],
        ]
      ) {
        await page.selectOption("#x-axis", axis!);
        await waitForRedraw(page);
        facts = await chartFacts(page);
        for (const id of CHARTS) assert.equal(facts[id]!.xLabel, label, `${id} on ${axis}`);
      }

      // Two runs overlaid: one series each, the CSV has both columns and one row per step,
      // with the values of each run's metrics.jsonl.
      await page.uncheck('[aria-label="compare-test/mgrpo"]');
      await page.click('details[data-seeds-of="compare-test/mgrpo"] summary');
      await page.check('[aria-label="compare-test/mgrpo seed 0"]');
      await page.uncheck('[aria-label="grpo-run"]');
      await waitForRedraw(page);
      assert.equal((await chartFacts(page))["grad-norm"]!.series, "1");
      await page.check('[aria-label="grpo-run"]');
      await page.waitForFunction(
        'document.getElementById("chart-grad-norm").dataset.series === "2"',
        null,
        { timeout: 10_000 },
      );
      const csv = await csvOf(page, "grad-norm");
      assert.deepEqual(csv[0], [
        "step",
        "compare-test/mgrpo seed 0 · grad_norm",
        "grpo-run · grad_norm",
      ]);
      assert.equal(csv.length, 1 + 3, csv.join("\n"));
      const norms = async (dir: string) =>
        (await metricsOf(dir)).filter((m) => "grad_norm" in m).map((m) => m["grad_norm"]);
      assert.deepEqual(csv.slice(1).map((r) => Number(r[0])), [1, 2, 3]);
      assert.deepEqual(csv.slice(1).map((r) => Number(r[1])), await norms(seed0));
      assert.deepEqual(csv.slice(1).map((r) => Number(r[2])), await norms(grpo));
      // PNG: the chart's canvas with its title above and its legend below.
      const [png] = await Promise.all([
        page.waitForEvent("download"),
        page.click('#card-grad-norm button:has-text("PNG")'),
      ]);
      assert.equal(png.suggestedFilename(), "grad-norm.png");
      const image = await Deno.readFile((await png.path())!);
      assert.deepEqual([...image.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      const view = new DataView(image.buffer, image.byteOffset);
      const canvas = await page.$eval("#chart-grad-norm canvas", (c) => {
        const el = c as unknown as { width: number; height: number };
        return [el.width, el.height];
      });
      assert.ok(view.getUint32(16) > canvas[0]!, "wider than the plot: a margin");
      assert.ok(view.getUint32(20) > canvas[1]! + 2 * 18, "taller: title and two legend lines");
      // Smoothing adds a smoothed column to each series.
      await page.fill("#smoothing", "0.6");
      await page.dispatchEvent("#smoothing", "input");
      await waitForRedraw(page);
      const smoothed = await csvOf(page, "grad-norm");
      assert.deepEqual(smoothed[0], [
        "step",
        "compare-test/mgrpo seed 0 · grad_norm",
        "compare-test/mgrpo seed 0 · grad_norm (smoothed)",
        "grpo-run · grad_norm",
        "grpo-run · grad_norm (smoothed)",
      ]);
      await page.screenshot({ path: `${SHOTS}/runs-overlay.png` });
      await page.fill("#smoothing", "0");
      await page.dispatchEvent("#smoothing", "input");

      // The arm as mean ± std, then with its seeds drawn too.
      await page.uncheck('[aria-label="compare-test/mgrpo seed 0"]');
      await page.uncheck('[aria-label="grpo-run"]');
      await page.check('[aria-label="compare-test/mgrpo"]');
      await waitForRedraw(page);
      facts = await chartFacts(page);
      // kl: mean, and the band's two edges
      assert.equal(facts["grad-norm"]!.series, "1");
      assert.equal(facts["grad-norm"]!.columns, "3");
      await page.check('[aria-label="compare-test/mgrpo seeds"]');
      await waitForRedraw(page);
      assert.equal((await chartFacts(page))["grad-norm"]!.columns, "5");

      // Samples: the step filter shows the chosen step's groups only, those of samples.jsonl.
      await page.selectOption("#samples-run", { label: "compare-test/mgrpo seed 1" });
      await page.waitForFunction('document.body.dataset.samplesStep === "3"', null, {
        timeout: 10_000,
      });
      const options = await page.$$eval("#samples-step option", (os) => os.map((o) => o.value));
      assert.deepEqual(options, ["1", "2", "3"]);
      await page.selectOption("#samples-step", "2");
      await page.waitForFunction('document.body.dataset.samplesStep === "2"', null, {
        timeout: 10_000,
      });
      const stepCells = await page.$$eval(
        "#samples tr > td:first-child",
        (tds) => tds.map((td) => td.textContent).filter((t) => t !== ""),
      );
      assert.ok(stepCells.length > 0);
      assert.deepEqual([...new Set(stepCells)], ["2"]);
      const line = (await Deno.readTextFile(`${seed1}/samples.jsonl`)).trim().split("\n")
        .map((l) => JSON.parse(l)).find((l) => l.step === 2);
      const prompts = await page.$$eval(
        "#samples tr.prompt-row td:nth-child(2)",
        (tds) => tds.map((td) => td.textContent),
      );
      assert.deepEqual(
        prompts,
        line.groups.map((g: { prompt: string }) => `prompt ${g.prompt}`),
      );
      // MGRPO: each answer's corrections under its guide phrase.
      const completions = line.groups.flatMap((g: { completions: unknown[] }) => g.completions);
      const corrections = completions.flatMap((c: { corrections?: unknown[] }) =>
        c.corrections ?? []
      );
      assert.ok(corrections.length > 0);
      assert.equal(await page.locator("#samples tr.correction").count(), corrections.length);
      assert.equal(await page.locator("#samples tr.layer2-row").count(), completions.length);
      await page.screenshot({ path: `${SHOTS}/runs-samples.png`, fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      assert.equal(await server.stop(), 0);
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
