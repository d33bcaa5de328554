/**
 * The files of the dashboard page, the same for a live run's control server
 * (`server/app.ts`) and for `deno task dashboard` (`server/dashboard_app.ts`): the page, the
 * module that turns metrics into chart series, and the vendored uPlot 1.6.32. Each is read
 * from `server/static/` once, on its first request.
 *
 * @module
 */
import type { Context } from "hono";

/** A file under `server/static/` and the `Content-Type` it is served with. */
export interface StaticFile {
  /** Its path under `server/static/`. */
  path: string;
  /** Its `Content-Type`. */
  contentType: string;
}

/** The dashboard page. */
export const DASHBOARD_PAGE: StaticFile = {
  path: "dashboard.html",
  contentType: "text/html; charset=utf-8",
};
/** The chart series module the page imports (`/static/dashboard_series.js`). */
export const DASHBOARD_SERIES: StaticFile = {
  path: "dashboard_series.js",
  contentType: "text/javascript; charset=utf-8",
};
/** uPlot's script (`/static/uplot/uPlot.iife.min.js`). */
export const UPLOT_JS: StaticFile = {
  path: "vendor/uplot/uPlot.iife.min.js",
  contentType: "text/javascript; charset=utf-8",
};
/** uPlot's style sheet (`/static/uplot/uPlot.min.css`). */
export const UPLOT_CSS: StaticFile = {
  path: "vendor/uplot/uPlot.min.css",
  contentType: "text/css; charset=utf-8",
};

/** The text of each static file, read once on its first request (a failed read is retried). */
const staticTexts = new Map<string, Promise<string>>();

function readStatic(path: string): Promise<string> {
  let text = staticTexts.get(path);
  if (text === undefined) {
    text = Deno.readTextFile(new URL(`./static/${path}`, import.meta.url)).catch((cause) => {
      staticTexts.delete(path);
      throw new Error(
        `Cannot serve static file "server/static/${path}": ${(cause as Error).message}`,
        { cause },
      );
    });
    staticTexts.set(path, text);
  }
  return text;
}

/** A 200 response with `file`'s text, its content type and `Cache-Control: no-cache`. */
export async function serveStatic(c: Context, file: StaticFile): Promise<Response> {
  return c.body(await readStatic(file.path), 200, {
    "Content-Type": file.contentType,
    "Cache-Control": "no-cache",
  });
}
