/**
 * The HTTP face of a live run: a Hono app over a {@linkcode RunControl}. A live dashboard
 * page (`GET /`, with its vendored uPlot files, always open: the page holds no data), reads
 * (status, config, Prometheus metrics, an SSE event stream, recent samples, the metrics
 * history, the OpenAPI document) and requests (pause, resume, stop, checkpoint, live config
 * patches) that need a bearer token. Serve it with `Deno.serve({ port: 0 }, app.fetch)`;
 * test it with `app.request()`.
 *
 * @module
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { streamSSE } from "hono/streaming";
import { guardFor } from "./guard.ts";
import {
  DASHBOARD_PAGE,
  DASHBOARD_SERIES,
  serveStatic,
  UPLOT_CSS,
  UPLOT_JS,
} from "./static_files.ts";
import { z } from "zod";
import {
  ConfigPatchError,
  configPatchSchema,
  type ControlEvent,
  type LiveField,
  type RequestAccepted,
  type RunControl,
  RunStateError,
} from "./run_control.ts";
import { SampleGroupSchema } from "../actors/messages.ts";

/** Options for {@linkcode createControlApp}. */
export interface ControlAppOptions {
  /** The bearer token every request that changes the run must carry. */
  token: string;
  /** Whether reads (status, config, metrics, events, samples, openapi.json) need it too. */
  requireTokenForReads: boolean;
  /** The address the server binds (see `server/guard.ts`). @default "127.0.0.1" */
  host?: string;
  /** More host names accepted in `Host` and `Origin` (`control.allowed_hosts`). @default [] */
  allowedHosts?: readonly string[];
  /** Largest request body in bytes. @default DEFAULT_MAX_BODY_BYTES */
  maxBodyBytes?: number;
}

/**
 * Builds the control app of `control`. Routes:
 *
 * - `GET /`: the live dashboard (`server/static/dashboard.html`: charts, run state, control
 *   buttons, live config form, samples); `GET /static/dashboard_series.js`: its chart series
 *   module; `GET /static/uplot/uPlot.iife.min.js` and `GET /static/uplot/uPlot.min.css`: the
 *   uPlot 1.6.32 files it loads (`server/static_files.ts`, shared with `deno task dashboard`).
 *   These four never need the token: the page fetches everything else itself, with the token
 *   typed into it
 * - `GET /status`, `GET /config`, `GET /history` (metrics of every recorded step and
 *   evaluation): JSON
 * - `GET /samples`: the latest step's sample groups as JSON, one per prompt
 *   (`SampleGroup[]`: the prompt and each completion's text, reward, trained advantage and
 *   verdict; under MGRPO each completion's guide phrase, H corrections and `discarded`);
 *   `[]` before the first step
 * - `GET /metrics`: the last step's metrics in the Prometheus text format 0.0.4
 * - `GET /events`: server-sent events `state` (first the current one), `step`, `eval`,
 *   `config`;
 *   the stream ends after the run stops or fails
 * - `POST /pause`, `/resume`, `/stop`, `/checkpoint`: 202 `{accepted, effectiveAfterStep}`,
 *   409 `{error, state}` when the run's state refuses
 * - `PATCH /config`: 200 `{changes}`, 400 `{error, issues}`, 409 `{error, liveFields}`
 * - `GET /openapi.json`: an OpenAPI 3.1 document of all of these
 *
 * Requests without the right `Authorization: Bearer <token>` get 401 (all but the dashboard
 * and its static files). Every route is behind {@linkcode requestGuard}: a `Host` that is not
 * loopback or allowed, a foreign `Origin`, a body that is not JSON or larger than the cap get
 * 403, 415 or 413 before any route runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TrainConfigSchema } from "../algorithms/builtins.ts";
 * import { RunControl } from "./run_control.ts";
 * import { createControlApp } from "./app.ts";
 *
 * const control = new RunControl(TrainConfigSchema.parse({}));
 * const app = createControlApp(control, { token: "secret", requireTokenForReads: false });
 * assert.equal((await (await app.request("/status")).json()).state, "starting");
 * const res = await app.request("/pause", {
 *   method: "POST",
 *   headers: { Authorization: "Bearer secret" },
 * });
 * assert.equal(res.status, 202);
 * assert.equal(control.state, "pausing");
 * ```
 */
