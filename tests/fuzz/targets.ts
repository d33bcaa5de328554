/**
 * Fuzz targets: for each, a seeded case generator (random and mutated inputs) and a check of
 * the properties every input must keep. `tests/fuzz/runner.ts` runs them in a child process;
 * `tests/fuzz_test.ts` watches it for hangs.
 *
 * Case `i` of a run with seed `s` is built from `new Rng(s).fork("<target> <i>")` alone, so
 * any case can be rebuilt without the ones before it.
 *
 * @module
 */
import { Rng } from "../../util/rng.ts";
import { ConfigError, configToYaml } from "../../config/load.ts";
import { loadConfig } from "../../training/config.ts";
import { TrainConfigSchema } from "../../algorithms/builtins.ts";
import { parseProblemsJsonl } from "../../data/jsonl_dataset.ts";
import { parseBenchmark } from "../../data/benchmarks.ts";
import { verifyMath } from "../../verifiers/math/verify.ts";
import { answersEquivalent } from "../../verifiers/math/equivalence.ts";
import { extractAnswer, extractGoldAnswer } from "../../verifiers/math/extract.ts";
import { parseLatex } from "../../verifiers/math/latex.ts";
import type { ExtractionRule, MathVerifyOptions } from "../../verifiers/math/types.ts";
import { createControlApp } from "../../server/app.ts";
import { LIVE_FIELDS, type LiveField, RunControl } from "../../server/run_control.ts";

/** A property an input broke. */
export class FuzzFailure extends Error {
  /** `message` says which property failed and how. */
  constructor(message: string) {
    super(message);
    this.name = "FuzzFailure";
  }
}

/** A call slower than {@linkcode SLOW_CALL_MS}, or another observation worth reporting. */
export interface FuzzNote {
  /** What kind: `"slow"` or `"asymmetric"`. */
  kind: string;
  /** What was seen. */
  text: string;
}

/** One fuzz target. */
export interface FuzzTarget<C> {
  /** Builds one case from its own generator. */
  makeCase(rng: Rng): C;
  /** Checks one case; throws {@linkcode FuzzFailure} when a property fails. */
  check(input: C, note: (note: FuzzNote) => void): void | Promise<void>;
  /** A short text that reproduces the case by hand. */
  describe(input: C): string;
}

/** Calls slower than this (in-process) are reported as notes, not failures. */
export const SLOW_CALL_MS = 1000;

/** The names of the targets, in the order the test runs them. */
export const TARGET_NAMES = ["config", "datasets", "verifier", "control"] as const;

/** One of {@linkcode TARGET_NAMES}. */
export type TargetName = typeof TARGET_NAMES[number];

/** The generator of case `index` of a run with `seed`. */
export function caseRng(target: TargetName, seed: number, index: number): Rng {
  return new Rng(seed).fork(`${target} ${index}`);
}

/** Builds a target, reading its corpus from the repository. */
export async function createTarget(name: TargetName): Promise<FuzzTarget<unknown>> {
  switch (name) {
    case "config":
      return await configTarget() as FuzzTarget<unknown>;
    case "datasets":
      return await datasetsTarget() as FuzzTarget<unknown>;
    case "verifier":
      return await verifierTarget() as FuzzTarget<unknown>;
    case "control":
      return controlTarget() as FuzzTarget<unknown>;
    default:
      throw new RangeError(`Unknown fuzz target: current value is "${name as string}"`);
  }
}

const ROOT = new URL("../../", import.meta.url);

