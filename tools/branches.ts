/**
 * Which continuation a guided correction takes, read from its text (the part after the guide
 * phrase): `flip` ends the thought at once and writes an answer (`</think>6`, what
 * `deno task sft --flip-share` teaches), `count` counts each step out (` 9-6:8,5 7,4 …`, with
 * `--count-form operands` ` 9-6;4:8,5;4 …`, with `letters` ` 9-6;a4:8,5;a4 …`), `check`
 * undoes the answer's equations first (` 3+6=9 ok …`, `--layer2-target check` and
 * `check-count`), and `redo` is anything else, the redone chain (` 9-6=3 …`). Shared by
 * `tools/correction_branches.ts` and `tools/layer2_samples.ts`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { correctionBranch } from "./branches.ts";
 *
 * assert.equal(correctionBranch("</think>6"), "flip");
 * assert.equal(correctionBranch(" 9-6;a4:8,5;a4 7,4;a4</think>7"), "count");
 * assert.equal(correctionBranch(" 2+6=8 no 9-6:8,5 7,4</think>7"), "check");
 * assert.equal(correctionBranch(" 9-6=3 3+4=7</think>7"), "redo");
 * ```
 *
 * @module
 */

/** The continuations of a guided correction. */
export type CorrectionBranch = "flip" | "count" | "check" | "redo";

/** Every {@linkcode CorrectionBranch}, in the order the tools print them. */
export const CORRECTION_BRANCHES: readonly CorrectionBranch[] = ["flip", "count", "check", "redo"];

/** The continuation `text` (a correction, without its prompt) takes. */
export function correctionBranch(text: string): CorrectionBranch {
  if (/^\s*<\/think>/.test(text)) return "flip";
  if (/^\s*\d+[-+/]\d+=-?[\d.]+ (?:ok|no)\b/.test(text)) return "check";
  return /^\s*\d+[-+]\d+(?:;[a-z]?\d+|[+-]\d+)*:/.test(text) ? "count" : "redo";
}
