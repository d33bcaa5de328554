/**
 * A small deterministic raster canvas for charts written as PNG (`util/png.ts`): an opaque RGB
 * image with anti-aliased polylines (coverage from each pixel centre's distance to the
 * segments, round caps and joins), anti-aliased filled polygons (4 sub-scanlines a row, exact
 * coverage along each), rectangles with fractional edges, and text from the bitmap font of
 * `util/bitmap_font.ts`, each font pixel an integer square of pixels, upright or turned 90°
 * counter-clockwise. Colours blend source-over with their opacity; the same calls give the
 * same bytes on every platform.
 *
 * Coordinates are continuous: pixel (i, j) covers [i, i+1] × [j, j+1], so a 2-pixel line at
 * integer y covers two rows exactly.
 *
 * @module
 */
import { glyph, GLYPH_ADVANCE, GLYPH_ASCENT } from "./bitmap_font.ts";
import { encodePng, type RasterImage } from "./png.ts";

/** A colour: `#rrggbb`, `#rgb`, `white` or `black`, and an opacity in [0, 1] (default 1). */
export interface Paint {
  color: string;
  /** @default {1} */
  opacity?: number;
}

/** Where and how {@linkcode Canvas.fillText} draws. */
export interface TextOptions extends Paint {
  /** Anchor point, canvas pixels: the baseline's start, middle or end (see `anchor`). */
  x: number;
  y: number;
  /** Side of one font pixel in canvas pixels (the text is 7 × this tall above the baseline). */
  pixel: number;
  /** @default {"start"} */
  anchor?: "start" | "middle" | "end";
  /** 0 reads left to right; -90 reads bottom to top, as SVG's `rotate(-90)`. @default {0} */
  rotate?: 0 | -90;
}

/**
 * `[r, g, b]` of a colour written `#rrggbb`, `#rgb`, `white` or `black`.
 *
 * @throws {SyntaxError} For anything else.
 */
export function parseColor(color: string): [number, number, number] {
  const named: Record<string, string> = { white: "#ffffff", black: "#000000" };
  const hex = named[color] ?? color;
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(hex);
  if (!m) throw new SyntaxError(`Cannot parse colour: current value is "${color}"`);
  const h = m[1]!.length === 3 ? [...m[1]!].map((c) => c + c).join("") : m[1]!;
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16)) as [number, number, number];
}

/** Width of a text in font pixels: the advance of each character but the last's blank column. */
export function textWidth(text: string): number {
  const n = [...text].length;
  return n === 0 ? 0 : n * GLYPH_ADVANCE - 1;
}

/**
 * An opaque RGB raster.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Canvas } from "./canvas.ts";
 *
 * const canvas = new Canvas(10, 10);
 * canvas.strokePolyline([[0, 5], [10, 5]], { color: "#ff0000", width: 2 });
 * assert.deepEqual(canvas.pixel(3, 4), [255, 0, 0]); // the row above y = 5
 * assert.deepEqual(canvas.pixel(3, 0), [255, 255, 255]); // the background
 * ```
 */
export class Canvas {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  #data: Uint8Array;

  /** A canvas filled with `background` (default white). */
  constructor(width: number, height: number, background = "white") {
    if (!Number.isInteger(width) || width < 1 || !Number.isInteger(height) || height < 1) {
      throw new RangeError(
        `Canvas size must be positive integers: current value is ${width} x ${height}`,
      );
    }
    this.width = width;
    this.height = height;
    this.#data = new Uint8Array(width * height * 3);
    const [r, g, b] = parseColor(background);
    for (let i = 0; i < this.#data.length; i += 3) {
      this.#data[i] = r;
      this.#data[i + 1] = g;
      this.#data[i + 2] = b;
    }
  }

