/**
 * Which continuation an MGRPO run's Layer-2 samples take over training, read from the run's
 * `samples.jsonl` (the sample groups it keeps each step, each first answer with its H
 * corrections): per step, how many corrections were kept, the share of each branch of
 * `tools/branches.ts` (`flip`, `count`, `check`, `redo`) and how often each was right. Used for
 * the design choices of docs/self-correction.md ("A warm start that changes its answers").
 *
 *   deno run -A tools/layer2_samples.ts RUN_DIR
 *
 * @module
 */
import { CORRECTION_BRANCHES, type CorrectionBranch, correctionBranch } from "./branches.ts";
import { readSamples, type SampleLine } from "../training/samples_file.ts";

/** One step's Layer-2 samples by branch: [right, total] for each. */
export type BranchTally = Record<CorrectionBranch, [number, number]>;

/** Tallies each line of a run's `samples.jsonl`: its step and its corrections by branch. */
export function tallyLayer2Samples(
  lines: readonly SampleLine[],
): { step: number; tally: BranchTally }[] {
  return lines.map(({ step, groups }) => {
    const tally = Object.fromEntries(
      CORRECTION_BRANCHES.map((b) => [b, [0, 0]]),
    ) as BranchTally;
    for (const group of groups) {
      for (const completion of group.completions) {
        for (const correction of completion.corrections ?? []) {
          const t = tally[correctionBranch(correction.text)];
          t[0] += correction.correct ? 1 : 0;
          t[1] += 1;
        }
      }
    }
    return { step, tally };
  });
}

if (import.meta.main) {
  const dir = Deno.args[0];
  if (dir === undefined || Deno.args.length !== 1) {
    console.error("Usage: deno run -A tools/layer2_samples.ts RUN_DIR");
    Deno.exit(2);
  }
  let lines: SampleLine[];
  try {
    lines = await readSamples(dir);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    Deno.exit(2);
  }
  const pct = (x: number, n: number) => n === 0 ? "—" : `${(100 * x / n).toFixed(0)}%`;
  const branches = CORRECTION_BRANCHES;
  const header = ["step", "corrections", ...branches.flatMap((b) => [`${b} share`, `${b} right`])];
  console.log(header.join("  "));
  for (const { step, tally } of tallyLayer2Samples(lines)) {
    const n = branches.reduce((sum, b) => sum + tally[b][1], 0);
    const cells = [
      String(step),
      String(n),
      ...branches.flatMap((b) => [pct(tally[b][1], n), pct(tally[b][0], tally[b][1])]),
    ];
    console.log(cells.map((c, i) => c.padStart(header[i]!.length)).join("  "));
  }
}