function readRepoText(path: string): Promise<string> {
  return Deno.readTextFile(new URL(path, ROOT));
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function cut(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;
}

function timed<T>(note: (note: FuzzNote) => void, label: string, fn: () => T): T {
  const start = performance.now();
  try {
    return fn();
  } finally {
    const ms = performance.now() - start;
    if (ms > SLOW_CALL_MS) note({ kind: "slow", text: `${label} took ${Math.round(ms)} ms` });
  }
}

// --- random text ---

const SPECIAL_CHARS = [
  ":",
  "-",
  "[",
  "]",
  "{",
  "}",
  ",",
  "&",
  "*",
  "!",
  "#",
  "'",
  '"',
  "\n",
  "\t",
  " ",
  "|",
  ">",
  "%",
  "@",
  "`",
  "?",
  "\\",
  "\0",
  "\r",
  "\u2028",
  "\uFEFF",
  "\u0085",
  "é",
  "😀",
  "\uD800",
  "0",
  "9",
  ".",
  "e",
  "^",
  "_",
  "$",
  "=",
];

function randomChar(rng: Rng): string {
  switch (rng.int(0, 3)) {
    case 0:
      return String.fromCharCode(rng.int(32, 126));
    case 1:
      return rng.pick(SPECIAL_CHARS);
    case 2:
      return String.fromCharCode(rng.int(0, 0xffff));
    default:
      return String.fromCodePoint(rng.int(0, 0x10ffff));
  }
}

function randomText(rng: Rng, maxLength: number): string {
  let text = "";
  const length = rng.int(0, maxLength);
  for (let i = 0; i < length; i++) text += randomChar(rng);
  return text;
}

/** Printable ASCII. */
function randomAscii(rng: Rng, maxLength: number): string {
  let text = "";
  for (let i = rng.int(0, maxLength); i > 0; i--) text += String.fromCharCode(rng.int(32, 126));
  return text;
}

/** Random bytes read as UTF-8 (invalid sequences become U+FFFD, as `readTextFile` does). */
function randomBytesText(rng: Rng, maxLength: number): string {
  const bytes = new Uint8Array(rng.int(0, maxLength));
  for (let i = 0; i < bytes.length; i++) bytes[i] = rng.int(0, 255);
  return new TextDecoder().decode(bytes);
}

/** One random edit of `text`; `snippets` are inserted or swapped in. */
function mutateOnce(rng: Rng, text: string, snippets: readonly string[]): string {
  const at = () => rng.int(0, text.length);
  const lines = text.split("\n");
  const lineAt = () => rng.int(0, Math.max(0, lines.length - 1));
  switch (rng.int(0, 11)) {
    case 0: { // replace one character
      const i = at();
      return text.slice(0, i) + randomChar(rng) + text.slice(i + 1);
    }
    case 1: { // insert a snippet
      const i = at();
      return text.slice(0, i) + rng.pick(snippets) + text.slice(i);
    }
    case 2: { // delete a span
      const i = at();
      return text.slice(0, i) + text.slice(i + rng.int(1, 20));
    }
    case 3: { // duplicate a span
      const i = at();
      const j = Math.min(text.length, i + rng.int(1, 40));
      return text.slice(0, j) + text.slice(i, j) + text.slice(j);
    }
    case 4: // delete a line
      lines.splice(lineAt(), 1);
      return lines.join("\n");
    case 5: { // duplicate a line
      const i = lineAt();
      lines.splice(i, 0, lines[i] ?? "");
      return lines.join("\n");
    }
    case 6: { // swap two lines
      const i = lineAt(), j = lineAt();
      [lines[i], lines[j]] = [lines[j] ?? "", lines[i] ?? ""];
      return lines.join("\n");
    }
    case 7: // truncate
      return text.slice(0, at());
    case 8: { // flip one bit of the UTF-8 bytes
      const bytes = new TextEncoder().encode(text);
      if (bytes.length === 0) return text;
      const i = rng.int(0, bytes.length - 1);
      bytes[i] = bytes[i]! ^ (1 << rng.int(0, 7));
      return new TextDecoder().decode(bytes);
    }
    case 9: { // re-indent a line
      const i = lineAt();
      const line = lines[i] ?? "";
      lines[i] = rng.int(0, 1) === 0 ? " ".repeat(rng.int(1, 4)) + line : line.trimStart();
      return lines.join("\n");
    }
    case 10: { // replace a span with a snippet
      const i = at();
      return text.slice(0, i) + rng.pick(snippets) + text.slice(i + rng.int(1, 10));
    }
    default: { // swap two spans
      const i = at(), j = at();
      const [a, b] = i < j ? [i, j] : [j, i];
      const n = Math.min(rng.int(1, 12), b - a);
      return text.slice(0, a) + text.slice(b, b + n) + text.slice(a + n, b) + text.slice(a, a + n) +
        text.slice(b + n);
    }
  }
}

function mutate(rng: Rng, text: string, snippets: readonly string[], maxEdits = 4): string {
  let out = text;
  const edits = rng.int(1, maxEdits);
  for (let i = 0; i < edits; i++) out = mutateOnce(rng, out, snippets);
  return out;
}

const JSON_NUMBERS = [
  "0",
  "-0",
  "1",
  "-1",
  "0.5",
  "1e309",
  "-1e309",
  "1e-400",
  "9007199254740993",
  "123456789012345678901234567890",
  "1.7976931348623157e308",
  "5e-324",
  "3.0",
  "1E2",
];

function randomJson(rng: Rng, depth: number, keys: readonly string[]): unknown {
  const kind = rng.int(0, depth <= 0 ? 4 : 6);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rng.int(0, 1) === 1;
    case 2:
      return JSON.parse(rng.pick(JSON_NUMBERS));
    case 3:
      return rng.int(-1e6, 1e6) / rng.pick([1, 7, 1000]);
    case 4:
      return rng.int(0, 3) === 0 ? "" : randomText(rng, 12);
    case 5:
      return Array.from({ length: rng.int(0, 4) }, () => randomJson(rng, depth - 1, keys));
    default: {
      const object: Record<string, unknown> = {};
      for (let i = rng.int(0, 4); i > 0; i--) {
        const key = rng.int(0, 3) === 0 ? randomText(rng, 6) : rng.pick(keys);
        object[key] = randomJson(rng, depth - 1, keys);
      }
      return object;
    }
  }
}

/** `[[[…]]]` or `{"a":{"a":…}}` nested `depth` deep, as JSON text. */
function deepJson(rng: Rng, depth: number): string {
  return rng.int(0, 1) === 0
    ? "[".repeat(depth) + "]".repeat(depth)
    : '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
}

// --- config loader ---

interface ConfigCase {
  path: string;
  /** YAML text, or undefined to read `path`. */
  text?: string;
  overrides: string[];
}

const WEIRD_YAML_VALUES = [
  "-1",
  "0",
  "-0",
  "1e309",
  "-.inf",
  ".nan",
  "~",
  "null",
  "[]",
  "{}",
  "[1, [2, {a: b}]]",
  '"str"',
  "'x'",
  "*a",
  "&a 3",
  "!!binary aGVsbG8=",
  "!!str 3",
  "!!int x",
  "!!float 1",
  "!custom 3",
  "!!set {a, b}",
  "!!omap [a: 1]",
  "99999999999999999999999",
  "0x1F",
  "0o17",
  "1_000",
  "yes",
  "True",
  "2001-12-14",
  "|\n  block text",
  ">-\n  folded",
  "? complex",
  '"\\u0000"',
  '"\\uD800"',
  "@",
  "`",
  "%",
  "{a: 1, a: 2}",
  "[a, b",
  "x".repeat(5000),
  "- a\n- b",
  "\n  nested: 1",
  "*undefined_alias",
  "<<: *base",
  "'it''s'",
  "3.0e-4",
  "1e-8",
  "10000000000000000",
  "grpo",
  "mgrpo",
  "ppo",
  "rloo",
  "dapo",
  "integer",
  "math",
  "wasm",
];

const YAML_SNIPPETS = [
  ...WEIRD_YAML_VALUES,
  ": ",
  "\n- ",
  "\n  ",
  "\n---\n",
  "\n...\n",
  "%YAML 1.2\n---\n",
  "%TAG ! tag:x,2000:\n",
  "&anchor ",
  "*anchor",
  "!!map ",
  " # comment",
  "\nunknown_section:\n  a: 1\n",
  "\nlearner:\n  lr: 1\n",
  "__proto__: ",
  "constructor: ",
  "\n<<: {a: 1}\n",
];

