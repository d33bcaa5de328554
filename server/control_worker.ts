/**
 * Worker entry of the control server. The run's control (a `LocalLoopControl` over its
 * `RunControl`) and its HTTP server live here, on a thread of their own: the training loop
 * keeps the main thread busy with tensor math for seconds at a time, and requests must not
 * wait for it. The loop drives this worker through the `ControlServer` that
 * `startControlServer` (`server/serve.ts`) returns, with the messages below.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createControlApp } from "./app.ts";
import { type ConfigSection, liveSectionSchemas } from "../config/schema.ts";
import { builtinAlgorithms, type TrainConfig } from "../algorithms/builtins.ts";
import { asAlgorithmPlugin } from "../algorithms/registry.ts";
import { writeTokenFile } from "./run_control.ts";
import { CONTROL_FILE, type ControlFile, LocalLoopControl, TOKEN_FILE } from "./loop_control.ts";
import type { FromWorker, InitMessage, ToWorker } from "./control_protocol.ts";

const scope = self as unknown as DedicatedWorkerGlobalScope;
let loop: LocalLoopControl | undefined;
let server: Deno.HttpServer | undefined;
let abort: AbortController | undefined;
let controlPath = "";
let tokenPath = "";

/**
 * The algorithms' sections of a run: the built-ins' and those of the modules its config lists
 * under `plugins` (imported here again: zod schemas do not cross to a Worker).
 */
async function pluginSections(config: TrainConfig): Promise<Record<string, ConfigSection>> {
  const registry = builtinAlgorithms();
  for (const path of config.plugins) {
    const url = pathToFileURL(isAbsolute(path) ? path : resolve(Deno.cwd(), path));
    const plugin = asAlgorithmPlugin((await import(url.href)).algorithm, `"${path}"`);
    if (!registry.has(plugin.name)) registry.register(plugin);
  }
  return registry.sections();
}

function post(message: FromWorker): void {
  scope.postMessage(message);
}

async function init(m: InitMessage): Promise<void> {
  loop = new LocalLoopControl(m.config, {
    ...m,
    sectionSchemas: liveSectionSchemas(await pluginSections(m.config)),
  });
  tokenPath = `${m.runDir}/${TOKEN_FILE}`;
  await writeTokenFile(tokenPath, m.token);
  const app = createControlApp(loop.control, {
    token: m.token,
    requireTokenForReads: m.tokenForReads,
    host: m.host,
    allowedHosts: m.config.control.allowed_hosts,
  });
  abort = new AbortController();
  const listening = Promise.withResolvers<Deno.NetAddr>();
  server = Deno.serve({
    hostname: m.host,
    port: m.port,
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
  controlPath = `${m.runDir}/${CONTROL_FILE}`;
  const file: ControlFile = { url, pid: Deno.pid, tokenForReads: m.tokenForReads };
  await Deno.writeTextFile(`${controlPath}.tmp`, JSON.stringify(file, null, 2) + "\n");
  await Deno.rename(`${controlPath}.tmp`, controlPath);
  post({ type: "listening", url });
}

async function close(graceMs: number): Promise<void> {
  // The run is over: nobody may drive it any more, and its token must not outlive it.
  if (controlPath) await Deno.remove(controlPath).catch(() => {});
  if (tokenPath) await Deno.remove(tokenPath).catch(() => {});
  if (server) {
    const timer = setTimeout(() => {
      // Cuts open streams and stalled connections; one the client already dropped can make
      // Deno report a stale resource, which must not kill the worker mid-close.
      try {
        abort?.abort();
      } catch {
        // already closed
      }
    }, graceMs);
    try {
      await server.shutdown();
    } finally {
      clearTimeout(timer);
    }
  }
  post({ type: "closed" });
  scope.close();
}

/** Runs a message of the loop on the worker's {@linkcode LocalLoopControl}. */
async function handle(m: ToWorker): Promise<void> {
  if (m.type === "init") return await init(m);
  if (m.type === "close") return await close(m.graceMs);
  if (!loop) throw new Error(`Cannot handle "${m.type}": the control is not initialised`);
  switch (m.type) {
    case "boundary":
      post({ type: "boundary", id: m.id, boundary: await loop.atStepBoundary() });
      return;
    case "step":
      loop.recordStep(m.step, m.metrics, { actors: m.actors, policyVersion: m.policyVersion });
      return;
    case "samples":
      loop.recordSamples(m.samples);
      return;
    case "eval":
      loop.recordEval(m.step, m.metrics);
      return;
    case "stopped":
      loop.markStopped();
      return;
    case "failed":
      loop.markFailed(new Error(m.message));
      return;
    case "requestStop":
      loop.requestStop();
      return;
  }
}

scope.onmessage = (event: MessageEvent<ToWorker>) => {
  handle(event.data).catch((error) => {
    post({ type: "error", message: error instanceof Error ? error.message : String(error) });
  });
};
