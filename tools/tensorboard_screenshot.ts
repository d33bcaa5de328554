/**
 * `deno task screenshots:tensorboard`: refreshes `docs/img/tensorboard.png`, the real
 * `tensorboard` (PyPI) showing the event files of a finished run of the embedded default,
 * `configs/tiny-mgrpo.yaml`, trained with `run.report_to: [tensorboard]`. It trains that run
 * into a temporary folder (minutes on 2 cores: docs/embedded-default.md) unless `--run-dir DIR`
 * names a finished run with a `tb/` folder, starts `tensorboard --logdir <run>/tb` on a free
 * loopback port, opens its Time Series dashboard in headless Chromium (`CHROMIUM_PATH`, default
 * `/usr/bin/chromium`) filtered to six of our tags, with no smoothing, and waits until their
 * charts are drawn. Before it takes the picture it checks each chart against `metrics.jsonl`:
 * as many points as the run logged of that tag, and the value at the last step (the data table
 * under the chart, to TensorBoard's 4 decimals); a difference fails it, naming the tags. The
 * `tensorboard` executable is `--tensorboard BIN`, else `$TENSORBOARD`, else `tensorboard` on
 * the `PATH`. Not run by the tests or CI: a picture changes with every run.
 *
 * ```sh
 * python3 -m venv /tmp/tbvenv && /tmp/tbvenv/bin/pip install tensorboard==2.21.0
 * TENSORBOARD=/tmp/tbvenv/bin/tensorboard deno task screenshots:tensorboard
 * ```
 *
 * @module
 */
import { type FlagSpec, formatHelp, parseFlags } from "../cli/args.ts";
import { runMain } from "../cli/common.ts";
import { launchChromium, requireChromium } from "../tests/browser.ts";
import { InputError } from "../util/errors.ts";
import { withRunToPicture } from "./screenshots.ts";

const REPO_ROOT = new URL("../", import.meta.url).pathname;

/** The version the picture and `tools/tensorboard_golden.py`'s fixtures were made with. */
const TENSORBOARD_VERSION = "2.21.0";

/** How to get {@linkcode TENSORBOARD_VERSION}, for the error when none is found. */
const INSTALL = `python3 -m venv /tmp/tbvenv && /tmp/tbvenv/bin/pip install ` +
  `tensorboard==${TENSORBOARD_VERSION}, then TENSORBOARD=/tmp/tbvenv/bin/tensorboard`;

/**
 * The tags pictured, in the order TensorBoard sorts its cards: the held-out accuracy (before
 * and after training), the policy loss, and the MGRPO series of each step (Layer-2 accuracy
 * Acc@t1', the corrections i→c and c→i, the Layer-1 reward).
 */
const TAGS: readonly string[] = [
  "eval/accuracy",
  "loss/policy",
  "mgrpo/acc_t1_prime",
  "mgrpo/delta_c_to_i",
  "mgrpo/delta_i_to_c",
  "reward/mean",
];

/** The Time Series tag filter (a regular expression) that shows exactly {@linkcode TAGS}. */
const TAG_FILTER = `^(${TAGS.join("|")})$`;

const FLAGS: Readonly<Record<string, FlagSpec>> = {
  "run-dir": {
    type: "string",
    placeholder: "DIR",
    help: "A finished run with a tb/ folder to picture (default: train configs/tiny-mgrpo.yaml " +
      "with run.report_to=[tensorboard] into a temporary folder)",
  },
  tensorboard: {
    type: "string",
    placeholder: "BIN",
    help: "The tensorboard executable (default $TENSORBOARD, else tensorboard on the PATH)",
  },
  out: {
    type: "string",
    placeholder: "FILE",
    help: "Where the picture goes (default docs/img/tensorboard.png)",
  },
  help: { type: "boolean", short: "h", help: "Print this help and exit" },
};

const HELP = formatHelp(FLAGS, {
  usage: "deno task screenshots:tensorboard [--run-dir DIR] [--tensorboard BIN] [--out FILE]",
  summary: "Refreshes docs/img/tensorboard.png: tensorboard (PyPI) showing the event files of a " +
    "finished run of the\nembedded default (configs/tiny-mgrpo.yaml with " +
    "run.report_to=[tensorboard], trained here unless --run-dir names one).",
  examples: [
    "TENSORBOARD=/tmp/tbvenv/bin/tensorboard deno task screenshots:tensorboard",
    "deno task screenshots:tensorboard --run-dir runs/tb-mgrpo --tensorboard ~/venv/bin/tensorboard",
  ],
});

