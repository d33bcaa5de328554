/**
 * Training problems from a JSON Lines file: one `{"question", "answer"}` object a line (or
 * `"problem"` instead of `"question"`, as in the benchmark files; an `"id"` is optional).
 * A bad line is reported as `path:line: reason` and either stops the load or is skipped;
 * {@linkcode datasetStream} then draws the problems endlessly, one seeded permutation per
 * epoch, so a run resumes exactly by skipping the problems it already drew.
 *
 * ```
 * {"question": "What is 2+3?", "answer": "5"}
 * {"id": "q2", "problem": "Simplify $\\frac{2}{4}$.", "answer": "\\frac{1}{2}"}
 * ```
 *
 * @module
 */
import { Rng } from "../util/rng.ts";
import { invalidUtf8Lines } from "../util/utf8.ts";
import { escapeControlChars } from "../util/escape.ts";

/** One training problem; the shape the PromptSource turns into a query. */
export interface JsonlProblem {
  /**
   * The line's `id` (a string, or a number written as text), or else `jsonl-` and 8 hex
   * digits derived from the question text (identical questions share an id).
   */
  id: string;
  /** The problem text shown to the policy. */
  question: string;
  /** The reference answer as written (a number is turned into its text). */
  answer: string;
}

/** What to do with a malformed line: throw (`"stop"`) or record it and go on (`"skip"`). */
export type OnBadLine = "skip" | "stop";

/** One malformed line of a dataset file. */
export interface BadLine {
  /** Its 1-based line number. */
  line: number;
  /** What is wrong with it: `field "answer" must not be empty: current value is ""`. */
  reason: string;
  /** `path:line: reason`, ready to print. */
  message: string;
}

/** Options of {@linkcode parseProblemsJsonl} and {@linkcode loadProblemsJsonl}. */
export interface ProblemsJsonlOptions {
  /**
   * A malformed line (not JSON, not an object, a missing, empty or wrongly typed question,
   * answer or id, or an id seen on an earlier line): `"stop"` throws naming `path:line`,
   * `"skip"` records it in `badLines` and leaves it out.
   * @default "stop"
   */
  onBadLine?: OnBadLine;
  /**
   * The field holding the question. Left out, `"question"` is read, or `"problem"` when a
   * line has no `"question"`.
   * @default undefined
   */
  questionField?: string;
  /**
   * The field holding the reference answer (a string or a finite number).
   * @default "answer"
   */
  answerField?: string;
  /**
   * 1-based lines whose bytes were not UTF-8 (the file reader finds them): each is a bad line.
   * @default []
   */
  invalidUtf8Lines?: readonly number[];
  /**
   * The answer field holds a worked solution ending in this marker and the answer (GSM8K's
   * `"... #### 72"`): the answer is the text after the last marker, trimmed, with thousands
   * separators taken out (`1,234` → `1234`). A record without the marker is a bad one.
   * @default undefined (the field is the answer as is)
   */
  answerMarker?: string;
}

/** What {@linkcode parseProblemsJsonl} read: the good problems, in file order, and the bad lines. */
export interface ProblemsJsonl {
  /** Every good line's problem, in file order (never empty). */
  problems: JsonlProblem[];
  /** Every malformed line, in file order (empty unless `onBadLine` is `"skip"`). */
  badLines: BadLine[];
}

/** Longest quoted current value shown in a message before it is cut. */
const MAX_VALUE_CHARS = 60;

/** Question fields tried, in order, when `questionField` is not given. */
const DEFAULT_QUESTION_FIELDS = ["question", "problem"] as const;

