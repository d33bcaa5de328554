/**
 * `deno task screenshots`: refreshes the pictures of the docs, `docs/img/dashboard.png` (the
 * run dashboard of a finished run of the embedded default, `configs/tiny-mgrpo.yaml`).
 * It trains that run into a temporary folder (minutes on 2 cores: docs/embedded-default.md) unless
 * `--run-dir DIR` names a finished run to picture, starts `deno task dashboard` on it and takes
 * the picture with headless Chromium (`CHROMIUM_PATH`, default `/usr/bin/chromium`).
 * Not run by the tests or CI: a picture changes with every run.
 *
 * ```sh
 * deno task screenshots
 * deno task screenshots --run-dir runs/tiny-mgrpo
 * ```
 *
 * @module
 */
import { ArgsError, type FlagSpec, formatHelp, parseFlags } from "../cli/args.ts";
import { runMain, TRAIN_RUN_ARGS } from "../cli/common.ts";
import { launchChromium, requireChromium, startDashboard } from "../tests/browser.ts";

const REPO_ROOT = new URL("../", import.meta.url).pathname;

const FLAGS: Readonly<Record<string, FlagSpec>> = {
  "run-dir": {
    type: "string",
    placeholder: "DIR",
    help:
      "A finished run to picture (default: train configs/tiny-mgrpo.yaml into a temporary folder)",
  },
  out: {
    type: "string",
    placeholder: "FILE",
    help: "Where the picture goes (default docs/img/dashboard.png)",
  },
  help: { type: "boolean", short: "h", help: "Print this help and exit" },
};

const HELP = formatHelp(FLAGS, {
  usage: "deno task screenshots [--run-dir DIR] [--out FILE]",
  summary: "Refreshes docs/img/dashboard.png: the run dashboard of a finished run of the " +
    "embedded default\n(configs/tiny-mgrpo.yaml, trained here unless --run-dir names one).",
  examples: ["deno task screenshots", "deno task screenshots --run-dir runs/tiny-mgrpo"],
});

/**
 * Trains the embedded default into `runDir`, its output shown as it goes; `sets` are more
 * `--set key=value` overrides (`tools/tensorboard_screenshot.ts` adds `run.report_to`, through
 * `withRunToPicture`).
 */
async function train(runDir: string, sets: readonly string[] = []): Promise<void> {
  console.log(`screenshots: training configs/tiny-mgrpo.yaml into ${runDir}`);
  const status = await new Deno.Command(Deno.execPath(), {
    args: [
      ...TRAIN_RUN_ARGS,
      "--config",
      "configs/tiny-mgrpo.yaml",
      "--set",
      "control.enabled=false",
      ...sets.flatMap((set) => ["--set", set]),
      "--run-dir",
      runDir,
    ],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!status.success) throw new Error(`Cannot train the run to picture: exit ${status.code}`);
}

/**
 * Calls `use` with the run to picture: `runDir` (the `--run-dir` flag) when given, else the
 * embedded default trained (with `sets`) into a temporary folder that is removed afterwards.
 */
export async function withRunToPicture<T>(
  runDir: unknown,
  sets: readonly string[],
  use: (runDir: string) => Promise<T>,
): Promise<T> {
  if (runDir !== undefined && typeof runDir !== "string") throw new ArgsError("--run-dir DIR");
  if (runDir !== undefined) return await use(runDir);
  const tmp = await Deno.makeTempDir({ prefix: "screenshots_" });
  try {
    await train(`${tmp}/tiny-mgrpo`, sets);
    return await use(`${tmp}/tiny-mgrpo`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, FLAGS);
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  const out = typeof values.out === "string" ? values.out : `${REPO_ROOT}docs/img/dashboard.png`;
  await requireChromium("take the pictures");
  return await withRunToPicture(values["run-dir"], [], async (runDir) => {
    const dashboard = await startDashboard([runDir]);
    const browser = await launchChromium("take the pictures");
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1240 } });
      await page.goto(dashboard.url);
      await page.waitForFunction('document.body.dataset.ready === "true"', null, {
        timeout: 30_000,
      });
      // Two animation frames: the charts are drawn on the next one.
      await page.evaluate(
        "new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))",
      );
      await Deno.mkdir(new URL(".", `file://${out}`).pathname, { recursive: true });
      await page.screenshot({ path: out });
    } finally {
      await browser.close();
      await dashboard.stop();
    }
    const { size } = await Deno.stat(out);
    console.log(`screenshots: ${out} (${size.toLocaleString("en-US")} bytes) of ${runDir}`);
    return 0;
  });
}

if (import.meta.main) await runMain(main);
