/**
 * `deno task verify`: checks (prediction, reference) pairs with the math verifier.
 *
 * Reads JSON Lines `{"pred": "…", "gold": "…"}` on stdin (a number for `gold` is read as
 * its decimal text) and writes exactly one JSON line per input line, in input order, each
 * with its 1-based `line`:
 * `{"line": 1, "equal": true, "pred_answer": "…", "gold_answer": "…", "reason": "equal"}`.
 * A bad record, a blank line included, gets `{"line": 3, "error": "line 3: …"}` instead, and
 * the run goes on: a consumer can pair answers with inputs by position or by `line`.
 * The exit status is 0 whenever the input could be read, 2 for bad flags.
 *
 * Every pair runs in a {@linkcode VerifierPool} under a wall-clock limit, so a
 * pathological pair gives `"reason": "timeout"` instead of a hang. Input is streamed:
 * at most a few hundred records are held at a time.
 *
 * @module
 */
import { parseArgs } from "node:util";
// Not cli/common.ts: its runMain would load TensorFlow.js (~0.35 s) for nothing.
import { ArgsError, type FlagSpec, formatHelp } from "./args.ts";
import { type Isolation, VerifierPool } from "../verifiers/math/pool.ts";
import type { MathVerdict } from "../verifiers/math/types.ts";

const FLAGS: Readonly<Record<string, FlagSpec>> = {
  "timeout-ms": {
    type: "string",
    placeholder: "MS",
    help: "Wall-clock limit of one verification in milliseconds (default 1000)",
  },
  workers: {
    type: "string",
    placeholder: "N",
    help: "Verifiers running at once (default: min(2, CPU cores))",
  },
  isolation: {
    type: "string",
    placeholder: "KIND",
    help:
      '"process" (default where --allow-run is granted: killed for real on a timeout) or "worker"',
  },
  help: { type: "boolean", short: "h", help: "Print this help and exit" },
};

const HELP = formatHelp(FLAGS, {
  usage: "deno task verify [--timeout-ms MS] [--workers N] [--isolation KIND] < pairs.jsonl",
  summary:
    'Reads JSON Lines {"pred": "...", "gold": "..."} on stdin and writes exactly one JSON line\n' +
    'per input line, in order: {"line", "equal", "pred_answer", "gold_answer", "reason"}, or\n' +
    '{"line", "error"} for a bad one (a blank line too). A pair that runs past the limit gets\n' +
    'reason "timeout". Write integers above 2^53 in "gold" as strings.',
  examples: [
    `echo '{"pred": "\\\\boxed{1,234}", "gold": 1234}' | deno task verify`,
    "deno task verify --timeout-ms 5000 < tests/fixtures/verifier_cases.jsonl",
  ],
});

/** Parsed flags of `deno task verify`. */
export interface VerifyArgs {
  /** `--help` or `-h` was given. */
  readonly help: boolean;
  /** `--timeout-ms`, when given. */
  readonly timeoutMs?: number;
  /** `--workers`, when given. */
  readonly workers?: number;
  /** `--isolation`, when given. */
  readonly isolation?: Isolation;
}

/**
 * Parses the arguments of `deno task verify`.
 *
 * @throws {ArgsError} for an unknown flag, a missing value or a value out of range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseVerifyArgs } from "./verify.ts";
 *
 * assert.deepEqual(parseVerifyArgs(["--timeout-ms", "500", "--workers", "4"]), {
 *   help: false,
 *   timeoutMs: 500,
 *   workers: 4,
 * });
 * assert.throws(() => parseVerifyArgs(["--workers", "0"]), {
 *   message: 'Invalid value for --workers: must be a positive integer: current value is "0"',
 * });
 * ```
 */
export function parseVerifyArgs(argv: readonly string[]): VerifyArgs {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        "timeout-ms": { type: "string" },
        workers: { type: "string" },
        isolation: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (cause) {
    throw new ArgsError(describeParseError(cause), { cause });
  }
  const isolation = values.isolation;
  if (isolation !== undefined && isolation !== "process" && isolation !== "worker") {
    throw new ArgsError(
      `Invalid value for --isolation: must be "process" or "worker": current value is ${
        JSON.stringify(isolation)
      }`,
    );
  }
  const timeoutMs = positiveInteger("--timeout-ms", values["timeout-ms"]);
  const workers = positiveInteger("--workers", values.workers);
  return {
    help: values.help === true,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(workers === undefined ? {} : { workers }),
    ...(isolation === undefined ? {} : { isolation }),
  };
}

/** A parsed input record, or the error line that replaces it. */
export type InputRecord = { pred: string; gold: string } | { error: string };

/**
 * Reads one input line (1-based `lineNumber`) as a record: an object with a string `pred`
 * and a string or finite-number `gold`; anything else gives an error message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseInputLine } from "./verify.ts";
 *
 * assert.deepEqual(parseInputLine('{"pred": "#### 18", "gold": 18}', 1), {
 *   pred: "#### 18",
 *   gold: "18",
 * });
 * assert.deepEqual(parseInputLine('{"pred": "1", "gold": null}', 3), {
 *   error: 'line 3: field "gold" must be a string or a number: current value is null',
 * });
 * ```
 */
export function parseInputLine(line: string, lineNumber: number): InputRecord {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    return { error: `line ${lineNumber}: invalid JSON: ${(e as Error).message}` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return {
      error: `line ${lineNumber}: must be a JSON object with fields "pred" and "gold": ` +
        `current value is ${preview(value)}`,
    };
  }
  const record = value as Record<string, unknown>;
  for (const field of ["pred", "gold"]) {
    if (!(field in record)) return { error: `line ${lineNumber}: field "${field}" is missing` };
  }
  const { pred, gold } = record;
  if (typeof pred !== "string") {
    return {
      error: `line ${lineNumber}: field "pred" must be a string: current value is ${preview(pred)}`,
    };
  }
  if (typeof gold === "number" && Number.isFinite(gold)) return { pred, gold: String(gold) };
  if (typeof gold !== "string") {
    return {
      error: `line ${lineNumber}: field "gold" must be a string or a number: current value is ${
        preview(gold)
      }`,
    };
  }
  return { pred, gold };
}