/**
 * Parses JSON Lines training problems. Blank lines are ignored; a UTF-8 byte order mark at
 * the start and `\r\n` line ends are accepted.
 *
 * @param text The file's contents.
 * @param path The file's name, for messages.
 * @throws {SyntaxError} With `onBadLine: "stop"`, when a line is not JSON:
 * `Cannot load dataset: data/train.jsonl:3: not JSON: …`.
 * @throws {TypeError} With `onBadLine: "stop"`, when a line is not an object or a field is
 * missing, empty or of the wrong type, or an id repeats (same message form).
 * @throws {RangeError} When no line holds a problem (an empty file, or every line bad), or
 * an option is invalid.
 *
 * @example Skipping bad lines
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseProblemsJsonl } from "./jsonl_dataset.ts";
 *
 * const text = [
 *   '{"question": "What is 2+3?", "answer": "5"}',
 *   "",
 *   '{"question": "What is 1+1?"}',
 *   '{"id": 7, "problem": "Halve 8.", "answer": 4}',
 * ].join("\n");
 * const { problems, badLines } = parseProblemsJsonl(text, "train.jsonl", { onBadLine: "skip" });
 * assert.deepEqual(problems.map((p) => [p.question, p.answer]), [
 *   ["What is 2+3?", "5"],
 *   ["Halve 8.", "4"],
 * ]);
 * assert.equal(problems[1]!.id, "7");
 * assert.deepEqual(badLines.map((b) => b.message), [
 *   'train.jsonl:3: field "answer" is required',
 * ]);
 * assert.throws(() => parseProblemsJsonl(text, "train.jsonl", { onBadLine: "stop" }), {
 *   name: "TypeError",
 *   message: 'Cannot load dataset: train.jsonl:3: field "answer" is required',
 * });
 * ```
 */
export function parseProblemsJsonl(
  text: string,
  path: string,
  options: ProblemsJsonlOptions = {},
): ProblemsJsonl {
  const onBadLine = onBadLineOption(path, options);
  const fields = recordFields(path, options);
  const invalidUtf8 = new Set(options.invalidUtf8Lines ?? []);
  const lines = (text.startsWith("\uFEFF") ? text.slice(1) : text).split("\n");
  const entries: { at: number; result: LineResult }[] = [];
  for (const [index, raw] of lines.entries()) {
    const line = index + 1;
    if (raw.trim() === "" && !invalidUtf8.has(line)) continue;
    entries.push({
      at: line,
      result: invalidUtf8.has(line)
        ? { reason: "not valid UTF-8 text (save the file as UTF-8)", kind: "syntax" }
        : parseLine(raw, fields),
    });
  }
  return collectProblems(entries, path, onBadLine, "lines");
}

/**
 * Problems from records already read from a table (Parquet, Arrow): each record an object with
 * the question and answer fields, read and checked as a JSONL line is. A bad record is named
 * `path:row N` (1-based).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { problemsFromRecords } from "./jsonl_dataset.ts";
 *
 * const { problems } = problemsFromRecords(
 *   [{ question: "Halve 8.", answer: "8/2 = <<8/2=4>>4\n#### 4" }],
 *   "train.parquet",
 *   { answerMarker: "####" },
 * );
 * assert.deepEqual(problems.map((p) => p.answer), ["4"]);
 * ```
 */
export function problemsFromRecords(
  records: readonly unknown[],
  path: string,
  options: ProblemsJsonlOptions = {},
): ProblemsJsonl {
  const onBadLine = onBadLineOption(path, options);
  const fields = recordFields(path, options);
  const entries = records.map((record, i) => ({ at: i + 1, result: parseRecord(record, fields) }));
  return collectProblems(entries, path, onBadLine, "rows");
}

/** `options.onBadLine`, checked (`"stop"` when absent). */
function onBadLineOption(path: string, options: ProblemsJsonlOptions): OnBadLine {
  const onBadLine = options.onBadLine ?? "stop";
  if (onBadLine !== "skip" && onBadLine !== "stop") {
    throw new RangeError(
      `Cannot load dataset "${path}": option "onBadLine" must be "skip" or "stop": current value is ${
        formatValue(onBadLine)
      }`,
    );
  }
  return onBadLine;
}

/** The fields a record is read with. */
interface RecordFields {
  readonly questionFields: readonly string[];
  readonly answerField: string;
  readonly answerMarker: string | undefined;
}

