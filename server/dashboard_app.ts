/**
 * The dashboard of run folders, live or finished (`deno task dashboard`): a read-only Hono app
 * that serves the same page as a live run's control server, and the runs' files as JSON. It
 * changes nothing, so it needs no token; it takes GET and HEAD only, and sits behind the same
 * request guard as the control server (loopback `Host`, the server's own `Origin`).
 *
 * @module
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { guardFor, type GuardSettings } from "./guard.ts";
import {
  type DiscoverOptions,
  discoverRuns,
  readConfig,
  readEnvironment,
  readHistory,
  readSummary,
  type RunInfo,
} from "./run_files.ts";
import { readSamples } from "../training/samples_file.ts";
import {
  DASHBOARD_PAGE,
  DASHBOARD_SERIES,
  serveStatic,
  UPLOT_CSS,
  UPLOT_JS,
} from "./static_files.ts";

/**
 * The runs a dashboard shows: the folders it was given (or every run under `runs/`), found
 * again on every read, so runs that start later, and new seed runs of a compare folder, show
 * up without a restart.
 */
export class RunCatalog {
  #paths: readonly string[];
  #options: DiscoverOptions;
  #pending: Promise<RunInfo[]> | undefined;

  /** A catalog of `paths` (see {@linkcode discoverRuns}; none: every run under `runs/`). */
  constructor(paths: readonly string[], options: DiscoverOptions = {}) {
    this.#paths = [...paths];
    this.#options = options;
  }

  /** The runs as the folders hold them now (requests at the same time share one look). */
  list(): Promise<RunInfo[]> {
    this.#pending ??= discoverRuns(this.#paths, this.#options).finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  /** The run with id `id`, or `undefined`. */
  async get(id: string): Promise<RunInfo | undefined> {
    return (await this.list()).find((r) => r.id === id);
  }
}

/** Options of {@linkcode createDashboardApp}: the request guard's settings. */
export type DashboardAppOptions = GuardSettings;

/**
 * Builds the dashboard app over `catalog`. Routes, all GET (any other method: 405):
 *
 * - `GET /`, `/static/dashboard_series.js`, `/static/uplot/*`: the page and its scripts
 * - `GET /api/runs`: the runs ({@linkcode RunInfo}: id, name, path, group, arm, seed,
 *   algorithm, finished, live, steps, totalSteps)
 * - `GET /api/runs/:id/history`: `metrics.jsonl` as `{kind, step, time, metrics}` entries,
 *   the shape of the control server's `/history`
 * - `GET /api/runs/:id/samples[?step=N]`: `{steps, step, groups}`: the steps with samples and
 *   the sample groups of step N (default: the last)
 * - `GET /api/runs/:id/config`, `/summary`, `/environment`: `config.yaml` as JSON,
 *   `summary.json` (404 until the run has finished), `environment.jsonl` as an array
 *
 * A file that cannot be read answers 500 with the file and line in `error`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDashboardApp, RunCatalog } from "./dashboard_app.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/metrics.jsonl`, '{"step":1,"reward/mean":0.5}\n');
 * const app = createDashboardApp(new RunCatalog([dir]));
 * const [run] = await (await app.request("/api/runs")).json();
 * const history = await (await app.request(`/api/runs/${run.id}/history`)).json();
 * assert.deepEqual(history[0].metrics, { "reward/mean": 0.5 });
 * assert.equal((await app.request("/api/runs", { method: "POST" })).status, 405);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function createDashboardApp(catalog: RunCatalog, options: DashboardAppOptions = {}) {
  const run = async (id: string): Promise<RunInfo> => {
    const found = await catalog.get(id);
    if (!found) throw jsonError(404, `No run with id "${id}"`);
    return found;
  };
  return new Hono()
    .use("*", guardFor(options, (status, message) => jsonError(status, message)))
    .use("*", async function readOnly(c, next) {
      if (c.req.method !== "GET" && c.req.method !== "HEAD") {
        throw new HTTPException(405, {
          res: Response.json(
            { error: `The dashboard is read-only: ${c.req.method} is not allowed` },
            { status: 405, headers: { Allow: "GET, HEAD" } },
          ),
        });
      }
      await next();
    })
    .get("/", (c) => serveStatic(c, DASHBOARD_PAGE))
    .get("/static/dashboard_series.js", (c) => serveStatic(c, DASHBOARD_SERIES))
    .get("/static/uplot/uPlot.iife.min.js", (c) => serveStatic(c, UPLOT_JS))
    .get("/static/uplot/uPlot.min.css", (c) => serveStatic(c, UPLOT_CSS))
    .get("/api/runs", async (c) => c.json(await catalog.list(), 200))
    .get("/api/runs/:id/history", async (c) => {
      const { path } = await run(c.req.param("id"));
      return c.json(await readHistory(path), 200);
    })
    .get("/api/runs/:id/samples", async (c) => {
      const { path, name } = await run(c.req.param("id"));
      const all = await readSamples(path);
      const steps = [...new Set(all.map((s) => s.step))].sort((a, b) => a - b);
      const query = c.req.query("step");
      let step = steps.at(-1) ?? null;
      if (query !== undefined) {
        step = Number(query);
        if (!/^\d+$/.test(query)) {
          throw jsonError(
            400,
            `Invalid query "step": must be an integer >= 0: current value is "${query}"`,
          );
        }
        if (!steps.includes(step)) {
          throw jsonError(
            404,
            `Run "${name}" has no samples of step ${step}: steps with samples are ${
              steps.length ? steps.join(", ") : "none"
            }`,
          );
        }
      }
      // The last line of a step wins (a resumed run writes the steps after its checkpoint again).
      const groups = all.findLast((s) => s.step === step)?.groups ?? [];
      return c.json({ steps, step, groups }, 200);
    })
    .get("/api/runs/:id/config", async (c) => {
      const { path, name } = await run(c.req.param("id"));
      const config = await readConfig(path);
      if (config === null) throw jsonError(404, `Run "${name}" has no config.yaml`);
      return c.json(config, 200);
    })
    .get("/api/runs/:id/summary", async (c) => {
      const { path, name } = await run(c.req.param("id"));
      const summary = await readSummary(path);
      if (summary === null) {
        throw jsonError(404, `Run "${name}" has no summary.json: it has not finished`);
      }
      return c.json(summary, 200);
    })
    .get("/api/runs/:id/environment", async (c) => {
      const { path } = await run(c.req.param("id"));
      return c.json(await readEnvironment(path), 200);
    })
    .notFound((c) => c.json({ error: `No route "${c.req.method} ${c.req.path}"` }, 404))
    .onError((error, c) => {
      if (error instanceof HTTPException) return error.getResponse();
      return c.json({ error: error instanceof Error ? error.message : String(error) }, 500);
    });
}

/** The typed API of the dashboard app. */
export type DashboardApp = ReturnType<typeof createDashboardApp>;

function jsonError(status: 400 | 403 | 404 | 413 | 415, message: string): HTTPException {
  return new HTTPException(status, {
    message,
    res: Response.json({ error: message }, { status }),
  });
}
