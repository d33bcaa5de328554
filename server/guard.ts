/**
 * The request guard every HTTP server of the project puts in front of its routes (the control
 * server and dashboard of a run, `deno task serve`): it keeps web pages the user has open from
 * driving or reading a server on the same machine.
 *
 * - **Host**: the `Host` header must name a loopback address (`localhost`, `127.0.0.0/8`,
 *   `::1`), the address the server binds, or one of `allowedHosts` (`"*"` accepts any). A
 *   DNS-rebinding page reaches a loopback server under its own name, so its requests are
 *   refused before any route runs.
 * - **Origin**: a request that carries `Origin` (every cross-origin request a browser sends,
 *   and every same-origin one but a plain GET) must come from the server's own origin (the
 *   scheme, `Host` and port of the request) or from an allowed host; `Origin: null` (sandboxed
 *   frames, `file:` pages) is refused.
 * - **Bodies**: a request with a body must say `Content-Type: application/json` (a form or
 *   `text/plain` body is what a page can send without the browser asking first), and a body
 *   larger than `maxBodyBytes` is refused unread (413).
 *
 * Refusals are 403 (host, origin), 413 (size) and 415 (content type), in the app's own error
 * format (`refuse`).
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";

/** Options of {@linkcode requestGuard}. */
export interface GuardOptions {
  /** The address the server binds (`127.0.0.1`, `0.0.0.0`, a name). */
  host: string;
  /** More host names (or IP addresses) accepted in `Host` and `Origin`; `"*"` accepts any. */
  allowedHosts?: readonly string[];
  /** Largest request body in bytes. @default DEFAULT_MAX_BODY_BYTES */
  maxBodyBytes?: number;
  /** Builds the refusal in the app's error format. */
  refuse: (status: 403 | 413 | 415, message: string) => HTTPException;
}

/** The guard settings an app takes in its own options (all optional: loopback, 1 MiB). */
export interface GuardSettings {
  /** The address the server binds. @default "127.0.0.1" */
  host?: string;
  /** More host names accepted in `Host` and `Origin`. @default [] */
  allowedHosts?: readonly string[];
  /** Largest request body in bytes. @default DEFAULT_MAX_BODY_BYTES */
  maxBodyBytes?: number;
}

/** {@linkcode requestGuard} from an app's optional settings and its refusal format. */
export function guardFor(
  settings: GuardSettings,
  refuse: GuardOptions["refuse"],
): MiddlewareHandler {
  return requestGuard({
    host: settings.host ?? "127.0.0.1",
    ...(settings.allowedHosts ? { allowedHosts: settings.allowedHosts } : {}),
    ...(settings.maxBodyBytes ? { maxBodyBytes: settings.maxBodyBytes } : {}),
    refuse,
  });
}

/** Default cap of a request body: 1 MiB (a config patch or a chat request is a few KB). */
export const DEFAULT_MAX_BODY_BYTES = 1 << 20;

/** Methods that carry no body by definition. */
const BODILESS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Whether `host` (a bare name or address, brackets allowed) is a loopback address.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLoopbackHost } from "./guard.ts";
 *
 * assert.ok(isLoopbackHost("localhost"));
 * assert.ok(isLoopbackHost("[::1]"));
 * assert.ok(isLoopbackHost("127.0.0.1"));
 * assert.ok(!isLoopbackHost("0.0.0.0"));
 * assert.ok(!isLoopbackHost("127.0.0.1.evil.example"));
 * ```
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** The bare host of a `Host` header value (`[::1]:8000` → `::1`, `Example.com.` → `example.com`). */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  const bare = h.startsWith("[") ? h.slice(1, h.indexOf("]")) : h.replace(/:\d*$/, "");
  return bare.replace(/\.$/, "");
}

/**
 * The `http://` origin of a server listening on `addr` (what `Deno.serve`'s `onListen` gets),
 * an IPv6 address in brackets; no trailing slash.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listenOrigin } from "./guard.ts";
 *
 * assert.equal(listenOrigin({ hostname: "127.0.0.1", port: 8000 }), "http://127.0.0.1:8000");
 * assert.equal(listenOrigin({ hostname: "::1", port: 8000 }), "http://[::1]:8000");
 * ```
 */
export function listenOrigin(addr: { hostname: string; port: number }): string {
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return `http://${host}:${addr.port}`;
}