/** Options of {@linkcode verifyJsonLines}. */
export interface VerifyJsonLinesOptions {
  /**
   * Most records read ahead of the oldest unanswered one.
   * @default 256
   */
  maxPending?: number;
}

/**
 * Streams JSON Lines records from `input` through `pool` and writes one output line per
 * input line to `output`, in input order (see the module documentation for the formats).
 * Returns the number of lines read. Does not close `output`.
 */
export async function verifyJsonLines(
  input: ReadableStream<Uint8Array>,
  output: WritableStream<Uint8Array>,
  pool: VerifierPool,
  options: VerifyJsonLinesOptions = {},
): Promise<number> {
  const maxPending = options.maxPending ?? 256;
  const writer = output.getWriter();
  const encoder = new TextEncoder();
  const pending: Pending[] = [];
  let head = 0; // pending[head] is the oldest line not written yet
  let records = 0;
  let lineNumber = 0;

  async function writeReady(): Promise<void> {
    let out = "";
    for (let entry = pending[head]; entry?.settled === true; entry = pending[++head]) {
      if (entry.error !== undefined) throw entry.error; // the pool could not start a verifier
      out += entry.text + "\n";
    }
    if (head > 1024) {
      pending.splice(0, head);
      head = 0;
    }
    if (out !== "") await writer.write(encoder.encode(out));
  }

  async function onLine(raw: string): Promise<void> {
    lineNumber++;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    records++;
    const record = line.trim() === ""
      ? { error: `line ${lineNumber}: blank line: expected a JSON object with "pred" and "gold"` }
      : parseInputLine(line, lineNumber);
    if ("error" in record) {
      const text = JSON.stringify({ line: lineNumber, error: record.error });
      pending.push({ settled: true, text, done: Promise.resolve() });
    } else {
      const entry: Pending = { settled: false, text: "", done: Promise.resolve() };
      const at = lineNumber;
      entry.done = pool.verify(record.pred, record.gold).then(
        (verdict) => {
          entry.text = formatVerdict(at, verdict);
          entry.settled = true;
        },
        (error: unknown) => {
          entry.error = error ?? new Error("Cannot verify");
          entry.settled = true;
        },
      );
      pending.push(entry);
    }
    while (pending.length - head >= maxPending) {
      await pending[head]!.done;
      await writeReady();
    }
  }

  try {
    let buffer = "";
    for await (const chunk of input.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let start = 0;
      for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n", start)) {
        await onLine(buffer.slice(start, nl));
        start = nl + 1;
      }
      buffer = buffer.slice(start);
      await writeReady();
    }
    if (buffer !== "") await onLine(buffer);
    while (head < pending.length) {
      await pending[head]!.done;
      await writeReady();
    }
  } finally {
    writer.releaseLock();
  }
  return records;
}

/** One input record on its way out: its output line once its verdict is in. */
interface Pending {
  settled: boolean;
  text: string;
  error?: unknown;
  done: Promise<void>;
}

async function main(argv: string[]): Promise<number> {
  const args = parseVerifyArgs(argv);
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const canRun = Deno.permissions.querySync({ name: "run" }).state === "granted";
  const pool = new VerifierPool({
    isolation: args.isolation ?? (canRun ? "process" : "worker"),
    ...(args.timeoutMs === undefined ? {} : { timeoutMs: args.timeoutMs }),
    ...(args.workers === undefined ? {} : { size: args.workers }),
  });
  try {
    await verifyJsonLines(Deno.stdin.readable, Deno.stdout.writable, pool);
  } finally {
    await pool.close();
  }
  return 0;
}

// --- helpers ---

function formatVerdict(line: number, verdict: MathVerdict): string {
  return JSON.stringify({
    line,
    equal: verdict.equal,
    pred_answer: verdict.predAnswer,
    gold_answer: verdict.goldAnswer,
    reason: verdict.reason,
  });
}

/** JSON text of a value, cut to 80 characters. */
function preview(value: unknown): string {
  const text = value === undefined ? "undefined" : JSON.stringify(value);
  return text.length <= 80 ? text : `${text.slice(0, 77)}...`;
}

/** Rewrites a `node:util` parseArgs error in our words. */
function describeParseError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? "";
  const flag = /--[\w-]+/.exec(quoted)?.[0] ?? quoted;
  switch ((error as { code?: string } | null)?.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `Unknown flag ${JSON.stringify(flag)}: known flags are ${
        Object.keys(FLAGS).map((f) => `--${f}`).join(", ")
      }`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `Unexpected argument ${JSON.stringify(quoted)}: pairs are read from stdin`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return message.includes("does not take an argument")
        ? `Flag ${flag} takes no value`
        : `Missing value for ${flag}: expected ${flag} ${FLAGS[flag.slice(2)]?.placeholder ?? ""}`
          .trimEnd();
    default:
      return `Invalid arguments: ${message}`;
  }
}

function positiveInteger(flag: string, value: string | boolean | undefined): number | undefined {
  if (value === undefined || typeof value === "boolean") return undefined;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new ArgsError(
      `Invalid value for ${flag}: must be a positive integer: current value is ${
        JSON.stringify(value)
      }`,
    );
  }
  return n;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    Deno.exit(e instanceof ArgsError ? 2 : 1);
  }
}
