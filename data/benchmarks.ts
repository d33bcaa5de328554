/**
 * Math benchmark test sets as JSON Lines: the four shipped in `data/benchmarks/` (GSM8K,
 * MATH500, Minerva Math, OlympiadBench; see its README for sources and licenses) or any file
 * with one `{"id", "problem", "answer"}` object a line.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { z } from "zod";

/** The benchmark names {@linkcode loadBenchmark} knows, with their files. */
export const BENCHMARKS: Readonly<Record<string, string>> = {
  gsm8k: "gsm8k_test.jsonl",
  math500: "math500_test.jsonl",
  minerva: "minerva_math_test.jsonl",
  olympiadbench: "olympiadbench_test.jsonl",
};

/** One benchmark problem. */
export interface BenchmarkProblem {
  /** Unique id within the file. */
  id: string;
  /** The problem text shown to the policy. */
  question: string;
  /** The reference answer (LaTeX or plain text). */
  answer: string;
}

const LineSchema = z.object({
  id: z.union([z.string().min(1), z.number()]),
  problem: z.string().min(1),
  answer: z.union([z.string(), z.number()]),
}).loose();

/**
 * Where a benchmark file lives: a name of {@linkcode BENCHMARKS} maps to the shipped copy,
 * anything else is taken as a path.
 */
export function benchmarkPath(nameOrPath: string): string {
  const file = BENCHMARKS[nameOrPath];
  return file === undefined
    ? nameOrPath
    : fileURLToPath(new URL(`./benchmarks/${file}`, import.meta.url));
}

/**
 * Parses JSON Lines benchmark text. Blank lines are skipped.
 *
 * @param text The file's contents.
 * @param path The file's name, for messages.
 * @throws {SyntaxError} When a line is not JSON; the message names the file and line.
 * @throws {TypeError} When a line lacks `id`, `problem` or `answer`, or repeats an id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseBenchmark } from "./benchmarks.ts";
 *
 * const problems = parseBenchmark('{"id": "a", "problem": "1+1?", "answer": 2}\n', "x.jsonl");
 * assert.deepEqual(problems, [{ id: "a", question: "1+1?", answer: "2" }]);
 * ```
 */
export function parseBenchmark(text: string, path: string): BenchmarkProblem[] {
  const problems: BenchmarkProblem[] = [];
  const seen = new Set<string>();
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (cause) {
      throw new SyntaxError(
        `Cannot load dataset "${path}": line ${i + 1} is not JSON: ${(cause as Error).message}`,
        { cause },
      );
    }
    const parsed = LineSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new TypeError(
        `Cannot load dataset "${path}": line ${i + 1}, field "${
          issue.path.join(".")
        }" ${issue.message}`,
      );
    }
    const id = String(parsed.data.id);
    if (seen.has(id)) {
      throw new TypeError(
        `Cannot load dataset "${path}": line ${
          i + 1
        }, field "id" repeats an earlier id: current value is "${id}"`,
      );
    }
    seen.add(id);
    problems.push({ id, question: parsed.data.problem, answer: String(parsed.data.answer) });
  });
  if (problems.length === 0) {
    throw new RangeError(`Cannot load dataset "${path}": the file has no problems`);
  }
  return problems;
}

/**
 * Reads a benchmark by name (`gsm8k`, `math500`, `minerva`, `olympiadbench`) or path.
 *
 * @throws {Deno.errors.NotFound} When the file does not exist (the message lists the names).
 */
export async function loadBenchmark(nameOrPath: string): Promise<BenchmarkProblem[]> {
  const path = benchmarkPath(nameOrPath);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(
        `Cannot load dataset "${nameOrPath}": no such file, and not one of ${
          Object.keys(BENCHMARKS).map((n) => `"${n}"`).join(", ")
        }`,
        { cause },
      );
    }
    throw cause;
  }
  return parseBenchmark(text, nameOrPath);
}
