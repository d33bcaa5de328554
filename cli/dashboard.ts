/**
 * `deno task dashboard [RUN_DIR...]`: the run dashboard for run folders, live or finished,
 * read-only, on loopback. A RUN_DIR is a run folder (`runs/<name>` finds the newest dated
 * one), or a folder of runs such as a compare report (`runs/compare-2026-12-05`, whose
 * `<arm>-seed<k>` runs are grouped by arm); none: every run under `runs/`.
 *
 * ```sh
 * deno task dashboard runs/compare-2026-12-05 --port 8080
 * ```
 *
 * Once listening it prints `dashboard: http://127.0.0.1:PORT/ (N runs)`. Exit codes: 0 stopped
 * by SIGINT/SIGTERM, 2 bad flags or a RUN_DIR that is not a run (named).
 *
 * @module
 */
import { ArgsError, type FlagSpec, formatHelp, parseFlags } from "./args.ts";
import { runMain, serveUntilStopped } from "./common.ts";
import { isLoopbackHost } from "../server/guard.ts";
import { createDashboardApp, RunCatalog } from "../server/dashboard_app.ts";
import { readHistory } from "../server/run_files.ts";
import { InputError } from "../util/errors.ts";

const FLAGS: Readonly<Record<string, FlagSpec>> = {
  port: { type: "string", placeholder: "N", help: "Port (default 0: a free one)" },
  host: {
    type: "string",
    placeholder: "ADDR",
    help: "Loopback address to bind (default 127.0.0.1; the dashboard has no token)",
  },
  runs: {
    type: "string",
    placeholder: "DIR",
    help: "Where to look for runs when no RUN_DIR is given (default runs)",
  },
  help: { type: "boolean", short: "h", help: "Print this help and exit" },
};

/** Help text of `deno task dashboard`. */
export const DASHBOARD_HELP: string = formatHelp(FLAGS, {
  usage: "deno task dashboard [RUN_DIR...] [--port N] [--host 127.0.0.1] [--runs DIR]",
  summary: "Serves the run dashboard (charts, samples) of run folders, live or finished, " +
    "read-only on loopback.\n" +
    "A RUN_DIR is a run folder or a folder of runs (a compare report: seeds grouped by arm);\n" +
    "none: every run under runs/. Files are read again on every request, so a running run's\n" +
    "folder follows its new steps.",
  examples: [
    "deno task dashboard",
    "deno task dashboard runs/tiny-mgrpo runs/tiny-grpo",
    "deno task dashboard runs/compare-2026-12-05 --port 8080",
  ],
});

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, FLAGS, { allowPositionals: true });
  if (values.help === true) {
    console.log(DASHBOARD_HELP);
    return 0;
  }
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!/^\d+$/.test(String(values.port ?? "0")) || port > 65535) {
    throw new ArgsError(
      `Invalid value for --port: must be an integer in 0..65535: current value is ${
        JSON.stringify(values.port)
      }`,
    );
  }
  const host = typeof values.host === "string" ? values.host : "127.0.0.1";
  if (!isLoopbackHost(host)) {
    throw new ArgsError(
      `Invalid value for --host: the dashboard has no token, so it binds a loopback address ` +
        `only (127.0.0.1, ::1, localhost): current value is "${host}"`,
    );
  }
  const runsDir = typeof values.runs === "string" ? values.runs : "runs";
  const catalog = new RunCatalog(positionals, { runsDir });
  const runs = await catalog.list();
  // A file that cannot be read is named now, not on the page's first request.
  for (const run of runs) {
    try {
      await readHistory(run.path);
    } catch (error) {
      if (positionals.length > 0 || !(error instanceof InputError)) throw error;
      console.error(`dashboard: ${(error as Error).message}`);
    }
  }
  if (runs.length === 0) {
    console.error(`dashboard: no runs under "${runsDir}" yet; they show up as they start`);
  }
  const app = createDashboardApp(catalog, { host });
  await serveUntilStopped(app.fetch, {
    hostname: host,
    port,
    announce: (origin) =>
      `dashboard: ${origin}/ (${runs.length} run${runs.length === 1 ? "" : "s"})`,
  });
  return 0;
}

if (import.meta.main) await runMain(main);
