/**
 * The command line of the benchmark scripts: `--help` prints the flags and exits 0; an unknown
 * flag or a missing value is one line naming the known flags, exit 2 (never a stack trace).
 *
 * @module
 */
import { ArgsError, type FlagSpec, formatHelp, parseFlags } from "../cli/args.ts";

/** A flag of a benchmark: a {@linkcode FlagSpec} with its default. */
export type BenchFlag = FlagSpec & { readonly default?: string | boolean };

/**
 * Reads `Deno.args` against `flags` (plus `--help`) for `deno task <task>`; returns each flag's
 * value, its default when absent. Exits the process for `--help` (0) and bad arguments (2).
 */
export function benchArgs<F extends Record<string, BenchFlag>>(
  task: string,
  summary: string,
  flags: F,
  argv: readonly string[] = Deno.args,
): { [K in keyof F]: F[K]["type"] extends "boolean" ? boolean : string } {
  const all: Record<string, FlagSpec> = {
    ...flags,
    help: { type: "boolean", short: "h", help: "Print this help and exit" },
  };
  let values;
  try {
    ({ values } = parseFlags(argv, all));
  } catch (error) {
    if (!(error instanceof ArgsError)) throw error;
    console.error(error.message);
    Deno.exit(2);
  }
  if (values.help === true) {
    const usage = Object.entries(flags).map(([name, f]) =>
      f.type === "boolean" ? `[--${name}]` : `[--${name} ${f.placeholder ?? "VALUE"}]`
    );
    console.log(formatHelp(all, { usage: [`deno task ${task}`, ...usage].join(" "), summary }));
    Deno.exit(0);
  }
  const out: Record<string, string | boolean> = {};
  for (const [name, f] of Object.entries(flags)) {
    const v = values[name];
    out[name] = v === undefined ? (f.default ?? (f.type === "boolean" ? false : "")) : v as string;
  }
  return out as { [K in keyof F]: F[K]["type"] extends "boolean" ? boolean : string };
}