export function createControlApp(control: RunControl, options: ControlAppOptions) {
  const write = requireToken(options.token);
  const read = options.requireTokenForReads ? write : allowAnyone();
  const openapi = openApiDocument(
    options.requireTokenForReads,
    control.liveFields,
    control.sectionSchemas,
  );
  return new Hono()
    .use("*", guardFor(options, (status, message) => jsonError(status, { error: message })))
    .get("/", (c) => serveStatic(c, DASHBOARD_PAGE))
    .get("/static/dashboard_series.js", (c) => serveStatic(c, DASHBOARD_SERIES))
    .get("/static/uplot/uPlot.iife.min.js", (c) => serveStatic(c, UPLOT_JS))
    .get("/static/uplot/uPlot.min.css", (c) => serveStatic(c, UPLOT_CSS))
    .get("/status", read, (c) => c.json(control.status(), 200))
    .get("/config", read, (c) => c.json(control.config, 200))
    .get("/samples", read, (c) => c.json(control.samples(), 200))
    .get("/history", read, (c) => c.json(control.history(), 200))
    .get(
      "/metrics",
      read,
      (c) =>
        c.body(prometheusText(control.status().step, control.latestMetrics()), 200, {
          "Content-Type": PROMETHEUS_CONTENT_TYPE,
        }),
    )
    .get("/events", read, (c) =>
      // HEAD gets the headers only: Hono drops a HEAD response's body without cancelling
      // it, so a stream started for one would stay subscribed (queueing every event) until
      // the run ends.
      c.req.method === "HEAD"
        ? c.body(null, 200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" })
        : streamSSE(c, (stream) => streamEvents(control, stream)))
    .get("/openapi.json", read, (c) => c.json(openapi, 200))
    .post("/pause", write, (c) => c.json(accept(() => control.requestPause()), 202))
    .post("/resume", write, (c) => c.json(accept(() => control.requestResume()), 202))
    .post("/stop", write, (c) => c.json(accept(() => control.requestStop()), 202))
    .post("/checkpoint", write, (c) => c.json(accept(() => control.requestCheckpoint()), 202))
    .patch("/config", write, async (c) => {
      const body = await readJsonBody(c);
      try {
        return c.json({ changes: await control.patchConfig(body) }, 200);
      } catch (error) {
        if (!(error instanceof ConfigPatchError)) throw error;
        throw error.kind === "invalid"
          ? jsonError(400, { error: error.message, issues: error.issues })
          : jsonError(409, { error: error.message, liveFields: error.liveFields });
      }
    })
    .notFound((c) => c.json({ error: `No route "${c.req.method} ${c.req.path}"` }, 404))
    .onError((error, c) => {
      if (error instanceof HTTPException) return error.getResponse();
      return c.json({ error: error instanceof Error ? error.message : String(error) }, 500);
    });
}

/** The typed API of the control app, for `hono/client`'s `hc<ControlApp>(url)`. */
export type ControlApp = ReturnType<typeof createControlApp>;

// --- auth ---

/**
 * Middleware that lets a request through only with `Authorization: Bearer <token>`
 * (compared in constant time); otherwise 401 with a JSON error.
 */
function requireToken(token: string): MiddlewareHandler {
  const expected = new TextEncoder().encode(token);
  return async function requireToken(c, next) {
    const header = c.req.header("Authorization");
    const match = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!match) {
      throw unauthorized(
        header === undefined
          ? 'Cannot authorize request: no "Authorization: Bearer <token>" header'
          : 'Cannot authorize request: the Authorization header is not "Bearer <token>"',
      );
    }
    if (!timingSafeEqual(new TextEncoder().encode(match[1]!), expected)) {
      throw unauthorized("Cannot authorize request: the bearer token is wrong");
    }
    await next();
  };
}