function recordFields(path: string, options: ProblemsJsonlOptions): RecordFields {
  const questionFields = fieldOption(path, "questionField", options.questionField) ??
    DEFAULT_QUESTION_FIELDS;
  const answerField = fieldOption(path, "answerField", options.answerField)?.[0] ?? "answer";
  const answerMarker = fieldOption(path, "answerMarker", options.answerMarker)?.[0];
  return { questionFields, answerField, answerMarker };
}

/** The good problems and the bad entries of a file, or the first bad one thrown (`stop`). */
function collectProblems(
  entries: readonly { at: number; result: LineResult }[],
  path: string,
  onBadLine: OnBadLine,
  unit: "lines" | "rows",
): ProblemsJsonl {
  const problems: JsonlProblem[] = [];
  const badLines: BadLine[] = [];
  const idLines = new Map<string, number>();
  const where = (at: number) => unit === "lines" ? `${path}:${at}` : `${path}:row ${at}`;
  for (const { at, result } of entries) {
    let reason: string;
    let kind: "syntax" | "type";
    if ("problem" in result) {
      const { problem } = result;
      const earlier = idLines.get(problem.id);
      if (!result.explicitId || earlier === undefined) {
        if (result.explicitId) idLines.set(problem.id, at);
        problems.push(problem);
        continue;
      }
      reason = `field "id" repeats the id of ${unit === "lines" ? "line" : "row"} ${earlier}: ` +
        `current value is ${formatValue(problem.id)}`;
      kind = "type";
    } else {
      ({ reason, kind } = result);
    }
    // The reason may quote the line (a JSON syntax error does): no raw control characters.
    reason = escapeControlChars(reason);
    const bad: BadLine = { line: at, reason, message: `${where(at)}: ${reason}` };
    if (onBadLine === "stop") {
      const message = `Cannot load dataset: ${bad.message}`;
      throw kind === "syntax" ? new SyntaxError(message) : new TypeError(message);
    }
    badLines.push(bad);
  }
  if (problems.length === 0) {
    const first = badLines[0];
    const noun = unit === "lines" ? "line" : "row";
    throw new RangeError(
      first === undefined
        ? `Cannot load dataset "${path}": the file has no problems: current value is 0 ${
          unit === "lines" ? "non-blank lines" : "rows"
        }`
        : `Cannot load dataset "${path}": the file has no problems: current value is ${badLines.length} bad ${
          badLines.length === 1 ? noun : `${noun}s`
        } and no good one, the first ${first.message}`,
    );
  }
  return { problems, badLines };
}

/**
 * Reads and parses a JSON Lines training file (see {@linkcode parseProblemsJsonl}).
 *
 * @throws {Deno.errors.NotFound} When the file does not exist:
 * `Cannot load dataset "data/train.jsonl": file not found`.
 * @throws {Error} When the path is a folder or cannot be read (the message names it), and
 * whatever {@linkcode parseProblemsJsonl} throws.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadProblemsJsonl } from "./jsonl_dataset.ts";
 *
 * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
 * await Deno.writeTextFile(path, '{"question": "2+2?", "answer": 4}\n');
 * const { problems } = await loadProblemsJsonl(path);
 * assert.deepEqual(problems[0]!.answer, "4");
 * await Deno.remove(path);
 * await assert.rejects(() => loadProblemsJsonl(path), Deno.errors.NotFound);
 * ```
 */
export async function loadProblemsJsonl(
  path: string,
  options: ProblemsJsonlOptions = {},
): Promise<ProblemsJsonl> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`Cannot load dataset "${path}": file not found`, { cause });
    }
    const why = cause instanceof Deno.errors.IsADirectory
      ? "the path is a folder, not a file"
      : `cannot read the file: ${cause instanceof Error ? cause.message : String(cause)}`;
    throw new Error(`Cannot load dataset "${path}": ${why}`, { cause });
  }
  // A line that is not UTF-8 is a bad line (stop or skip), not text with U+FFFD in it.
  const invalidUtf8 = invalidUtf8Lines(bytes);
  return parseProblemsJsonl(new TextDecoder().decode(bytes), path, {
    ...options,
    ...(invalidUtf8.length ? { invalidUtf8Lines: invalidUtf8 } : {}),
  });
}

