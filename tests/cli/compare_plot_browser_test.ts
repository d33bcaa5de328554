/**
 * compare's plot files in a real browser: headless Chromium (Debian's `chromium`, `deno task
 * test:all` installs it; set `CHROMIUM_PATH` elsewhere) driven by playwright-core decodes the
 * PNG and the SVG that `accuracyPlotFiles()` writes, at their sizes, and both show the mean line
 * where the chart placed it (pixels read back through a canvas).
 */
import assert from "node:assert/strict";
import { accuracyPlotFiles } from "../../cli/compare_plot.ts";
import { launchChromium } from "../browser.ts";

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

Deno.test({
  name:
    "accuracyPlotFiles() writes a PNG and an SVG that Chromium decodes, with the mean line in place",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // Two arms, two seeds: Alpha's mean runs from 40 % at step 0 to 55 % at step 10, i.e. from
    // (70, 240) to (370, 105) in chart units; Beta's stays at 40 % (y = 240).
    const { svg, png } = await accuracyPlotFiles({
      arms: [{ name: "a", label: "Alpha" }, { name: "b", label: "Beta" }],
      runs: [
        { arm: "a", seed: 0, curve: [[0, 0, 0.4], [10, 1000, 0.5]] },
        { arm: "a", seed: 1, curve: [[0, 0, 0.4], [10, 3000, 0.6]] },
        { arm: "b", seed: 0, curve: [[0, 0, 0.4], [10, 500, 0.3]] },
        { arm: "b", seed: 1, curve: [[0, 0, 0.4], [10, 1500, 0.5]] },
      ],
      evalSubset: 200,
    });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1700, height: 1000 } });
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(error.message));
      await page.setContent(
        `<img id="png" src="data:image/png;base64,${base64(png)}">` +
          `<img id="svg" src="data:image/svg+xml;base64,${base64(new TextEncoder().encode(svg))}">`,
      );
      // (Page functions are strings: this file is type-checked without the DOM library.)
      const seen = await page.evaluate(`(async () => {
        const read = async (id) => {
          const img = document.getElementById(id);
          await img.decode();
          // Both drawn at the PNG's 1600 x 820: 2 pixels a chart unit.
          const canvas = document.createElement("canvas");
          canvas.width = 1600;
          canvas.height = 820;
          const ctx = canvas.getContext("2d");
          ctx.drawImage(img, 0, 0, 1600, 820);
          const at = (x, y) => Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3));
          return {
            size: [img.naturalWidth, img.naturalHeight],
            // Halfway along Alpha's line (220, 172.5); on Beta's line in the steps panel
            // (300, 240); the background (2, 2); inside the plot area, above the bands and
            // between gridlines (100, 80).
            alpha: at(440, 345),
            beta: at(600, 480),
            background: at(4, 4),
            empty: at(200, 160),
          };
        };
        return { png: await read("png"), svg: await read("svg") };
      })()`) as Record<"png" | "svg", Record<string, number[]>>;
      assert.deepEqual(seen.png.size, [1600, 820]);
      assert.deepEqual(seen.svg.size, [800, 410]);
      // The PNG as the browser decodes it: exactly the colours written.
      assert.deepEqual(seen.png.alpha, [214, 39, 40]);
      assert.deepEqual(seen.png.beta, [31, 119, 180]);
      assert.deepEqual(seen.png.background, [255, 255, 255]);
      assert.deepEqual(seen.png.empty, [255, 255, 255]);
      // The SVG as the browser renders it: the same lines at the same places (anti-aliasing
      // differs, so within a few levels).
      const near = (actual: number[], expected: number[], what: string) =>
        assert.ok(
          actual.every((v, i) => Math.abs(v - expected[i]!) <= 24),
          `${what}: ${actual} is not near ${expected}`,
        );
      near(seen.svg.alpha!, [214, 39, 40], "SVG, Alpha's mean line");
      near(seen.svg.beta!, [31, 119, 180], "SVG, Beta's mean line");
      near(seen.svg.background!, [255, 255, 255], "SVG, background");
      near(seen.svg.empty!, [255, 255, 255], "SVG, empty plot area");
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  },
});