/** Every `section.field` of a config text, read from its indentation. */
function fieldPaths(text: string): string[] {
  const paths: string[] = [];
  let section = "";
  for (const line of text.split("\n")) {
    const top = /^([a-z_]+):/.exec(line);
    if (top) {
      section = top[1]!;
      paths.push(section);
      continue;
    }
    const field = /^ {2}([a-z_0-9]+):/.exec(line);
    if (field && section !== "") paths.push(`${section}.${field[1]}`);
  }
  return paths;
}

function randomYaml(rng: Rng, depth: number, keys: readonly string[], indent: string): string {
  if (depth <= 0 || rng.int(0, 2) === 0) {
    const value = rng.pick(WEIRD_YAML_VALUES);
    return value.includes("\n") ? value.replaceAll("\n", `\n${indent}`) : value;
  }
  const count = rng.int(1, 4);
  if (rng.int(0, 3) === 0) { // flow style
    const items = Array.from({ length: count }, () => randomYaml(rng, depth - 1, keys, ""));
    return rng.int(0, 1) === 0
      ? `[${items.join(", ")}]`
      : `{${items.map((v) => `${rng.pick(keys)}: ${v}`).join(", ")}}`;
  }
  const inner = indent + "  ";
  const lines = Array.from({ length: count }, () => {
    const value = randomYaml(rng, depth - 1, keys, inner);
    return rng.int(0, 2) === 0 ? `${inner}- ${value}` : `${inner}${rng.pick(keys)}: ${value}`;
  });
  return "\n" + lines.join("\n");
}

