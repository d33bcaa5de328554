import assert from "node:assert/strict";
import { Canvas, parseColor, textWidth } from "../../util/canvas.ts";
import { glyph } from "../../util/bitmap_font.ts";

const WHITE = [255, 255, 255];

Deno.test("parseColor() reads #rrggbb, #rgb and the two names, and rejects the rest", () => {
  assert.deepEqual(parseColor("#1f77b4"), [31, 119, 180]);
  assert.deepEqual(parseColor("#f80"), [255, 136, 0]);
  assert.deepEqual(parseColor("black"), [0, 0, 0]);
  assert.throws(() => parseColor("red"), /Cannot parse colour: current value is "red"/);
});

Deno.test("Canvas.strokePolyline() covers exactly the rows of a 2-pixel line at integer y", () => {
  const c = new Canvas(20, 10);
  c.strokePolyline([[2, 5], [18, 5]], { color: "#ff0000", width: 2 });
  for (const x of [3, 10, 16]) {
    assert.deepEqual(c.pixel(x, 3), WHITE);
    assert.deepEqual(c.pixel(x, 4), [255, 0, 0]);
    assert.deepEqual(c.pixel(x, 5), [255, 0, 0]);
    assert.deepEqual(c.pixel(x, 6), WHITE);
  }
  // Round cap: the pixel centre (1.5, 4.5) is 0.707 from the end (2, 5), coverage 1 + 0.5 - 0.707.
  const g = Math.round(255 - 255 * (1.5 - Math.SQRT1_2));
  assert.deepEqual(c.pixel(1, 4), [255, g, g]);
});

Deno.test("Canvas.strokePolyline() anti-aliases a diagonal and paints a joint once", () => {
  const c = new Canvas(20, 20);
  c.strokePolyline([[0, 0], [10, 10], [20, 0]], { color: "black", width: 1 });
  // On the diagonal: distance 0, coverage 1.
  assert.deepEqual(c.pixel(4, 4), [0, 0, 0]);
  // Pixel (5, 4): centre (5.5, 4.5) is 0.707 from the line, coverage 1 - 0.707 = 0.293.
  const v = Math.round(255 * Math.SQRT1_2);
  assert.deepEqual(c.pixel(5, 4), [v, v, v]);
  // The joint at (10, 10): pixel (9, 9) is on both segments; painted once with coverage 1.
  assert.deepEqual(c.pixel(9, 9), [0, 0, 0]);
  // Pixel (9, 10), centre (9.5, 10.5), is 0.707 from the joint on both segments: 0.293 once,
  // not 1 - (1 - 0.293)² as two blends would give.
  assert.deepEqual(c.pixel(9, 10), [v, v, v]);
});

Deno.test("Canvas.fillRect() blends partly covered pixels and honours opacity", () => {
  const c = new Canvas(6, 4);
  c.fillRect({ x: 1.5, y: 1, width: 3, height: 2 }, { color: "black" });
  assert.deepEqual(c.pixel(1, 1), [128, 128, 128]); // half the pixel: 255 * 0.5 = 127.5 → 128
  assert.deepEqual(c.pixel(2, 2), [0, 0, 0]);
  assert.deepEqual(c.pixel(4, 1), [128, 128, 128]);
  assert.deepEqual(c.pixel(5, 1), WHITE);
  assert.deepEqual(c.pixel(2, 0), WHITE);
  const d = new Canvas(2, 2, "#000000");
  d.fillRect({ x: 0, y: 0, width: 2, height: 2 }, { color: "#ffffff", opacity: 0.25 });
  assert.deepEqual(d.pixel(1, 1), [64, 64, 64]); // 255 * 0.25 = 63.75
});

Deno.test("Canvas.fillPolygon() fills the inside and gives a diagonal edge pixel half coverage", () => {
  const c = new Canvas(8, 8);
  c.fillPolygon([[0, 0], [4, 0], [0, 4]], { color: "black" });
  assert.deepEqual(c.pixel(0, 0), [0, 0, 0]);
  assert.deepEqual(c.pixel(1, 1), [0, 0, 0]);
  // Pixel (1, 2) is cut corner to corner by x + y = 4: coverage 0.5 (exact with 4 sub-rows).
  assert.deepEqual(c.pixel(1, 2), [128, 128, 128]);
  assert.deepEqual(c.pixel(3, 3), WHITE);
  const band = new Canvas(10, 10);
  band.fillPolygon([[0, 2], [10, 2], [10, 6], [0, 6]], { color: "#0000ff", opacity: 0.2 });
  assert.deepEqual(band.pixel(5, 4), [204, 204, 255]); // 255 - 255 * 0.2
  assert.deepEqual(band.pixel(5, 6), WHITE);
});

Deno.test("Canvas.fillText() draws the font's pixels scaled, upright and turned, at its anchor", () => {
  const c = new Canvas(30, 30);
  // "|": font column 2, rows 0-6 above the baseline; at 2 pixels a font pixel.
  c.fillText("|", { x: 10, y: 20, pixel: 2, color: "black" });
  for (let y = 6; y < 20; y++) {
    assert.deepEqual(c.pixel(14, y), [0, 0, 0], `row ${y}`);
    assert.deepEqual(c.pixel(15, y), [0, 0, 0], `row ${y}`);
  }
  assert.deepEqual(c.pixel(14, 20), WHITE);
  assert.deepEqual(c.pixel(14, 5), WHITE);
  assert.deepEqual(c.pixel(13, 10), WHITE);
  // Turned -90 (reads upwards): the stroke lies along x, left of the baseline x = 10.
  const r = new Canvas(30, 30);
  r.fillText("|", { x: 10, y: 20, pixel: 1, color: "black", rotate: -90 });
  // u = 2 (column), v = -7..-1 → x = 3..9, y = 20 - 2 - 1 = 17.
  for (let x = 3; x < 10; x++) assert.deepEqual(r.pixel(x, 17), [0, 0, 0], `column ${x}`);
  assert.deepEqual(r.pixel(10, 17), WHITE);
  assert.deepEqual(r.pixel(5, 16), WHITE);
  // Anchored at the end: the ink of "-" (columns 1-3 of row 3) ends 1 pixel before x.
  const e = new Canvas(30, 30);
  e.fillText("-", { x: 20, y: 20, pixel: 1, color: "black", anchor: "end" });
  assert.deepEqual([15, 16, 17, 18, 19].map((x) => e.pixel(x, 16)[0]), [255, 0, 0, 0, 255]);
});

Deno.test("textWidth() counts the glyphs and their gaps; every ASCII glyph is within its cell", () => {
  assert.equal(textWidth(""), 0);
  assert.equal(textWidth("MGRPO"), 29);
  assert.equal(textWidth("±5"), 11);
  for (let c = 32; c < 127; c++) {
    for (const [x, y] of glyph(String.fromCharCode(c))) {
      assert.ok(x >= 0 && x < 5 && y >= 0 && y < 9, `${String.fromCharCode(c)}: ${x},${y}`);
    }
  }
});