/** Middleware that lets every request through (reads, when they need no token). */
function allowAnyone(): MiddlewareHandler {
  return async function allowAnyone(_c, next) {
    await next();
  };
}

/** Compares two byte strings in time that depends only on their lengths. */
function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  const length = Math.max(a.length, b.length);
  let diff = a.length ^ b.length;
  for (let i = 0; i < length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

function unauthorized(message: string): HTTPException {
  return jsonError(401, { error: message }, { "WWW-Authenticate": 'Bearer realm="mgrpo"' });
}

// --- errors and bodies ---

function jsonError(
  status: 400 | 401 | 403 | 409 | 413 | 415,
  body: { error: string } & Record<string, unknown>,
  headers: Record<string, string> = {},
): HTTPException {
  return new HTTPException(status, {
    message: body.error,
    res: Response.json(body, { status, headers }),
  });
}

/** Runs a request of the control; a refusal becomes 409 `{error, state}`. */
function accept(request: () => RequestAccepted): RequestAccepted {
  try {
    return request();
  } catch (error) {
    if (error instanceof RunStateError) {
      throw jsonError(409, { error: error.message, state: error.state });
    }
    throw error;
  }
}

async function readJsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw jsonError(400, {
      error: `Cannot change config: the body is not JSON: ${(cause as Error).message}`,
    });
  }
}

// --- events ---

interface EventStream {
  writeSSE(message: { data: string; event?: string; id?: string }): Promise<void>;
  onAbort(listener: () => void): void;
  readonly aborted: boolean;
}

/**
 * Streams `control`'s events: the current state first, then every event as it comes, until
 * the client goes away or the run ends (`stopped` or `failed`).
 */
async function streamEvents(control: RunControl, stream: EventStream): Promise<void> {
  const queue: ControlEvent[] = [];
  let wake: (() => void) | undefined;
  const unsubscribe = control.subscribe((event) => {
    queue.push(event);
    wake?.();
  });
  stream.onAbort(() => wake?.());
  let id = 0;
  try {
    const { state, step } = control.status();
    queue.unshift({ type: "state", state, step });
    while (!stream.aborted) {
      const event = queue.shift();
      if (event === undefined) {
        await new Promise<void>((resolve) => wake = resolve);
        wake = undefined;
        continue;
      }
      await stream.writeSSE({ event: event.type, data: JSON.stringify(event), id: String(id++) });
      if (event.type === "state" && (event.state === "stopped" || event.state === "failed")) break;
    }
  } finally {
    unsubscribe();
  }
}

// --- metrics ---

/** Content type of the Prometheus text exposition format 0.0.4. */
const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * The Prometheus text format of one step's metrics: `mgrpo_step`, then every metric as a
 * gauge named `mgrpo_` + the key with each character outside `[A-Za-z0-9_]` turned into `_`
 * (`reward/mean` → `mgrpo_reward_mean`), its HELP the original key. A key `step`, and a key
 * whose name an earlier one already took, is left out.
 */
function prometheusText(step: number, metrics: Record<string, number>): string {
  const lines = ["# HELP mgrpo_step Last completed training step", "# TYPE mgrpo_step gauge"];
  lines.push(`mgrpo_step ${prometheusValue(step)}`);
  const names = new Set(["mgrpo_step"]);
  for (const [key, value] of Object.entries(metrics)) {
    const name = `mgrpo_${key.replace(/[^A-Za-z0-9_]/g, "_")}`;
    if (names.has(name) || typeof value !== "number") continue;
    names.add(name);
    lines.push(`# HELP ${name} ${key.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
    lines.push(`# TYPE ${name} gauge`, `${name} ${prometheusValue(value)}`);
  }
  return lines.join("\n") + "\n";
}

function prometheusValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value); // NaN is "NaN", as Prometheus writes it
}

// --- openapi ---

