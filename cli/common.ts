/**
 * Pieces shared by the CLIs: how a CLI exits (`runMain`), result tables and the cells of the
 * self-correction tables.
 *
 * @module
 */
import { ArgsError } from "./args.ts";
import { ConfigError } from "../config/load.ts";
import { InputError } from "../util/errors.ts";
import { listenOrigin } from "../server/guard.ts";
import { escapeControlChars } from "../util/escape.ts";
import { type CorrectionMetrics } from "../algorithms/mgrpo/self_correction.ts";
import { type TwoTurnMetrics } from "../algorithms/mgrpo/mod.ts";
import { REPO_ROOT } from "../training/setup.ts";
import { RUN_PERMISSIONS } from "../training/permissions.ts";

/**
 * `deno run` arguments that start `cli/train.ts` with the permissions `deno task train` has
 * (for tools and tests that run training as a process of its own); append train's flags.
 */
export const TRAIN_RUN_ARGS: readonly string[] = [
  "run",
  ...RUN_PERMISSIONS,
  `${REPO_ROOT}cli/train.ts`,
];

/**
 * Runs a CLI entry point and exits with its code: a thrown `ArgsError` or `ConfigError`
 * prints its message and exits 2 (bad command line or config), as does an `InputError` (a path
 * or file the user named), anything else exits 1.
 */
export async function runMain(main: (argv: string[]) => Promise<number>): Promise<never> {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    // Messages quote user data (a dataset line, a config value): never raw escape sequences.
    console.error(escapeControlChars(e instanceof Error ? e.message : String(e)));
    Deno.exit(
      e instanceof ArgsError || e instanceof ConfigError || e instanceof InputError ? 2 : 1,
    );
  }
}

/** A fraction as a percentage with one decimal, or "-". */
export function pct(x: number | undefined): string {
  return x === undefined ? "-" : (100 * x).toFixed(1);
}

/** A p-value with two significant digits (scientific below 1e-4), or "-". */
export function pValue(p: number | undefined): string {
  return p === undefined ? "-" : p < 1e-4 ? p.toExponential(1) : p.toPrecision(2);
}

/** Column names of one guided correction (first answer t1, corrected answer t2), in order. */
export const CORRECTION_COLUMNS: readonly string[] = [
  "Acc@t1 %",
  "Acc@t2 %",
  "Δ(t1,t2)",
  "Δi→c",
  "Δc→i",
  "McNemar p",
];

/** The cells of {@linkcode CORRECTION_COLUMNS} for one policy. */
export function correctionCells(m: CorrectionMetrics): string[] {
  return [
    pct(m.acc_t1),
    pct(m.acc_t2),
    pct(m.delta_t1_t2),
    pct(m.delta_i_to_c),
    pct(m.delta_c_to_i),
    pValue(m.mcnemar_p),
  ];
}

/** The cells of {@linkcode TWO_TURN_COLUMNS} and McNemar's p of t1' vs t2 for one policy. */
export function intrinsicCells(m: TwoTurnMetrics): string[] {
  return [
    pct(m.acc_t1),
    pct(m.acc_t1_prime),
    pct(m.acc_t2),
    pct(m.delta_t1_prime_t2),
    pct(m.delta_i_to_c),
    pct(m.delta_c_to_i),
    pValue(m.mcnemar_p),
  ];
}

/** Column names of the paper's Table 2 (two-turn evaluation), in the order of the rows. */
export const TWO_TURN_COLUMNS: readonly string[] = [
  "Acc@t1 %",
  "Acc@t1' %",
  "Acc@t2 %",
  "Δ(t1',t2)",
  "Δi→c",
  "Δc→i",
];

/** Where {@linkcode serveUntilStopped} listens, and what it prints once it does. */
export interface ServeOptions {
  /** The address to bind. */
  readonly hostname: string;
  /** The port (0: a free one). */
  readonly port: number;
  /** The line printed once listening, from the server's `http://host:port` origin. */
  readonly announce: (origin: string) => string;
}

/**
 * Serves `fetch` until SIGINT or SIGTERM, printing `options.announce(origin)` once it listens:
 * the server loop of `deno task serve` and `deno task dashboard`.
 */
export async function serveUntilStopped(
  fetch: (request: Request) => Response | Promise<Response>,
  options: ServeOptions,
): Promise<void> {
  const controller = new AbortController();
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    signal: controller.signal,
    onListen: (addr) => console.log(options.announce(listenOrigin(addr))),
  }, fetch);
  const stop = () => controller.abort();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
}