/** A media type is JSON: `application/json` or `application/<x>+json`, any parameters. */
function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  return type === "application/json" || /^application\/[\w.+-]+\+json$/.test(type);
}

/**
 * The guard middleware of {@linkcode GuardOptions}: `app.use("*", requestGuard(...))` before
 * every route.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Hono } from "hono";
 * import { HTTPException } from "hono/http-exception";
 * import { requestGuard } from "./guard.ts";
 *
 * const app = new Hono()
 *   .use("*", requestGuard({
 *     host: "127.0.0.1",
 *     refuse: (status, message) => new HTTPException(status, { message }),
 *   }))
 *   .post("/x", (c) => c.text("ok"));
 * const post = (headers: Record<string, string>) =>
 *   app.request("http://127.0.0.1:8000/x", { method: "POST", body: "{}", headers });
 * assert.equal((await post({ "Content-Type": "application/json" })).status, 200);
 * assert.equal((await post({ "Content-Type": "text/plain" })).status, 415);
 * assert.equal(
 *   (await post({ "Content-Type": "application/json", Origin: "https://evil.example" })).status,
 *   403,
 * );
 * ```
 */
export function requestGuard(options: GuardOptions): MiddlewareHandler {
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const any = options.allowedHosts?.includes("*") ?? false;
  const bound = hostName(options.host);
  const allowed = new Set((options.allowedHosts ?? []).map(hostName));
  const hostAllowed = (h: string) =>
    any || isLoopbackHost(h) || allowed.has(h) ||
    (h === bound && bound !== "0.0.0.0" && bound !== "::");
  const hint = "add it to the allowed hosts (control.allowed_hosts, or serve's --allowed-host)";
  return async function requestGuard(c, next) {
    const url = new URL(c.req.url);
    const hostHeader = c.req.header("Host") ?? url.host;
    const host = hostName(hostHeader);
    if (!hostAllowed(host)) {
      throw options.refuse(
        403,
        `Cannot accept request: the Host "${host}" is not a loopback address or this server's host; ${hint}`,
      );
    }
    const origin = c.req.header("Origin");
    if (origin !== undefined) {
      let from: URL | undefined;
      try {
        from = new URL(origin);
      } catch {
        from = undefined;
      }
      const same = from !== undefined && from.host.toLowerCase() === hostHeader.toLowerCase();
      const listed = from !== undefined && (any || allowed.has(hostName(from.host)));
      if (!same && !listed) {
        throw options.refuse(
          403,
          `Cannot accept request from the web page at Origin "${origin}": only this server's own pages may call it; ${hint}`,
        );
      }
    }
    if (!BODILESS.has(c.req.method) && c.req.raw.body !== null) {
      const length = c.req.header("Content-Length");
      const declared = length === undefined ? undefined : Number(length);
      const chunked = c.req.header("Transfer-Encoding") !== undefined;
      if (declared !== undefined && !chunked && declared > maxBody) {
        throw options.refuse(
          413,
          `Cannot accept request: the body is ${declared} bytes, more than the limit of ${maxBody}`,
        );
      }
      if (declared !== 0 || chunked) {
        if (!isJson(c.req.header("Content-Type"))) {
          throw options.refuse(
            415,
            `Cannot accept request: the body must be "Content-Type: application/json"; got ${
              JSON.stringify(c.req.header("Content-Type") ?? "no Content-Type")
            }`,
          );
        }
        if (declared === undefined || chunked) {
          // No trustworthy length: read at most maxBody bytes.
          const reader = c.req.raw.body!.getReader();
          const chunks: Uint8Array[] = [];
          let size = 0;
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            size += value.length;
            if (size > maxBody) {
              await reader.cancel().catch(() => {});
              throw options.refuse(
                413,
                `Cannot accept request: the body is more than the limit of ${maxBody} bytes`,
              );
            }
            chunks.push(value);
          }
          const body = new Uint8Array(size);
          let at = 0;
          for (const chunk of chunks) {
            body.set(chunk, at);
            at += chunk.length;
          }
          c.req.raw = new Request(c.req.raw, { body });
        }
      }
    }
    await next();
  };
}