/** Options of {@linkcode datasetStream}. */
export interface DatasetStreamOptions {
  /**
   * Items already drawn (a resumed run's data cursor): the stream starts where an
   * uninterrupted one would be after `start` items, without drawing them.
   * @default 0
   */
  start?: number;
}

/**
 * The order of epoch `epoch` of a dataset of `count` items for `seed`: a permutation of
 * `0 … count-1` from a Fisher–Yates shuffle ({@linkcode Rng.shuffle}) with
 * `new Rng(seed).fork("dataset epoch <epoch>")`. It depends only on its three arguments.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { epochOrder } from "./jsonl_dataset.ts";
 *
 * const order = epochOrder(5, 1, 0);
 * assert.deepEqual([...order].sort(), [0, 1, 2, 3, 4]);
 * assert.deepEqual(epochOrder(5, 1, 0), order);
 * ```
 */
export function epochOrder(count: number, seed: number, epoch: number): number[] {
  for (const [name, value] of [["count", count], ["epoch", epoch]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(
        `Cannot order dataset epoch: ${name} must be an integer >= 0: current value is ${value}`,
      );
    }
  }
  const order = Array.from({ length: count }, (_, i) => i);
  return new Rng(seed).fork(`dataset epoch ${epoch}`).shuffle(order);
}

/**
 * An endless, deterministic stream over `problems`: epoch after epoch, each a seeded
 * permutation ({@linkcode epochOrder}), so every epoch holds every problem exactly once.
 * Calling `next()` k times always gives the first k items of any longer take; a run that
 * drew k items resumes with `{ start: k }`, or by calling `next()` k times on a fresh
 * stream. The problems are copied: changing the array later does not change the stream.
 *
 * @throws {RangeError} When `problems` is empty, `seed` is not a safe integer or `start`
 * is not an integer >= 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { datasetStream } from "./jsonl_dataset.ts";
 *
 * const take = (stream: Iterator<string>, k: number) =>
 *   Array.from({ length: k }, () => stream.next().value as string);
 * const first = take(datasetStream(["a", "b", "c"], 7), 6);
 * assert.deepEqual([...first.slice(0, 3)].sort(), ["a", "b", "c"]); // epoch 0
 * assert.deepEqual([...first.slice(3)].sort(), ["a", "b", "c"]); // epoch 1
 * assert.deepEqual(take(datasetStream(["a", "b", "c"], 7, { start: 4 }), 2), first.slice(4));
 * ```
 */
export function datasetStream<T>(
  problems: readonly T[],
  seed: number,
  options: DatasetStreamOptions = {},
): Generator<T, never, unknown> {
  if (problems.length === 0) {
    throw new RangeError(
      "Cannot stream a dataset: it must hold at least one problem: current length is 0",
    );
  }
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(
      `Cannot stream a dataset: seed must be a safe integer: current value is ${seed}`,
    );
  }
  const start = options.start ?? 0;
  if (!Number.isSafeInteger(start) || start < 0) {
    throw new RangeError(
      `Cannot stream a dataset: start must be an integer >= 0: current value is ${start}`,
    );
  }
  return streamEpochs([...problems], seed, start);
}

function* streamEpochs<T>(items: T[], seed: number, start: number): Generator<T, never, unknown> {
  let epoch = Math.floor(start / items.length);
  let offset = start % items.length;
  while (true) {
    const order = epochOrder(items.length, seed, epoch);
    for (let i = offset; i < order.length; i++) yield items[order[i]!]!;
    offset = 0;
    epoch++;
  }
}

// --- lines ---

type LineResult =
  | { problem: JsonlProblem; explicitId: boolean }
  | { reason: string; kind: "syntax" | "type" };

