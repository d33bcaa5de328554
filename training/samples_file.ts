/**
 * `<run dir>/samples.jsonl`: each training step's sample groups, one JSON line per step
 * (`{"step": N, "groups": [...]}`, the groups as `StepStats.samples` and `GET /samples` hold
 * them), appended by the Trainer as the run goes. A resumed run drops the lines after its
 * checkpoint's step, as it does `metrics.jsonl`'s.
 *
 * @example A line written and read back
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSamples, SAMPLES_FILE, sampleLine } from "./samples_file.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const groups = [{
 *   step: 1,
 *   prompt: "1+1=?",
 *   completions: [{ text: "2", reward: 1, advantage: 0, correct: true, reason: "correct" }],
 * }];
 * await Deno.writeTextFile(`${dir}/${SAMPLES_FILE}`, sampleLine(1, groups));
 * assert.deepEqual(await readSamples(dir), [{ step: 1, groups }]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
import { z } from "zod";
import { SampleGroupSchema } from "../actors/messages.ts";
import { formatValue } from "../config/load.ts";
import { InputError } from "../util/errors.ts";
import { truncateMetrics } from "./resume.ts";

/** The file's name inside a run folder. */
export const SAMPLES_FILE = "samples.jsonl";

/** One line of `samples.jsonl`: a training step and its sample groups, one per prompt. */
export const SampleLineSchema = z.object({
  step: z.number().int().min(1),
  groups: z.array(SampleGroupSchema),
});
/** One line of `samples.jsonl`. */
export type SampleLine = z.infer<typeof SampleLineSchema>;

/** The text of one `samples.jsonl` line, its newline included. */
export function sampleLine(step: number, groups: SampleLine["groups"]): string {
  return JSON.stringify({ step, groups }) + "\n";
}

/**
 * Every line of a run's `samples.jsonl`, in file order. A run folder without the file (a run
 * that has not logged a step, or one written before the file existed) has none. A last line
 * without its newline that does not parse is a write in progress (or one cut by a kill) and
 * is left out.
 *
 * @throws {InputError} When `runDir` is not a readable folder, or a line is not JSON or not a
 * sample line (the message names the file, the line and the field).
 */
export async function readSamples(runDir: string): Promise<SampleLine[]> {
  const path = `${runDir}/${SAMPLES_FILE}`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      const dir = await Deno.stat(runDir).catch(() => undefined);
      if (dir?.isDirectory) return [];
    }
    const why = cause instanceof Deno.errors.NotFound
      ? `the run folder "${runDir}" does not exist`
      : (cause as Error).message;
    throw new InputError(`Cannot read samples "${path}": ${why}`, { cause });
  }
  const lines = text.split("\n");
  const tail = lines.pop()!; // "" when the file ends with its newline
  const out: SampleLine[] = [];
  lines.forEach((line, i) => {
    if (line.trim() !== "") out.push(parseSampleLine(line, path, i + 1));
  });
  if (tail.trim() !== "") {
    try {
      out.push(parseSampleLine(tail, path, lines.length + 1));
    } catch {
      // a line still being written, or cut by a kill
    }
  }
  return out;
}

/** Parses line `n` of `path`. */
function parseSampleLine(line: string, path: string, n: number): SampleLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (cause) {
    throw new InputError(
      `Cannot read samples "${path}": line ${n} is not JSON: ${(cause as Error).message}`,
      { cause },
    );
  }
  const parsed = SampleLineSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const at = issue.path.reduce<unknown>(
    (
      v,
      key,
    ) => (v !== null && typeof v === "object"
      ? (v as Record<PropertyKey, unknown>)[key]
      : undefined),
    value,
  );
  throw new InputError(
    `Cannot read samples "${path}": line ${n}, field "${issue.path.join(".")}" ${
      issue.message.replace(/^./, (c) => c.toLowerCase())
    }: current value is ${formatValue(at)}`,
  );
}

/**
 * Drops the lines of steps after `step` from a run's `samples.jsonl` (a resumed run logs them
 * again), and a line cut by a kill, as a resume does for `metrics.jsonl`.
 *
 * @returns How many lines were dropped.
 */
export function truncateSamples(runDir: string, step: number): Promise<number> {
  return truncateMetrics(`${runDir}/${SAMPLES_FILE}`, step);
}
