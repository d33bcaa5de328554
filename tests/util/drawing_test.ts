import assert from "node:assert/strict";
import { type Drawing, drawingToCanvas, drawingToPng, drawingToSvg } from "../../util/drawing.ts";
import { decodePng, pixelAt } from "./png_decoder.ts";

const DRAWING: Drawing = {
  width: 60,
  height: 40,
  background: "white",
  title: "A & B",
  shapes: [
    {
      kind: "polygon",
      points: [[10, 5], [50, 5], [50, 15], [10, 15]],
      fill: "#0000ff",
      opacity: 0.2,
    },
    { kind: "line", points: [[10, 20], [50, 20]], stroke: "#d62728", width: 2 },
    { kind: "rect", id: "swatch", x: 2, y: 30, width: 6, height: 6, fill: "#2ca02c" },
    { kind: "text", x: 30, y: 38, text: "1.5k <", size: 10, color: "black", anchor: "middle" },
    { kind: "text", x: 8, y: 30, text: "y", size: 10, color: "black", rotate: -90 },
  ],
};

Deno.test("drawingToSvg() writes every shape, escapes text and sizes the picture", () => {
  const svg = drawingToSvg(DRAWING);
  assert.match(
    svg,
    /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="60" height="40" viewBox="0 0 60 40"/,
  );
  assert.match(svg, /<title>A &amp; B<\/title>/);
  assert.match(svg, /<polygon points="10,5 50,5 50,15 10,15" fill="#0000ff" fill-opacity="0.2"\/>/);
  assert.match(svg, /<polyline points="10,20 50,20" fill="none" stroke="#d62728" stroke-width="2"/);
  assert.match(svg, /<rect id="swatch" x="2" y="30" width="6" height="6" fill="#2ca02c"\/>/);
  assert.match(
    svg,
    /<text x="30" y="38" font-size="10" fill="black" text-anchor="middle">1.5k &lt;<\/text>/,
  );
  assert.match(
    svg,
    /<text x="8" y="30" font-size="10" fill="black" transform="rotate\(-90 8 30\)">y<\/text>/,
  );
  assert.ok(svg.endsWith("</svg>\n"));
});

Deno.test("drawingToPng() renders at twice the size: the line, the band, the rect and the background", async () => {
  const png = await decodePng(await drawingToPng(DRAWING));
  assert.ok(png.chunks.every((c) => c.crcOk));
  assert.equal(png.width, 120);
  assert.equal(png.height, 80);
  // The 2-unit line at y = 20 covers pixel rows 38-41 at scale 2.
  assert.deepEqual(pixelAt(png, 60, 38), [214, 39, 40]);
  assert.deepEqual(pixelAt(png, 60, 41), [214, 39, 40]);
  assert.deepEqual(pixelAt(png, 60, 42), [255, 255, 255]);
  // The band: blue at 0.2 over white.
  assert.deepEqual(pixelAt(png, 60, 20), [204, 204, 255]);
  assert.deepEqual(pixelAt(png, 5, 5), [255, 255, 255]);
  assert.deepEqual(pixelAt(png, 10, 65), [44, 160, 44]);
  // The same pixels as the canvas it was encoded from.
  assert.deepEqual(png.data, drawingToCanvas(DRAWING).toImage().data);
});

Deno.test("drawingToCanvas() honours the scale", () => {
  const c = drawingToCanvas(DRAWING, { scale: 1 });
  assert.equal(c.width, 60);
  assert.deepEqual(c.pixel(30, 19), [214, 39, 40]);
  assert.deepEqual(c.pixel(30, 21), [255, 255, 255]);
});