function parseLine(raw: string, fields: RecordFields): LineResult {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (cause) {
    return { reason: `not JSON: ${(cause as Error).message}`, kind: "syntax" };
  }
  return parseRecord(value, fields, "the line must be a JSON object");
}

function parseRecord(
  value: unknown,
  fields: RecordFields,
  notObject = "the record must be an object",
): LineResult {
  const { questionFields, answerField, answerMarker } = fields;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { reason: `${notObject}: current value is ${formatValue(value)}`, kind: "type" };
  }
  const record = value as Record<string, unknown>;
  const bad = (reason: string): LineResult => ({ reason, kind: "type" });

  const questionField = questionFields.find((f) => Object.hasOwn(record, f)) ??
    questionFields[0]!;
  const question = Object.hasOwn(record, questionField) ? record[questionField] : undefined;
  const questionName = questionFields.length === 1
    ? `field "${questionField}"`
    : `field ${questionFields.map((f) => `"${f}"`).join(" or ")}`;
  if (question === undefined) return bad(`${questionName} is required`);
  if (typeof question !== "string") {
    return bad(
      `field "${questionField}" must be a string: current value is ${formatValue(question)}`,
    );
  }
  if (question.trim() === "") {
    return bad(
      `field "${questionField}" must not be empty: current value is ${formatValue(question)}`,
    );
  }

  const answer = Object.hasOwn(record, answerField) ? record[answerField] : undefined;
  if (answer === undefined) return bad(`field "${answerField}" is required`);
  const answerText = textOf(answer);
  if (answerText === undefined) {
    return bad(
      `field "${answerField}" must be a string or a finite number: current value is ${
        formatValue(answer)
      }`,
    );
  }
  if (answerText.trim() === "") {
    return bad(`field "${answerField}" must not be empty: current value is ${formatValue(answer)}`);
  }
  let answerValue = answerText;
  if (answerMarker !== undefined) {
    const at = answerText.lastIndexOf(answerMarker);
    if (at < 0) {
      return bad(
        `field "${answerField}" has no "${answerMarker}" before its answer (task.answer_marker): current value is ${
          formatValue(answerText)
        }`,
      );
    }
    answerValue = answerText.slice(at + answerMarker.length).trim().replace(
      /(\d),(?=\d{3}\b)/g,
      "$1",
    );
    if (answerValue === "") {
      return bad(
        `field "${answerField}" has nothing after "${answerMarker}": current value is ${
          formatValue(answerText)
        }`,
      );
    }
  }

  const rawId = Object.hasOwn(record, "id") ? record.id : undefined;
  if (rawId === undefined) {
    return {
      problem: { id: defaultId(question), question, answer: answerValue },
      explicitId: false,
    };
  }
  const id = textOf(rawId);
  if (id === undefined || id.trim() === "") {
    return bad(
      `field "id" must be a non-empty string or a finite number: current value is ${
        formatValue(rawId)
      }`,
    );
  }
  return { problem: { id, question, answer: answerValue }, explicitId: true };
}

/** A string as is, a finite number as text; anything else `undefined`. */
function textOf(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return undefined;
}

function fieldOption(path: string, name: string, value: unknown): [string] | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") {
    throw new RangeError(
      `Cannot load dataset "${path}": option "${name}" must be a non-empty string: current value is ${
        formatValue(value)
      }`,
    );
  }
  return [value];
}

/** `jsonl-` and the FNV-1a hash of the question, 8 hex digits. */
function defaultId(question: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < question.length; i++) {
    hash ^= question.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return `jsonl-${(hash >>> 0).toString(16).padStart(8, "0")}`;
}

/** Quotes strings, writes numbers as JS does, cuts long values. */
function formatValue(value: unknown): string {
  let text: string;
  if (typeof value === "number" || value === undefined) {
    text = String(value);
  } else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = Array.isArray(value) ? "[…]" : "{…}"; // nested too deep to write out
    }
  }
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS)}…` : text;
}