/** A `tensorboard` started by {@linkcode startTensorBoard}. */
interface TensorBoardProcess {
  /** The URL it printed (`http://127.0.0.1:PORT/`). */
  url: string;
  /** Sends SIGTERM and resolves to its exit code. */
  stop(): Promise<number>;
}

/** Resolves to `bin --version_tb`, or throws an {@linkcode InputError} saying how to get one. */
async function tensorBoardVersion(bin: string): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(bin, { args: ["--version_tb"], stdin: "null" }).output();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new InputError(
      `Cannot take the TensorBoard picture: no tensorboard at "${bin}" (${INSTALL}, ` +
        "or pass --tensorboard BIN)",
    );
  }
  const text = new TextDecoder().decode(output.stdout).trim();
  if (!output.success || !/^\d+\.\d+/.test(text)) {
    throw new InputError(
      `Cannot take the TensorBoard picture: "${bin} --version_tb" failed: ` +
        [text, new TextDecoder().decode(output.stderr).trim()].filter(Boolean).join(" "),
    );
  }
  return text;
}

/**
 * Starts `bin --logdir logdir` on a free port of 127.0.0.1 (`--port 0`); resolves once it
 * printed `TensorBoard <version> at URL`, and throws naming what it printed if it exits first.
 */
async function startTensorBoard(bin: string, logdir: string): Promise<TensorBoardProcess> {
  const child = new Deno.Command(bin, {
    args: ["--logdir", logdir, "--host", "127.0.0.1", "--port", "0"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const listening = /TensorBoard \S+ at (http:\/\/\S+)/;
  let text = "";
  while (!listening.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`tensorboard exited before listening: ${text.trim()}`);
    text += value;
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  return {
    url: listening.exec(text)![1]!,
    async stop() {
      child.kill("SIGTERM");
      return (await child.status).code;
    },
  };
}

/** Throws an {@linkcode InputError} unless `runDir/tb` holds an event file. */
async function requireEventFiles(runDir: string): Promise<void> {
  const tb = `${runDir}/tb`;
  try {
    for await (const entry of Deno.readDir(tb)) {
      if (entry.isFile && entry.name.startsWith("events.out.tfevents.")) return;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  throw new InputError(
    `Cannot picture run "${runDir}": no event file in "${tb}" ` +
      "(train it with --set 'run.report_to=[tensorboard]')",
  );
}

/** TensorBoard's `_tb_global_settings` for the picture: no smoothing, no outlier clipping. */
const SETTINGS = { scalarSmoothing: 0, ignoreOutliers: false };

/** What a card shows: the points of its line, and its data table's step and value. */
interface CardRow {
  /** Vertices of the drawn line. */
  points: number;
  /** The data table's Step (the selected step, the last by default). */
  step: string;
  /** The data table's Value at that step. */
  value: string;
}

/**
 * A page expression: each pictured tag's {@linkcode CardRow}, or null while any card is missing,
 * loading or not drawn (cards out of view are not drawn, so they must all fit the viewport).
 */
const READ_CARDS = `(() => {
  const rows = {};
  const cards = [...document.querySelectorAll("scalar-card")];
  for (const tag of ${JSON.stringify(TAGS)}) {
    const card = cards.find((c) => c.querySelector(".tag")?.textContent.trim() === tag);
    if (!card || card.querySelector("mat-spinner")) return null;
    const d = card.querySelector(".series-view svg path")?.getAttribute("d") ?? "";
    const header = [...card.querySelectorAll("tb-data-table-header-cell")]
      .map((cell) => cell.textContent.trim());
    const cells = [...card.querySelectorAll("tb-data-table-content-row tb-data-table-content-cell")]
      .map((cell) => cell.textContent.trim());
    if (!d.includes("L") || cells.length === 0) return null;
    rows[tag] = {
      points: d.split("L").length,
      step: cells[header.indexOf("Step")],
      value: cells[header.indexOf("Value")],
    };
  }
  return rows;
})()`;

/**
 * Each tag's values in `runDir/metrics.jsonl`, by step (a later line wins); throws an
 * {@linkcode InputError} naming the first of {@linkcode TAGS} it lacks (a run of another
 * algorithm has no `mgrpo/*` scalars).
 */
async function loggedValues(runDir: string): Promise<Map<string, Map<number, number>>> {
  const path = `${runDir}/metrics.jsonl`;
  const byTag = new Map<string, Map<number, number>>();
  for (const line of (await Deno.readTextFile(path)).split("\n")) {
    if (!line.trim()) continue;
    const { step, ...record } = JSON.parse(line) as Record<string, number | null>;
    for (const [tag, value] of Object.entries(record)) {
      if (!byTag.has(tag)) byTag.set(tag, new Map());
      byTag.get(tag)!.set(step as number, value ?? NaN);
    }
  }
  const missing = TAGS.find((tag) => !byTag.has(tag));
  if (missing !== undefined) {
    throw new InputError(
      `Cannot picture run "${runDir}": "${path}" has no "${missing}" (the picture is of an ` +
        "MGRPO run with an evaluation)",
    );
  }
  return byTag;
}

/**
 * One line per pictured tag: what TensorBoard drew and showed against `metrics.jsonl` (the
 * number of points, the value at the selected step, to the 4 decimals TensorBoard prints);
 * throws naming every tag that differs.
 */
function compare(
  shown: Record<string, CardRow>,
  expected: Map<string, Map<number, number>>,
): string[] {
  const lines: string[] = [];
  const wrong: string[] = [];
  for (const tag of TAGS) {
    const card = shown[tag]!;
    const series = expected.get(tag) ?? new Map<number, number>();
    const step = Number(card.step);
    const want = series.get(step);
    const value = Number(card.value.replaceAll(",", ""));
    const line = `  ${tag}: ${card.points} points, ${card.value} at step ${card.step}; ` +
      `metrics.jsonl: ${series.size} steps, ${want} at step ${step}`;
    lines.push(line);
    const close = want !== undefined &&
      Math.abs(value - want) <= Math.max(5.01e-5, 5e-4 * Math.abs(want));
    if (card.points !== series.size || !close) wrong.push(line);
  }
  if (wrong.length > 0) {
    throw new Error(`TensorBoard shows other values than metrics.jsonl:\n${wrong.join("\n")}`);
  }
  return lines;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, FLAGS);
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  const out = typeof values.out === "string" ? values.out : `${REPO_ROOT}docs/img/tensorboard.png`;
  const bin = typeof values.tensorboard === "string"
    ? values.tensorboard
    : Deno.env.get("TENSORBOARD") ?? "tensorboard";
  const version = await tensorBoardVersion(bin);
  if (version !== TENSORBOARD_VERSION) {
    console.error(
      `screenshots: tensorboard ${version}, not ${TENSORBOARD_VERSION}: the page may differ`,
    );
  }
  await requireChromium("take the TensorBoard picture");
  const given = values["run-dir"];
  if (typeof given === "string") await requireEventFiles(given);
  return await withRunToPicture(given, ["run.report_to=[tensorboard]"], async (runDir) => {
    const expected = await loggedValues(runDir);
    const tensorboard = await startTensorBoard(bin, `${runDir}/tb`);
    const browser = await launchChromium("take the TensorBoard picture");
    let checks: string[];
    try {
      const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
      // TensorBoard's own settings, as its Settings pane stores them: no smoothing, so each
      // point is a logged value, and axes that span every value.
      await context.addInitScript(
        `localStorage.setItem("_tb_global_settings", ${JSON.stringify(JSON.stringify(SETTINGS))})`,
      );
      const page = await context.newPage();
      // forceSVG: TensorBoard's SVG renderer, whose lines are in the page to wait for.
      await page.goto(
        `${tensorboard.url}?forceSVG=true&tagFilter=${encodeURIComponent(TAG_FILTER)}#timeseries`,
      );
      // A fresh profile opens the Settings pane; closed, the six cards fit beside each other.
      await page.getByRole("button", { name: "Close side pane" }).click({ timeout: 60_000 });
      const ready = await page.waitForFunction(READ_CARDS, null, {
        timeout: 60_000,
        polling: 500,
      });
      checks = compare(await ready.jsonValue() as Record<string, CardRow>, expected);
      await page.evaluate(
        "new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))",
      );
      await Deno.mkdir(new URL(".", `file://${out}`).pathname, { recursive: true });
      await page.screenshot({ path: out });
    } finally {
      await browser.close();
      await tensorboard.stop();
    }
    const { size } = await Deno.stat(out);
    console.log(
      `screenshots: ${out} (${size.toLocaleString("en-US")} bytes) of ${runDir} in tensorboard ` +
        version,
    );
    for (const line of checks) console.log(line);
    return 0;
  });
}

if (import.meta.main) await runMain(main);
