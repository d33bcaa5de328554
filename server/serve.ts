/**
 * Serves a run's control app over HTTP beside the training loop: generates the bearer
 * token, writes it to `<run>/control-token` (mode 0600), listens, and writes
 * `<run>/control.json` with the URL once the server listens.
 *
 * @module
 */
import { createControlApp } from "./app.ts";
import { generateToken, type RunControl, writeTokenFile } from "./run_control.ts";

/** File in the run folder that holds the control server's URL while it listens. */
export const CONTROL_FILE = "control.json";
/** File in the run folder that holds the bearer token (mode 0600). */
export const TOKEN_FILE = "control-token";

/** Options for {@linkcode startControlServer}. */
export interface ControlServerOptions {
  /** Address to bind, e.g. `"127.0.0.1"`; off loopback, reads need the token too. */
  host: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** The run folder: `control-token` and `control.json` are written there. */
  runDir: string;
  /**
   * The token; a fresh one from {@linkcode generateToken} when absent.
   * @default generateToken()
   */
  token?: string;
}

/** What `control.json` holds. */
export interface ControlFile {
  /** Base URL of the control server, e.g. `http://127.0.0.1:40123`. */
  url: string;
  /** Process id of the run. */
  pid: number;
  /** Whether reads need the token (the server is bound off loopback). */
  tokenForReads: boolean;
}

/** A listening control server. */
export interface ControlServer {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  /** The bearer token. */
  readonly token: string;
  /** Path of the token file. */
  readonly tokenPath: string;
  /**
   * Stops listening (open event streams are ended after `graceMs`) and removes
   * `control.json`.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Whether `host` is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLoopback } from "./serve.ts";
 *
 * assert.ok(isLoopback("127.0.0.1"));
 * assert.ok(isLoopback("::1"));
 * assert.ok(!isLoopback("0.0.0.0"));
 * ```
 */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Starts the control server of `control`. The token file is written before the server
 * listens, `control.json` (atomically: a temporary file renamed) right after.
 *
 * @throws {Deno.errors.AddrInUse} when the port is taken
 */
export async function startControlServer(
  control: RunControl,
  options: ControlServerOptions,
): Promise<ControlServer> {
  const token = options.token ?? generateToken();
  const tokenPath = `${options.runDir}/${TOKEN_FILE}`;
  await writeTokenFile(tokenPath, token);
  const tokenForReads = !isLoopback(options.host);
  const app = createControlApp(control, { token, requireTokenForReads: tokenForReads });
  const abort = new AbortController();
  const listening = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    hostname: options.host,
    port: options.port,
    signal: abort.signal,
    onListen: (addr) => listening.resolve(addr as Deno.NetAddr),
    onError: (error) =>
      Response.json({ error: error instanceof Error ? error.message : String(error) }, {
        status: 500,
      }),
  }, app.fetch);
  const addr = await listening.promise;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const url = `http://${host}:${addr.port}`;
  const controlPath = `${options.runDir}/${CONTROL_FILE}`;
  const file: ControlFile = { url, pid: Deno.pid, tokenForReads };
  await Deno.writeTextFile(`${controlPath}.tmp`, JSON.stringify(file, null, 2) + "\n");
  await Deno.rename(`${controlPath}.tmp`, controlPath);
  let closed: Promise<void> | undefined;
  return {
    url,
    token,
    tokenPath,
    close(graceMs = 1000) {
      closed ??= (async () => {
        await Deno.remove(controlPath).catch(() => {});
        const timer = setTimeout(() => abort.abort(), graceMs);
        try {
          await server.shutdown();
        } finally {
          clearTimeout(timer);
        }
        await server.finished;
      })();
      return closed;
    },
  };
}