async function configTarget(): Promise<FuzzTarget<ConfigCase>> {
  const corpus: string[] = [];
  for await (const entry of Deno.readDir(new URL("configs/", ROOT))) {
    if (entry.isFile && entry.name.endsWith(".yaml")) {
      corpus.push(await readRepoText(`configs/${entry.name}`));
    }
  }
  const main = await readRepoText("configs/tiny-mgrpo.yaml");
  const paths = [...new Set([...fieldPaths(main), ...corpus.flatMap(fieldPaths)])];
  const keys = [...new Set(paths.map((p) => p.split(".").at(-1)!))];
  const valueLine = /^(\s*[A-Za-z_0-9]+:[ \t]+)([^#\n]*?)(\s*(?:#.*)?)$/;

  function swapValues(rng: Rng, text: string): string {
    const lines = text.split("\n");
    const candidates = lines.flatMap((l, i) => valueLine.test(l) ? [i] : []);
    if (candidates.length < 2) return text;
    const a = rng.pick(candidates), b = rng.pick(candidates);
    const ma = valueLine.exec(lines[a]!)!, mb = valueLine.exec(lines[b]!)!;
    lines[a] = ma[1]! + mb[2]! + ma[3]!;
    lines[b] = mb[1]! + ma[2]! + mb[3]!;
    return lines.join("\n");
  }

  function replaceValue(rng: Rng, text: string): string {
    const lines = text.split("\n");
    const candidates = lines.flatMap((l, i) => valueLine.test(l) ? [i] : []);
    if (candidates.length === 0) return text;
    const i = rng.pick(candidates);
    const m = valueLine.exec(lines[i]!)!;
    const value = rng.int(0, 2) === 0
      ? randomYaml(rng, 2, keys, m[1]!.match(/^\s*/)![0])
      : rng.pick(WEIRD_YAML_VALUES.filter((v) => !v.includes("\n")));
    lines[i] = m[1]! + value + m[3]!;
    return lines.join("\n");
  }

  function renameKey(rng: Rng, text: string): string {
    const lines = text.split("\n");
    const candidates = lines.flatMap((l, i) => valueLine.test(l) ? [i] : []);
    if (candidates.length === 0) return text;
    const i = rng.pick(candidates);
    lines[i] = lines[i]!.replace(/^(\s*)[A-Za-z_0-9]+:/, `$1${rng.pick(keys)}:`);
    return lines.join("\n");
  }

  function override(rng: Rng): string {
    switch (rng.int(0, 5)) {
      case 0:
        return randomText(rng, 20);
      case 1:
        return `${rng.pick(paths)}.${rng.pick(keys)}=${rng.pick(WEIRD_YAML_VALUES)}`;
      case 2:
        return `${rng.pick(["", ".", "a..b", " run ", "run.", "ru n"])}=1`;
      default:
        return `${rng.pick(paths)}=${rng.pick(WEIRD_YAML_VALUES)}`;
    }
  }

  return {
    makeCase(rng) {
      const pick = rng.int(0, 99);
      const overrides = rng.int(0, 4) === 0
        ? Array.from({ length: rng.int(1, 3) }, () => override(rng))
        : [];
      if (pick < 2) return { path: "/nonexistent/fuzz/missing.yaml", overrides };
      if (pick < 4) return { path: new URL("configs/", ROOT).pathname, overrides };
      const path = `fuzz/case-${rng.int(0, 9999)}.yaml`;
      let text: string;
      if (pick < 10) {
        text = randomBytesText(rng, 300);
      } else if (pick < 20) {
        text = Array.from({ length: rng.int(1, 5) }, () => {
          const section = rng.int(0, 4) === 0 ? rng.pick(keys) : rng.pick(paths).split(".")[0]!;
          return `${section}:${randomYaml(rng, 3, keys, "")}`;
        }).join("\n");
      } else if (pick < 24) {
        const depth = rng.int(50, 3000);
        text = `${rng.pick(paths).split(".")[0]}: ${deepJson(rng, depth)}`;
      } else {
        text = rng.pick([main, main, rng.pick(corpus)]);
        for (let i = rng.int(1, 4); i > 0; i--) {
          // Mostly edits that keep the YAML well-formed, so the schema and the line lookup
          // see the values; the rest are raw text edits.
          switch (rng.int(0, 7)) {
            case 0:
            case 1:
              text = swapValues(rng, text);
              break;
            case 2:
            case 3:
              text = replaceValue(rng, text);
              break;
            case 4:
              text = renameKey(rng, text);
              break;
            default:
              text = mutate(rng, text, YAML_SNIPPETS, 1);
          }
        }
      }
      return { path, text, overrides };
    },
    check(input, note) {
      let config;
      try {
        config = timed(
          note,
          `loadConfig(${input.path})`,
          () =>
            loadConfig(input.path, {
              ...(input.text === undefined ? {} : { text: input.text }),
              overrides: input.overrides,
            }),
        );
      } catch (error) {
        if (!(error instanceof ConfigError)) {
          throw new FuzzFailure(`loadConfig() threw ${errorText(error)}, not a ConfigError`);
        }
        if (!error.message.startsWith(`Cannot load config "${input.path}": `)) {
          throw new FuzzFailure(`ConfigError does not name the file: ${cut(error.message)}`);
        }
        if (
          /\b(?:line|column) (?:undefined|NaN)\b|current value is undefined…/.test(error.message)
        ) {
          throw new FuzzFailure(`ConfigError has a broken location: ${cut(error.message)}`);
        }
        return;
      }
      const valid = TrainConfigSchema.safeParse(config);
      if (!valid.success) {
        throw new FuzzFailure(`loadConfig() returned an invalid config: ${valid.error.message}`);
      }
      let again;
      try {
        again = loadConfig("roundtrip.yaml", { text: configToYaml(config) });
      } catch (error) {
        throw new FuzzFailure(`configToYaml() output does not load again: ${errorText(error)}`);
      }
      if (JSON.stringify(again) !== JSON.stringify(config)) {
        throw new FuzzFailure("configToYaml() round trip changed the config");
      }
    },
    describe(input) {
      return JSON.stringify(input);
    },
  };
}

// --- dataset readers ---

interface DatasetCase {
  path: string;
  text: string;
}

const DATASET_KEYS = ["id", "problem", "question", "answer", "solution", "source", "type"];

const JSON_SNIPPETS = [
  ...JSON_NUMBERS,
  '"',
  "\\",
  "\\u",
  "\\uD800",
  '""',
  "null",
  "true",
  "[]",
  "{}",
  ",",
  ":",
  '"id":',
  '"answer":',
  '"question":',
  '"problem":',
  "\n",
  "\r\n",
  "\uFEFF",
  "\n\n",
  '{"question":"q","answer":"a"}\n',
];

async function datasetsTarget(): Promise<FuzzTarget<DatasetCase>> {
  const lines: string[] = [];
  for (const file of ["gsm8k_test.jsonl", "math500_test.jsonl"]) {
    lines.push(...(await readRepoText(`data/benchmarks/${file}`)).split("\n").slice(0, 20));
  }
  lines.push(
    '{"question": "What is 2+3?", "answer": "5"}',
    '{"question": "Simplify $\\\\frac{2}{4}$.", "answer": "\\\\frac{1}{2}", "id": "q2"}',
    '{"id": 3, "problem": "Halve 8.", "answer": 4}',
  );
  return {
    makeCase(rng) {
      const path = rng.pick(["train.jsonl", "data/x y.jsonl", "C:\\d\\t.jsonl", "ü/😀.jsonl"]);
      const pick = rng.int(0, 9);
      let text: string;
      if (pick === 0) {
        text = randomBytesText(rng, 400);
      } else if (pick === 1) {
        text = Array.from(
          { length: rng.int(1, 6) },
          () =>
            rng.int(0, 5) === 0
              ? deepJson(rng, rng.int(10, 20000))
              : JSON.stringify(randomJson(rng, 3, DATASET_KEYS)),
        ).join("\n");
      } else {
        const picked = Array.from(
          { length: rng.int(1, 8) },
          () => rng.int(0, 5) === 0 ? "" : rng.pick(lines),
        );
        text = picked.join(rng.int(0, 4) === 0 ? "\r\n" : "\n");
        text = mutate(rng, text, JSON_SNIPPETS, 5);
        if (rng.int(0, 9) === 0) text = "\uFEFF" + text;
      }
      return { path, text };
    },
    check({ path, text }, note) {
      const lineCount = text.split("\n").length;
      // parseProblemsJsonl, skip then stop: stop must fail exactly at skip's first bad line.
      let skipped;
      let noProblems: RangeError | undefined;
      try {
        skipped = timed(
          note,
          "parseProblemsJsonl(skip)",
          () => parseProblemsJsonl(text, path, { onBadLine: "skip" }),
        );
      } catch (error) {
        if (
          !(error instanceof RangeError) ||
          !error.message.startsWith(`Cannot load dataset "${path}": the file has no problems`)
        ) {
          throw new FuzzFailure(`parseProblemsJsonl(skip) threw ${errorText(error)}`);
        }
        noProblems = error;
      }
      if (skipped !== undefined) {
        if (skipped.problems.length === 0) throw new FuzzFailure("no problems, no error");
        for (const p of skipped.problems) {
          if (
            typeof p.id !== "string" || p.id.trim() === "" || typeof p.question !== "string" ||
            p.question.trim() === "" || typeof p.answer !== "string" || p.answer.trim() === ""
          ) {
            throw new FuzzFailure(`a problem is malformed: ${cut(JSON.stringify(p))}`);
          }
        }
        let last = 0;
        for (const bad of skipped.badLines) {
          if (bad.line <= last || bad.line > lineCount) {
            throw new FuzzFailure(`bad line ${bad.line} out of order or range (${lineCount})`);
          }
          last = bad.line;
          if (bad.message !== `${path}:${bad.line}: ${bad.reason}`) {
            throw new FuzzFailure(`bad line message is not path:line: reason: ${bad.message}`);
          }
        }
      }
      try {
        const stopped = parseProblemsJsonl(text, path, { onBadLine: "stop" });
        if (skipped === undefined || skipped.badLines.length > 0) {
          throw new FuzzFailure("stop accepted a file that skip found bad lines in");
        }
        if (JSON.stringify(stopped) !== JSON.stringify(skipped)) {
          throw new FuzzFailure("stop and skip read a clean file differently");
        }
      } catch (error) {
        if (error instanceof FuzzFailure) throw error;
        // With no good line, skip's RangeError quotes the first bad line, where stop stops.
        const first = skipped?.badLines[0]?.message ??
          /, the first (.*)$/s.exec(noProblems?.message ?? "")?.[1];
        const expected = first === undefined ? undefined : `Cannot load dataset: ${first}`;
        const ok = first === undefined
          ? error instanceof RangeError
          : (error instanceof SyntaxError || error instanceof TypeError) &&
            error.message === expected;
        if (!ok) {
          throw new FuzzFailure(
            `parseProblemsJsonl(stop) threw ${errorText(error)}; expected ${
              expected ?? "RangeError"
            }`,
          );
        }
      }
      // parseBenchmark: problems, or an error naming the file (and the line)
      try {
        const problems = timed(note, "parseBenchmark", () => parseBenchmark(text, path));
        for (const p of problems) {
          if (
            typeof p.id !== "string" || typeof p.question !== "string" ||
            typeof p.answer !== "string"
          ) {
            throw new FuzzFailure(
              `parseBenchmark() problem is malformed: ${cut(JSON.stringify(p))}`,
            );
          }
        }
      } catch (error) {
        if (error instanceof FuzzFailure) throw error;
        const prefix = `Cannot load dataset "${path}": `;
        const message = error instanceof Error ? error.message : "";
        const line = Number(/^line (\d+)/.exec(message.slice(prefix.length))?.[1]);
        const ok = !message.startsWith(prefix)
          ? false
          : error instanceof RangeError
          ? message === `${prefix}the file has no problems`
          : (error instanceof SyntaxError || error instanceof TypeError) && line >= 1 &&
            line <= lineCount;
        if (!ok) throw new FuzzFailure(`parseBenchmark() threw ${cut(errorText(error))}`);
      }
    },
    describe(input) {
      return JSON.stringify(input);
    },
  };
}

// --- math verifier ---

interface VerifierCase {
  pred: string;
  gold: string;
  options: MathVerifyOptions;
}

const LATEX_TOKENS = [
  "\\frac{",
  "\\dfrac",
  "\\sqrt{",
  "\\sqrt[3]{",
  "^",
  "^{",
  "_",
  "{",
  "}",
  "(",
  ")",
  "[",
  "]",
  "\\left(",
  "\\right)",
  "\\{",
  "\\}",
  "0",
  "1",
  "2",
  "7",
  "10",
  "3.14",
  "1,000",
  "x",
  "y",
  "n",
  "\\pi",
  "\\infty",
  "e",
  "i",
  ",",
  "\\cup",
  "\\cap",
  "\\boxed{",
  "=",
  "\\le",
  "\\ge",
  "<",
  "\\neq",
  "\\%",
  "%",
  "\\text{",
  "\\mathrm{",
  "cm",
  "\\cdot",
  "\\times",
  "\\div",
  "+",
  "-",
  "\\pm",
  "!",
  "\\sin",
  "\\cos",
  "\\log",
  "\\ln",
  "\\exp",
  "\\begin{pmatrix}",
  "\\end{pmatrix}",
  "&",
  "\\\\",
  "$",
  "\\(",
  "\\)",
  "\\in",
  "\\mathbb{R}",
  "^\\circ",
  "\\degree",
  "\\binom{",
  "\\choose",
  "|",
  "\\,",
  "\\!",
  "'",
  ".",
  " ",
  "\n",
  "</think>",
  "The answer is ",
  "Final Answer: ",
  "#### ",
  "\\overline{",
  "\\vec{",
  "\\hat",
  "\\emptyset",
  "\\varnothing",
  "\\Delta",
  "\\lim_{x\\to 0}",
  "\\sum_{k=1}^{n}",
  "\\int_0^1",
  "dx",
  "\\dots",
  "\\ldots",
  ":",
  ";",
  "\\approx",
  "\\sim",
  "9^{9^{9}}",
  "10^{100}",
  "2^{-1074}",
  "1e308",
];

function randomLatex(rng: Rng, maxTokens: number): string {
  return Array.from({ length: rng.int(1, maxTokens) }, () => rng.pick(LATEX_TOKENS)).join("");
}

/** Inputs meant to be slow or deep: nesting, power towers, huge numbers, long runs. */
function pathologicalLatex(rng: Rng): string {
  const n = rng.int(2, 40);
  switch (rng.int(0, 9)) {
    case 0: {
      const depth = rng.int(100, 3000);
      const [open, close] = rng.pick([
        ["{", "}"],
        ["(", ")"],
        ["\\frac{1}{", "}"],
        [
          "\\sqrt{",
          "}",
        ],
        ["\\left(", "\\right)"],
        ["[", "]"],
        ["-", ""],
        ["\\boxed{", "}"],
      ]);
      return open!.repeat(depth) + "1" + close!.repeat(rng.int(0, 1) === 0 ? depth : depth - 1);
    }
    case 1:
      return Array.from({ length: n }, () => rng.int(2, 99)).join("^");
    case 2:
      return Array.from({ length: n }, () => `${rng.int(2, 99)}^{`).join("") + "2" +
        "}".repeat(n);
    case 3:
      return `${rng.int(10, 9999)}!`.repeat(rng.int(1, 3)) + "!".repeat(rng.int(0, 5));
    case 4:
      return "9".repeat(rng.int(100, 2500)) + rng.pick(["", ".5", "e5", "/7", "!"]);
    case 5:
      return Array.from({ length: n * 10 }, () => rng.pick(["x", "y", "1", "2"])).join(
        rng.pick(["+", "*", "=", ",", "^", "-", "\\cdot "]),
      );
    case 6:
      return `\\frac{${"x+".repeat(n * 20)}1}{${"(x-1)".repeat(n)}}`;
    case 7:
      return "\\begin{pmatrix}" +
        Array.from({ length: n }, () => Array(n).fill("x").join("&")).join("\\\\") +
        "\\end{pmatrix}";
    case 8:
      return rng.int(0, 1) === 0
        ? `\\boxed{${"a".repeat(rng.int(1000, 3000))}}`
        : `(${"x+".repeat(n * 10)}1)^{${rng.int(2, 5000)}}`;
    default:
      return `${rng.int(2, 9)}^{${rng.int(2, 9)}^{${rng.int(2, 9)}^{${rng.int(2, 99)}}}}` +
        rng.pick(["", "-1", "+1", "!", "/3"]);
  }
}

const EXTRACTION_RULES: readonly ExtractionRule[] = [
  "boxed",
  "final_answer_is",
  "answer_is",
  "hash",
  "after_think",
  "last_math",
  "last_number",
];

const VERDICT_REASONS = [
  "equal",
  "not equal",
  "no answer found",
  "no reference answer",
  "answer too long",
  "undecided", // the sampled check could not tell (overflow), never rewarded
];

async function verifierTarget(): Promise<FuzzTarget<VerifierCase>> {
  const answers: string[] = [];
  for (const line of (await readRepoText("tests/fixtures/verifier_cases.jsonl")).split("\n")) {
    if (line.trim() === "") continue;
    const { pred, gold } = JSON.parse(line) as { pred: string; gold: string };
    answers.push(pred, gold);
  }
  for (const line of (await readRepoText("data/benchmarks/math500_test.jsonl")).split("\n")) {
    if (line.trim() !== "") answers.push((JSON.parse(line) as { answer: string }).answer);
  }
  const snippets = [...LATEX_TOKENS, ...answers.slice(0, 50)];

  function text(rng: Rng): string {
    switch (rng.int(0, 9)) {
      case 0:
      case 1:
        return randomLatex(rng, 30);
      case 2:
        return pathologicalLatex(rng);
      case 3:
        return randomText(rng, 40);
      case 4:
        return rng.pick(answers);
      default:
        return mutate(rng, rng.pick(answers), snippets, 3);
    }
  }

  function wrap(rng: Rng, answer: string): string {
    switch (rng.int(0, 6)) {
      case 6: { // a long response around the answer, made of extraction triggers
        const parts = ["\\boxed{", "{", "}", "$", "\\(", "\\]", "The answer is ", "#### ", " "];
        let filler = "";
        for (let i = rng.int(10, 5000); i > 0; i--) filler += rng.pick([...parts, "1", "x", "\n"]);
        return `${filler}${answer}`;
      }
      case 0:
        return `So the answer is $\\boxed{${answer}}$.`;
      case 1:
        return `<think>${randomLatex(rng, 8)}</think>${answer}`;
      case 2:
        return `The final answer is ${answer}`;
      default:
        return answer;
    }
  }

  return {
    makeCase(rng) {
      const gold = text(rng);
      const pred = rng.int(0, 3) === 0 ? mutate(rng, gold, snippets, 2) : text(rng);
      const options: MathVerifyOptions = {};
      if (rng.int(0, 2) === 0) {
        options.extraction = EXTRACTION_RULES.filter(() => rng.int(0, 1) === 1);
      }
      if (rng.int(0, 3) === 0) options.percent = rng.pick(["strip", "strict"] as const);
      if (rng.int(0, 3) === 0) options.relativeTolerance = rng.pick([0, 1e-9, 1e-2, 0.5]);
      return { pred: wrap(rng, pred), gold: rng.int(0, 5) === 0 ? wrap(rng, gold) : gold, options };
    },
    check({ pred, gold, options }, note) {
      const label = (fn: string) => `${fn} on ${cut(JSON.stringify([pred, gold]), 200)}`;
      const call = <T>(fn: string, run: () => T): T => {
        try {
          return timed(note, label(fn), run);
        } catch (error) {
          throw new FuzzFailure(`${fn} threw ${cut(errorText(error))}`);
        }
      };
      const verdict = call("verifyMath()", () => verifyMath(pred, gold, options));
      if (
        typeof verdict.equal !== "boolean" || !VERDICT_REASONS.includes(verdict.reason) ||
        (verdict.equal !== (verdict.reason === "equal")) ||
        (verdict.predAnswer !== null && typeof verdict.predAnswer !== "string") ||
        (verdict.goldAnswer !== null && typeof verdict.goldAnswer !== "string")
      ) {
        throw new FuzzFailure(
          `verifyMath() returned a malformed verdict: ${JSON.stringify(verdict)}`,
        );
      }
      const extraction = options.extraction === undefined ? {} : { extraction: options.extraction };
      const predAnswer = call("extractAnswer()", () => extractAnswer(pred, extraction));
      const goldAnswer = call("extractGoldAnswer()", () => extractGoldAnswer(gold));
      if (predAnswer !== null && typeof predAnswer !== "string") {
        throw new FuzzFailure("extractAnswer() returned neither a string nor null");
      }
      const a = (predAnswer ?? pred).slice(0, 2000);
      const b = (goldAnswer ?? gold).slice(0, 2000);
      const ab = call("answersEquivalent()", () => answersEquivalent(a, b, options));
      const ba = call("answersEquivalent() reversed", () => answersEquivalent(b, a, options));
      if (typeof ab !== "boolean" || typeof ba !== "boolean") {
        throw new FuzzFailure("answersEquivalent() returned a non-boolean");
      }
      if (ab !== ba) {
        note({
          kind: "asymmetric",
          text: `answersEquivalent(a, b) = ${ab} but (b, a) = ${ba}: ${
            cut(JSON.stringify([a, b]), 200)
          }`,
        });
      }
      for (const answer of [a, b]) {
        try {
          timed(note, label("parseLatex()"), () => parseLatex(answer));
        } catch (error) {
          if (!(error instanceof SyntaxError) && !(error instanceof RangeError)) {
            throw new FuzzFailure(`parseLatex() threw ${cut(errorText(error))}`);
          }
        }
      }
    },
    describe(input) {
      return JSON.stringify(input);
    },
  };
}

// --- control API ---

interface ControlRequest {
  method: string;
  path: string;
  headers: [string, string][];
  body?: string;
}

interface ControlCase {
  algorithm: "grpo" | "mgrpo" | "ppo";
  requireTokenForReads: boolean;
  /** Refuse β > 0 as a conflict, as `deno task train` does without a reference policy. */
  refuseBeta: boolean;
  /** Requests, with `"step"` for a recorded training step between them. */
  steps: (ControlRequest | "step" | "stopped")[];
}

const TOKEN = "fuzz-token-0123456789";

const ROUTES = [
  "/",
  "/status",
  "/config",
  "/samples",
  "/history",
  "/metrics",
  "/events",
  "/openapi.json",
  "/pause",
  "/resume",
  "/stop",
  "/checkpoint",
  "/static/uplot/uPlot.iife.min.js",
  "/static/uplot/uPlot.min.css",
];

const METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "FUZZ"];

const VALID_PATCHES: unknown[] = [
  { learner: { lr: 1e-4 } },
  { "learner.lr": 2e-4 },
  { sampler: { temperature: 0.7, top_p: 0.9 } },
  { "sampler.temperature": 1.3 },
  { "mgrpo.guide_phrases": ["Wait, let me check."] },
  { mgrpo: { num_corrections: 2 } },
  { "grpo.beta": 0.04 },
  { grpo: { epsilon: 0.3 } },
  { "eval.every": 5 },
  { run: { log_every: 2 } },
  { "ppo.cliprange": 0.1 },
  { learner: { lr: 1e-4 }, "sampler.top_p": 0.5 },
];

function randomPath(rng: Rng): string {
  const base = rng.pick(ROUTES);
  switch (rng.int(0, 9)) {
    case 0:
      return base + "/";
    case 1:
      return `${base}?${randomText(rng, 10)}`;
    case 2:
      return base.toUpperCase();
    case 3:
      return "/" + base;
    case 4:
      return rng.pick(["/%2e%2e/config", "/config%00", "/status/../config", "/%", "/config;x"]);
    case 5:
      return "/" + (rng.int(0, 3) === 0 ? randomText(rng, 30) : randomAscii(rng, 30));
    case 6:
      return "/" + "a".repeat(rng.int(1000, 20000));
    default:
      return base;
  }
}

/** A PATCH body: a valid patch with one value replaced, a key added, or its text mangled. */
function patchBody(rng: Rng): string {
  const patch = structuredClone(rng.pick(VALID_PATCHES)) as Record<string, unknown>;
  switch (rng.int(0, 7)) {
    case 0:
      return JSON.stringify(patch);
    case 1: { // a weird value for one field
      const [key] = Object.keys(patch);
      const value = patch[key!];
      const weird = randomJson(rng, 2, [...LIVE_FIELDS, "lr", "beta"]);
      if (typeof value === "object" && value !== null && !Array.isArray(value)) {
        const [inner] = Object.keys(value);
        (value as Record<string, unknown>)[inner!] = weird;
      } else {
        patch[key!] = weird;
      }
      return JSON.stringify(patch);
    }
    case 2: { // a number literal JSON.parse turns into Infinity, 0 or a rounded value
      const literal = rng.pick(JSON_NUMBERS);
      return JSON.stringify(patch).replace(/(-?\d+(?:\.\d+)?(?:e-?\d+)?)(?=[,}])/, literal);
    }
    case 3: // an extra key: unknown, prototype-ish, or a live field in both forms
      patch[rng.pick(["__proto__", "constructor", "learner", "learner.lr", "model.init", "x"])] =
        randomJson(rng, 2, ["lr", "__proto__", "init"]);
      return JSON.stringify(patch);
    case 4:
      return mutate(rng, JSON.stringify(patch), JSON_SNIPPETS, 3);
    case 5:
      return deepJson(rng, rng.int(10, 50000));
    case 6:
      return JSON.stringify(randomJson(rng, 3, [...LIVE_FIELDS, "learner", "lr", "sampler"]));
    default:
      return rng.pick([
        "",
        " ",
        "null",
        "[]",
        "{}",
        "1e400",
        '"x"',
        "\uFEFF{}",
        "{",
        "[".repeat(3),
      ]);
  }
}

