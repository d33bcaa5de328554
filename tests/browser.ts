/**
 * What the browser tests and `deno task screenshots` share: headless Chromium (Debian's
 * `chromium`, `deno task test:all` installs it; set `CHROMIUM_PATH` elsewhere) launched through
 * playwright-core, and `deno task dashboard` started as a user starts it. Kept free of the
 * model code (no tfjs), so that `tools/screenshots.ts` can import it.
 *
 * @module
 */
import { type Browser, chromium } from "playwright-core";
import { exists } from "../model/fs.ts";
import { InputError } from "../util/errors.ts";

const REPO_ROOT = new URL("../", import.meta.url).pathname;

/** The Chromium executable: `CHROMIUM_PATH`, or Debian's `/usr/bin/chromium`. */
export const CHROMIUM: string = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";

/** Command-line flags of every headless Chromium launched here. */
export const CHROMIUM_ARGS: readonly string[] = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/**
 * Throws an {@linkcode InputError} naming {@linkcode CHROMIUM} and how to get one when no file
 * is there; `what` says what cannot be done without it.
 */
export async function requireChromium(what = "run the browser test"): Promise<void> {
  if (!(await exists(CHROMIUM))) {
    throw new InputError(
      `Cannot ${what}: no Chromium at "${CHROMIUM}" ` +
        "(apt-get install chromium, as deno task test:all does, or set CHROMIUM_PATH)",
    );
  }
}

/**
 * Launches headless {@linkcode CHROMIUM} with {@linkcode CHROMIUM_ARGS}, after
 * {@linkcode requireChromium} (`what` goes into its message). The caller closes the browser.
 */
export async function launchChromium(what = "run the browser test"): Promise<Browser> {
  await requireChromium(what);
  return await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS] });
}

/** A `deno task dashboard` started by {@linkcode startDashboard}. */
export interface DashboardProcess {
  /** The URL it printed (`http://127.0.0.1:PORT/`). */
  url: string;
  /** Everything it printed up to and including that line, trimmed. */
  line: string;
  /** Sends SIGTERM and resolves to its exit code. */
  stop(): Promise<number>;
}

/**
 * Starts `deno task dashboard` with `args` (run folders, flags) in the repository root, its
 * errors shown on this process's stderr; resolves once it printed `dashboard: URL`, and throws
 * naming what it printed if it exits first.
 */
export async function startDashboard(args: readonly string[]): Promise<DashboardProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "dashboard", ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/dashboard: (\S+)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`deno task dashboard exited before listening: ${text}`);
    text += value;
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  return {
    url: /dashboard: (\S+)/.exec(text)![1]!,
    line: text.trim(),
    async stop() {
      child.kill("SIGTERM");
      return (await child.status).code;
    },
  };
}
