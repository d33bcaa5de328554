/**
 * Runs one fuzz target in this process and reports on stdout, one JSON object a line:
 * `{"type":"case","i":n}` before each case, `{"type":"note",…}` for slow calls and other
 * observations, `{"type":"failure",…}` for the first broken property (then exit code 1) and
 * `{"type":"done",…}` at the end. `tests/fuzz_test.ts` runs it as a child process, so that a
 * hang can be killed for real.
 *
 * ```
 * deno run --allow-read tests/fuzz/runner.ts <target> <seed> <cases>
 * ```
 *
 * @module
 */
import { caseRng, createTarget, FuzzFailure, TARGET_NAMES, type TargetName } from "./targets.ts";

/** One line of the runner's report. */
export type RunnerReport =
  | { type: "case"; i: number }
  | { type: "note"; i: number; kind: string; text: string }
  | { type: "failure"; i: number; message: string; input: string }
  | { type: "done"; cases: number; ms: number };

function report(line: RunnerReport): void {
  console.log(JSON.stringify(line));
}

async function main(args: string[]): Promise<number> {
  const [name, seedText, casesText] = args;
  if (!(TARGET_NAMES as readonly string[]).includes(name ?? "")) {
    throw new RangeError(
      `Cannot run fuzz target: the name must be one of ${
        TARGET_NAMES.join(", ")
      }: current value is "${name}"`,
    );
  }
  const seed = Number(seedText);
  const cases = Number(casesText);
  if (!Number.isSafeInteger(cases) || cases < 0) {
    throw new RangeError(
      `Cannot run fuzz target "${name}": the case count must be an integer >= 0: current value is "${casesText}"`,
    );
  }
  const target = await createTarget(name as TargetName);
  // How long the run took is reported for the log; it never decides how many cases run.
  const start = performance.now();
  let i = 0;
  for (; i < cases; i++) {
    report({ type: "case", i });
    const input = target.makeCase(caseRng(name as TargetName, seed, i));
    try {
      await target.check(input, (note) => report({ type: "note", i, ...note }));
    } catch (error) {
      const message = error instanceof FuzzFailure
        ? error.message
        : `the check itself threw ${error instanceof Error ? error.stack : String(error)}`;
      report({ type: "failure", i, message, input: target.describe(input) });
      return 1;
    }
  }
  report({ type: "done", cases: i, ms: Math.round(performance.now() - start) });
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
