/**
 * The dashboard in a real browser over a real training run: headless Chromium (Debian's
 * `chromium`, `deno task test:all` installs it; set `CHROMIUM_PATH` elsewhere) driven by
 * playwright-core loads the page of a running `cli/train.ts`, sees the charts update, pauses
 * the run with the Pause button, and saves a screenshot under `runs/`.
 */
import assert from "node:assert/strict";
import { waitForControlFile } from "../../server/serve.ts";
import { launchChromium, requireChromium } from "../browser.ts";
import { REPO_ROOT, sleep, spawnLongTinyRun } from "../helpers.ts";

const SCREENSHOT = `${REPO_ROOT}runs/dashboard-test/dashboard.png`;

Deno.test({
  name: "dashboard in headless Chromium: live charts, Pause changes the run's state, screenshot",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await requireChromium();
    const tmp = await Deno.makeTempDir({ prefix: "dashboard_browser_" });
    const { child, output, runDir } = await spawnLongTinyRun(
      tmp,
      "configs/smoke-mgrpo.yaml",
      [],
      "null",
    );
    const browser = await launchChromium();
    try {
      const { url } = await waitForControlFile(runDir);
      const token = (await Deno.readTextFile(`${runDir}/control-token`)).trim();

      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(error.message));
      await page.goto(url);
      assert.equal(await page.title() !== "", true);

      // The charts take at least two live steps (from the event stream) after the page opened.
      // (Page functions are strings: this file is type-checked without the DOM library.)
      await page.waitForFunction("Number(document.body.dataset.updates ?? 0) >= 2", null, {
        timeout: 60_000,
      });
      const drawn = await page.locator("#chart-reward canvas").count();
      assert.ok(drawn > 0, "the reward chart has no canvas");
      assert.match((await page.textContent("#state")) ?? "", /^running$/);
      assert.equal(await page.getAttribute("body", "data-mode"), "live");

      // Every chart of an MGRPO step: a canvas, an x axis of steps and a y-axis title.
      const labels = (): Promise<Record<string, [string, string, number]>> =>
        page.evaluate(`Object.fromEntries([...document.querySelectorAll(".chart")]
          .filter((c) => !c.closest(".card").hidden)
          .map((c) => [c.id, [c.dataset.xLabel, c.dataset.yLabel, c.querySelectorAll("canvas").length]]))`);
      const live = await labels();
      for (
        const id of [
          "reward",
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
        ]
      ) {
        const [x, y, canvases] = live[`chart-${id}`] ?? [];
        assert.equal(x, "step", `${id}: ${JSON.stringify(live)}`);
        assert.ok((y ?? "").length > 2, `${id}'s y axis: ${y}`);
        assert.ok(canvases! > 0, `${id} has a canvas`);
      }
      // No held-out evaluation in this run: its chart is hidden, not an empty axis.
      assert.equal(live["chart-accuracy"], undefined);
      await page.selectOption("#x-axis", "tokens");
      await page.waitForFunction(
        'document.getElementById("chart-kl").dataset.xLabel === "sampled tokens"',
        null,
        { timeout: 10_000 },
      );
      await page.selectOption("#x-axis", "step");
      // The samples of every step the page has seen stay selectable.
      await page.waitForFunction(
        'document.querySelectorAll("#samples-step option").length >= 1',
        null,
        { timeout: 30_000 },
      );
      assert.ok((await page.locator("#samples tr.prompt-row").count()) > 0);

      // Pause with the token typed in once: the page shows the run's new state.
      await page.fill("#token", token);
      await page.click("#pause");
      await page.waitForFunction(
        'document.getElementById("state")?.textContent === "paused"',
        null,
        { timeout: 60_000 },
      );
      const status = await (await fetch(`${url}/status`)).json();
      assert.equal(status.state, "paused");
      // Paused: no step is recorded any more.
      const pausedStep = status.step;
      await sleep(1000);
      assert.equal((await (await fetch(`${url}/status`)).json()).step, pausedStep);
      assert.equal(await page.textContent("#step"), String(pausedStep));

      await Deno.mkdir(`${REPO_ROOT}runs/dashboard-test`, { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      const png = await Deno.readFile(SCREENSHOT);
      assert.ok(png.length > 10_000, `screenshot is only ${png.length} bytes`);
      assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]); // PNG
      assert.deepEqual(errors, []);

      // Stop from the page: the run ends with exit 0.
      await page.click("#stop");
      const out = await output;
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    } finally {
      await browser.close();
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      await output.catch(() => {});
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