  /** `[r, g, b]` of pixel (x, y). */
  pixel(x: number, y: number): [number, number, number] {
    const i = (y * this.width + x) * 3;
    return [this.#data[i]!, this.#data[i + 1]!, this.#data[i + 2]!];
  }

  /** The pixels, for {@linkcode encodePng}. */
  toImage(): RasterImage {
    return { width: this.width, height: this.height, channels: 3, data: this.#data };
  }

  /** The canvas as a PNG file. */
  toPng(): Promise<Uint8Array> {
    return encodePng(this.toImage());
  }

  /** Blends `rgb` at opacity `alpha` over pixel (x, y); outside the canvas does nothing. */
  #blend(x: number, y: number, rgb: [number, number, number], alpha: number): void {
    if (alpha <= 0 || x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const a = Math.min(1, alpha);
    const i = (y * this.width + x) * 3;
    for (let c = 0; c < 3; c++) {
      const d = this.#data[i + c]!;
      this.#data[i + c] = Math.round(d + (rgb[c]! - d) * a);
    }
  }

  /** Fills the rectangle [x, x+width] × [y, y+height]; partly covered edge pixels blend. */
  fillRect(
    rect: { x: number; y: number; width: number; height: number },
    paint: Paint,
  ): void {
    const rgb = parseColor(paint.color), opacity = paint.opacity ?? 1;
    const x0 = rect.x, x1 = rect.x + rect.width, y0 = rect.y, y1 = rect.y + rect.height;
    for (let j = Math.max(0, Math.floor(y0)); j < Math.min(this.height, Math.ceil(y1)); j++) {
      const cy = Math.min(j + 1, y1) - Math.max(j, y0);
      for (let i = Math.max(0, Math.floor(x0)); i < Math.min(this.width, Math.ceil(x1)); i++) {
        const cx = Math.min(i + 1, x1) - Math.max(i, x0);
        this.#blend(i, j, rgb, opacity * cx * cy);
      }
    }
  }

  /**
   * Strokes the polyline through `points` with round caps and joins, `width` pixels wide,
   * anti-aliased; where segments overlap a pixel is painted once (their largest coverage).
   */
  strokePolyline(
    points: readonly (readonly [number, number])[],
    options: Paint & { width: number },
  ): void {
    if (points.length === 0) return;
    const rgb = parseColor(options.color), opacity = options.opacity ?? 1;
    const half = options.width / 2;
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    const bx0 = Math.max(0, Math.floor(Math.min(...xs) - half - 1));
    const by0 = Math.max(0, Math.floor(Math.min(...ys) - half - 1));
    const bx1 = Math.min(this.width, Math.ceil(Math.max(...xs) + half + 1));
    const by1 = Math.min(this.height, Math.ceil(Math.max(...ys) + half + 1));
    if (bx1 <= bx0 || by1 <= by0) return;
    const bw = bx1 - bx0;
    const coverage = new Float32Array(bw * (by1 - by0));
    const segments = points.length === 1 ? [[points[0]!, points[0]!]] : points.slice(1).map((
      q,
      k,
    ) => [points[k]!, q]);
    for (const [p, q] of segments) {
      const [ax, ay] = p!, [qx, qy] = q!;
      const dx = qx - ax, dy = qy - ay, len2 = dx * dx + dy * dy;
      const sx0 = Math.max(bx0, Math.floor(Math.min(ax, qx) - half - 1));
      const sx1 = Math.min(bx1, Math.ceil(Math.max(ax, qx) + half + 1));
      const sy0 = Math.max(by0, Math.floor(Math.min(ay, qy) - half - 1));
      const sy1 = Math.min(by1, Math.ceil(Math.max(ay, qy) + half + 1));
      for (let j = sy0; j < sy1; j++) {
        for (let i = sx0; i < sx1; i++) {
          const px = i + 0.5 - ax, py = j + 0.5 - ay;
          const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, (px * dx + py * dy) / len2));
          const d = Math.hypot(px - t * dx, py - t * dy);
          const c = Math.max(0, Math.min(1, half + 0.5 - d));
          const k = (j - by0) * bw + (i - bx0);
          if (c > coverage[k]!) coverage[k] = c;
        }
      }
    }
    for (let j = by0; j < by1; j++) {
      for (let i = bx0; i < bx1; i++) {
        this.#blend(i, j, rgb, opacity * coverage[(j - by0) * bw + (i - bx0)]!);
      }
    }
  }

  /** Fills the polygon through `points` (even-odd rule), anti-aliased. */
  fillPolygon(points: readonly (readonly [number, number])[], paint: Paint): void {
    if (points.length < 3) return;
    const rgb = parseColor(paint.color), opacity = paint.opacity ?? 1;
    const ys = points.map((p) => p[1]);
    const j0 = Math.max(0, Math.floor(Math.min(...ys)));
    const j1 = Math.min(this.height, Math.ceil(Math.max(...ys)));
    const SUB = 4;
    const row = new Float32Array(this.width);
    for (let j = j0; j < j1; j++) {
      row.fill(0);
      for (let s = 0; s < SUB; s++) {
        const sy = j + (s + 0.5) / SUB;
        const crossings: number[] = [];
        for (let k = 0; k < points.length; k++) {
          const [px, py] = points[k]!, [qx, qy] = points[(k + 1) % points.length]!;
          if ((py <= sy && sy < qy) || (qy <= sy && sy < py)) {
            crossings.push(px + ((sy - py) * (qx - px)) / (qy - py));
          }
        }
        crossings.sort((a, b) => a - b);
        for (let k = 0; k + 1 < crossings.length; k += 2) {
          const xa = Math.max(0, crossings[k]!), xb = Math.min(this.width, crossings[k + 1]!);
          for (let i = Math.floor(xa); i < Math.ceil(xb); i++) {
            row[i] = row[i]! + (Math.min(i + 1, xb) - Math.max(i, xa)) / SUB;
          }
        }
      }
      for (let i = 0; i < this.width; i++) this.#blend(i, j, rgb, opacity * row[i]!);
    }
  }

  /**
   * Draws `text` in the bitmap font, each font pixel a `pixel` × `pixel` square snapped to the
   * pixel grid (text stays crisp), anchored at the baseline point (x, y).
   */
  fillText(text: string, options: TextOptions): void {
    const rgb = parseColor(options.color), opacity = options.opacity ?? 1;
    const p = options.pixel;
    const w = textWidth(text) * p;
    const shift = options.anchor === "middle" ? w / 2 : options.anchor === "end" ? w : 0;
    const x = Math.round(options.x), y = Math.round(options.y);
    const start = Math.round(shift);
    let k = 0;
    for (const ch of text) {
      for (const [gx, gy] of glyph(ch)) {
        // u along the text, v down from the baseline.
        const u = k * GLYPH_ADVANCE * p + gx * p - start, v = (gy - GLYPH_ASCENT) * p;
        const [rx, ry] = options.rotate === -90 ? [x + v, y - u - p] : [x + u, y + v];
        for (let j = 0; j < p; j++) {
          for (let i = 0; i < p; i++) this.#blend(rx + i, ry + j, rgb, opacity);
        }
      }
      k++;
    }
  }
}