/** The OpenAPI 3.1 document of the app; reads carry security only when they need the token. */
function openApiDocument(
  requireTokenForReads: boolean,
  liveFields: readonly LiveField[],
  sectionSchemas: Record<string, z.ZodType>,
): Record<string, unknown> {
  const secured = [{ bearer: [] }];
  const readSecurity = requireTokenForReads ? secured : [];
  const errorRef = { $ref: "#/components/schemas/Error" };
  const json = (schema: unknown) => ({ "application/json": { schema } });
  const unauthorizedResponse = {
    description: "Missing or wrong bearer token",
    content: json(errorRef),
  };
  const read = (summary: string, content: Record<string, unknown>) => ({
    summary,
    security: readSecurity,
    responses: {
      "200": { description: summary, content },
      ...(requireTokenForReads ? { "401": unauthorizedResponse } : {}),
    },
  });
  const request = (summary: string) => ({
    summary,
    security: secured,
    responses: {
      "202": {
        description: "Accepted: takes effect at the step boundary after effectiveAfterStep",
        content: json({ $ref: "#/components/schemas/Accepted" }),
      },
      "401": unauthorizedResponse,
      "409": { description: "The run's state refuses the request", content: json(errorRef) },
    },
  });
  const { $schema: _, ...patchSchema } = z.toJSONSchema(
    configPatchSchema(liveFields, sectionSchemas),
    {
      io: "input",
    },
  );
  const { $schema: __, ...sampleGroupSchema } = z.toJSONSchema(SampleGroupSchema);
  const anyJson = json({ type: "object" });
  return {
    openapi: "3.1.0",
    info: {
      title: "mgrpo run control",
      version: "1",
      description: "Live status and control of one training run",
    },
    paths: {
      "/": { get: { summary: "The live dashboard (HTML page; no token needed)" } },
      "/static/uplot/uPlot.iife.min.js": {
        get: { summary: "uPlot 1.6.32, the chart library of the dashboard (no token needed)" },
      },
      "/static/uplot/uPlot.min.css": {
        get: { summary: "uPlot 1.6.32's style sheet (no token needed)" },
      },
      "/static/dashboard_series.js": {
        get: { summary: "The dashboard's chart series module (no token needed)" },
      },
      "/status": { get: read("Status of the run", anyJson) },
      "/config": {
        get: read("The config as of the last live change", anyJson),
        patch: {
          summary: `Change live config fields (${liveFields.join(", ")}), all or nothing`,
          security: secured,
          requestBody: {
            required: true,
            content: json({ $ref: "#/components/schemas/ConfigPatch" }),
          },
          responses: {
            "200": { description: "The applied changes", content: anyJson },
            "400": { description: "Malformed body or invalid value", content: json(errorRef) },
            "401": unauthorizedResponse,
            "409": {
              description: "A field that cannot change during a run",
              content: json(errorRef),
            },
          },
        },
      },
      "/metrics": {
        get: read("The last step's metrics, Prometheus text format 0.0.4", {
          "text/plain": { schema: { type: "string" } },
        }),
      },
      "/events": {
        get: read("Server-sent events: state, step, eval, config", {
          "text/event-stream": { schema: { type: "string" } },
        }),
      },
      "/samples": {
        get: read(
          "The latest step's sample groups, one per prompt",
          json({ type: "array", items: { $ref: "#/components/schemas/SampleGroup" } }),
        ),
      },
      "/history": {
        get: read("Metrics of every recorded step and evaluation", json({ type: "array" })),
      },
      "/openapi.json": { get: read("This document", anyJson) },
      "/pause": { post: request("Pause at the next step boundary") },
      "/resume": { post: request("Resume a paused run") },
      "/stop": { post: request("Stop at the next step boundary") },
      "/checkpoint": { post: request("Save a checkpoint at the next step boundary") },
    },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: {
        ConfigPatch: patchSchema,
        SampleGroup: sampleGroupSchema,
        Accepted: {
          type: "object",
          properties: {
            accepted: { const: true },
            effectiveAfterStep: { type: "integer" },
          },
          required: ["accepted", "effectiveAfterStep"],
        },
        Error: {
          type: "object",
          properties: {
            error: { type: "string" },
            state: { type: "string" },
            liveFields: { type: "array", items: { type: "string" } },
            issues: { type: "array", items: { type: "object" } },
          },
          required: ["error"],
        },
      },
    },
  };
}