function randomRequest(rng: Rng): ControlRequest {
  const kind = rng.int(0, 9);
  // Four in ten are PATCH /config, the route that parses a body and changes the run.
  const method = kind < 4 ? "PATCH" : kind < 6 ? rng.pick(METHODS) : rng.pick(["GET", "POST"]);
  const path = kind < 4 ? "/config" : rng.int(0, 3) === 0 ? randomPath(rng) : rng.pick(ROUTES);
  const headers: [string, string][] = [];
  const auth = rng.int(0, 9);
  if (auth < 6) headers.push(["Authorization", `Bearer ${TOKEN}`]);
  else if (auth === 6) headers.push(["Authorization", `bearer \t${TOKEN} `]);
  else if (auth === 7) headers.push(["Authorization", rng.pick(["Bearer", "Basic eA==", ""])]);
  else if (auth === 8) headers.push(["Authorization", `Bearer ${randomAscii(rng, 30)}`]);
  if (rng.int(0, 1) === 0) {
    headers.push([
      "Content-Type",
      rng.pick(["application/json", "text/plain", "application/json; charset=utf-16", "x/y"]),
    ]);
  }
  if (rng.int(0, 5) === 0) {
    // mostly valid header names and values; now and then one the client refuses to send
    const odd = rng.int(0, 9) === 0;
    headers.push([
      odd ? randomText(rng, 8) : `x-${randomAscii(rng, 8).replace(/[^A-Za-z0-9-]/g, "a")}`,
      odd ? randomText(rng, 8) : randomAscii(rng, 40),
    ]);
  }
  let body: string | undefined;
  if (method !== "GET" && method !== "HEAD" && rng.int(0, 4) !== 0) {
    body = rng.int(0, 19) === 0
      ? JSON.stringify(Array.from({ length: 20000 }, (_, i) => ({ i, s: "x".repeat(10) })))
      : rng.int(0, 9) === 0
      ? randomBytesText(rng, 200)
      : patchBody(rng);
  }
  return { method, path, headers, ...(body === undefined ? {} : { body }) };
}

