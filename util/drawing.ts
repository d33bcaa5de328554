/**
 * A drawing list (polylines, polygons, rectangles and texts in user units) and its two
 * renderings: SVG text, and a PNG through the raster canvas of `util/canvas.ts`. A chart built
 * once as a `Drawing` shows the same thing in both files.
 *
 * Text is sized for the bitmap font: at `size` 10 one font pixel is one unit, its glyphs 5
 * units wide on a 6-unit advance and 7 tall, which a monospace font at 10 units matches in
 * the SVG (advance 0.6 em); sizes that are multiples of 5 stay crisp at a PNG scale of 2.
 *
 * @module
 */
import { Canvas } from "./canvas.ts";

/** A point in user units, x to the right, y down. */
export type Point = readonly [number, number];

/**
 * One thing to draw; later shapes paint over earlier ones. `id` names a shape for its readers
 * (the SVG element's `id`, and tests that look a shape up).
 */
export type Shape =
  & { id?: string }
  & (
    | { kind: "line"; points: readonly Point[]; stroke: string; width: number; opacity?: number }
    | { kind: "polygon"; points: readonly Point[]; fill: string; opacity?: number }
    | {
      kind: "rect";
      x: number;
      y: number;
      width: number;
      height: number;
      fill: string;
      opacity?: number;
    }
    | {
      kind: "text";
      /** The baseline's anchor point. */
      x: number;
      y: number;
      text: string;
      /** Font size in units (10: one font pixel a unit). */
      size: number;
      color: string;
      /** @default {"start"} */
      anchor?: "start" | "middle" | "end";
      /** -90: reads bottom to top. @default {0} */
      rotate?: 0 | -90;
    }
  );

/** A picture: its size in units, background colour, a title (the SVG's `<title>`) and shapes. */
export interface Drawing {
  width: number;
  height: number;
  background: string;
  title: string;
  shapes: Shape[];
}

const FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, monospace";

const num = (n: number) => String(Math.round(n * 100) / 100);
const xml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const points = (ps: readonly Point[]) => ps.map(([x, y]) => `${num(x)},${num(y)}`).join(" ");
const opacityAttr = (name: string, o: number | undefined) =>
  o === undefined || o === 1 ? "" : ` ${name}="${num(o)}"`;

/**
 * The drawing as an SVG document.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { drawingToSvg } from "./drawing.ts";
 *
 * const svg = drawingToSvg({
 *   width: 20,
 *   height: 10,
 *   background: "white",
 *   title: "a <line>",
 *   shapes: [{ kind: "line", points: [[0, 5], [20, 5]], stroke: "#ff0000", width: 2 }],
 * });
 * assert.match(svg, /<title>a &lt;line&gt;<\/title>/);
 * assert.match(svg, /<polyline points="0,5 20,5" fill="none" stroke="#ff0000" stroke-width="2"/);
 * ```
 */
export function drawingToSvg(drawing: Drawing): string {
  const { width: w, height: h } = drawing;
  const body = drawing.shapes.map((s) => {
    const id = s.id === undefined ? "" : `id="${xml(s.id)}" `;
    switch (s.kind) {
      case "line":
        return `<polyline ${id}points="${points(s.points)}" fill="none" stroke="${s.stroke}" ` +
          `stroke-width="${num(s.width)}" stroke-linejoin="round" stroke-linecap="round"` +
          `${opacityAttr("stroke-opacity", s.opacity)}/>`;
      case "polygon":
        return `<polygon ${id}points="${points(s.points)}" fill="${s.fill}"` +
          `${opacityAttr("fill-opacity", s.opacity)}/>`;
      case "rect":
        return `<rect ${id}x="${num(s.x)}" y="${num(s.y)}" width="${num(s.width)}" ` +
          `height="${num(s.height)}" fill="${s.fill}"${opacityAttr("fill-opacity", s.opacity)}/>`;
      case "text":
        return `<text ${id}x="${num(s.x)}" y="${num(s.y)}" font-size="${
          num(s.size)
        }" fill="${s.color}"` +
          (s.anchor && s.anchor !== "start" ? ` text-anchor="${s.anchor}"` : "") +
          (s.rotate === -90 ? ` transform="rotate(-90 ${num(s.x)} ${num(s.y)})"` : "") +
          `>${xml(s.text)}</text>`;
      default:
        throw new TypeError(`Unknown shape kind: current value is ${JSON.stringify(s)}`);
    }
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" ` +
    `font-family="${FONT_FAMILY}">`,
    `<title>${xml(drawing.title)}</title>`,
    `<rect width="${w}" height="${h}" fill="${drawing.background}"/>`,
    ...body,
    `</svg>`,
    "",
  ].join("\n");
}

/** How {@linkcode drawingToCanvas} and {@linkcode drawingToPng} rasterise. */
export interface RasterOptions {
  /** Pixels per unit; the width and height times it must be integers. @default {2} */
  scale?: number;
}

/** The drawing rasterised on a {@linkcode Canvas} of `scale` pixels per unit. */
export function drawingToCanvas(drawing: Drawing, options: RasterOptions = {}): Canvas {
  const k = options.scale ?? 2;
  const canvas = new Canvas(drawing.width * k, drawing.height * k, drawing.background);
  const scaled = (ps: readonly Point[]) => ps.map(([x, y]) => [x * k, y * k] as const);
  for (const s of drawing.shapes) {
    const paint = (color: string, opacity: number | undefined) =>
      opacity === undefined ? { color } : { color, opacity };
    switch (s.kind) {
      case "line":
        canvas.strokePolyline(scaled(s.points), {
          ...paint(s.stroke, s.opacity),
          width: s.width * k,
        });
        break;
      case "polygon":
        canvas.fillPolygon(scaled(s.points), paint(s.fill, s.opacity));
        break;
      case "rect":
        canvas.fillRect(
          { x: s.x * k, y: s.y * k, width: s.width * k, height: s.height * k },
          paint(s.fill, s.opacity),
        );
        break;
      case "text":
        canvas.fillText(s.text, {
          x: s.x * k,
          y: s.y * k,
          color: s.color,
          pixel: Math.max(1, Math.round((s.size / 10) * k)),
          anchor: s.anchor ?? "start",
          rotate: s.rotate ?? 0,
        });
        break;
      default:
        throw new TypeError(`Unknown shape kind: current value is ${JSON.stringify(s)}`);
    }
  }
  return canvas;
}

/** The drawing as a PNG file of `scale` pixels per unit. */
export function drawingToPng(drawing: Drawing, options: RasterOptions = {}): Promise<Uint8Array> {
  return drawingToCanvas(drawing, options).toPng();
}