/** The request, or `undefined` when the client side refuses to build it. */
function buildRequest(r: ControlRequest): Request | undefined {
  try {
    return new Request(`http://localhost${r.path}`, {
      method: r.method,
      headers: new Headers(r.headers),
      ...(r.body === undefined ? {} : { body: r.body }),
    });
  } catch {
    return undefined; // not a URL, not a header, not a method: never reaches the server
  }
}

function fieldValue(config: unknown, field: LiveField): unknown {
  const [section, key] = field.split(".") as [string, string];
  return ((config as Record<string, Record<string, unknown>>)[section] ?? {})[key];
}

/** The control API's documented answers; 403, 413 and 415 are the request guard's refusals. */
const ALLOWED_STATUSES = new Set([200, 202, 400, 401, 403, 404, 409, 413, 415]);

/**
 * The body of `response` (an event stream is cancelled, not read). A body that never ends
 * leaves the case without progress, which `tests/fuzz_test.ts` reports as a hang.
 */
async function readBody(response: Response): Promise<string> {
  if (response.headers.get("Content-Type")?.startsWith("text/event-stream")) {
    await response.body?.cancel();
    return "";
  }
  return await response.text();
}

function controlTarget(): FuzzTarget<ControlCase> {
  return {
    makeCase(rng) {
      const steps: ControlCase["steps"] = [];
      for (let i = rng.int(1, 10); i > 0; i--) {
        const roll = rng.int(0, 19);
        steps.push(roll === 0 ? "step" : roll === 1 ? "stopped" : randomRequest(rng));
      }
      return {
        algorithm: rng.pick(["grpo", "mgrpo", "ppo"] as const),
        requireTokenForReads: rng.int(0, 1) === 1,
        refuseBeta: rng.int(0, 1) === 1,
        steps,
      };
    },
    async check(input, note) {
      const control = new RunControl(
        TrainConfigSchema.parse({ algorithm: input.algorithm, run: { steps: 100 } }),
        input.refuseBeta
          ? {
            checkPatch: (next) =>
              next.grpo.beta > 0
                ? "grpo.beta must stay 0: the run has no reference policy"
                : undefined,
          }
          : {},
      );
      const app = createControlApp(control, {
        token: TOKEN,
        requireTokenForReads: input.requireTokenForReads,
      });
      let step = 0;
      for (const [index, item] of input.steps.entries()) {
        if (item === "step") {
          control.recordStep(++step, { "reward/mean": step / 10 });
          continue;
        }
        if (item === "stopped") {
          control.markStopped();
          continue;
        }
        const request = buildRequest(item);
        if (request === undefined) continue;
        const where = `request ${index} (${item.method} ${cut(item.path, 60)})`;
        const before = control.config;
        const beforeJson = JSON.stringify(before);
        const start = performance.now();
        let response: Response;
        try {
          response = await app.request(request);
        } catch (error) {
          throw new FuzzFailure(`${where}: app.request() threw ${errorText(error)}`);
        }
        const text = await readBody(response);
        const ms = performance.now() - start;
        if (ms > SLOW_CALL_MS) note({ kind: "slow", text: `${where} took ${Math.round(ms)} ms` });
        if (response.status >= 500 || !ALLOWED_STATUSES.has(response.status)) {
          throw new FuzzFailure(`${where}: status ${response.status}: ${cut(text)}`);
        }
        if (
          item.method !== "HEAD" &&
          response.headers.get("Content-Type")?.startsWith("application/json")
        ) {
          try {
            JSON.parse(text);
          } catch {
            throw new FuzzFailure(`${where}: the JSON response is not JSON: ${cut(text)}`);
          }
        }
        const after = control.config;
        const changed = after !== before || JSON.stringify(after) !== beforeJson;
        const applied = item.method === "PATCH" && response.status === 200;
        if (!applied) {
          if (changed) {
            throw new FuzzFailure(`${where}: status ${response.status} but the config changed`);
          }
          continue;
        }
        // An applied patch changes exactly the live fields it lists, to valid values.
        const { changes } = JSON.parse(text) as {
          changes: { field: LiveField; old: unknown; new: unknown }[];
        };
        const expected = JSON.parse(beforeJson) as Record<string, Record<string, unknown>>;
        for (const change of changes) {
          if (!control.liveFields.includes(change.field)) {
            throw new FuzzFailure(`${where}: changed "${change.field}", not a live field`);
          }
          if (JSON.stringify(fieldValue(expected, change.field)) !== JSON.stringify(change.old)) {
            throw new FuzzFailure(`${where}: change of "${change.field}" has a wrong old value`);
          }
          const [section, key] = change.field.split(".") as [string, string];
          expected[section]![key] = change.new;
        }
        if (JSON.stringify(after) !== JSON.stringify(expected)) {
          throw new FuzzFailure(`${where}: the config changed beyond the listed changes`);
        }
        const valid = TrainConfigSchema.safeParse(after);
        if (!valid.success) {
          throw new FuzzFailure(`${where}: the patched config is invalid: ${valid.error.message}`);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (control.subscriberCount !== 0) {
        throw new FuzzFailure(
          `${control.subscriberCount} event subscriber(s) left after every response was read or cancelled`,
        );
      }
    },
    describe(input) {
      return JSON.stringify(
        input,
        (_key, value) =>
          typeof value === "string" && value.length > 500
            ? `${value.slice(0, 500)}… (${value.length} chars)`
            : value,
      );
    },
  };
}
