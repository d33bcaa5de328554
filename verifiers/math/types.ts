/**
 * Types shared by the math answer verifier, its Worker pool and the CLI.
 *
 * @module
 */

/**
 * Where a final answer may be read from in a response, in the order tried:
 * `boxed` (the last `\boxed{…}`/`\fbox{…}`, with boxes that follow it closely merged
 * into a list, and the same answer boxed again read once), `final_answer_is` ("The
 * final answer is …", "Final Answer: …"), `answer_is` ("The answer is …", "Answer:
 * …"), `hash` (`#### …`), `after_think`
 * (the whole text after the last `</think>`), `last_math` (the last `$…$`,
 * `$$…$$`, `\(…\)` or `\[…\]` span) and `last_number` (the last number anywhere).
 */
export type ExtractionRule =
  | "boxed"
  | "final_answer_is"
  | "answer_is"
  | "hash"
  | "after_think"
  | "last_math"
  | "last_number";

/** Options of the math verifier; every field has a default. */
export interface MathVerifyOptions {
  /**
   * The extraction rules tried on the prediction, first match wins. `last_math`
   * and `last_number` read answers the model never marked as final and are off
   * unless listed; listed next to each other they act as one rule (whichever ends
   * later in the response wins). When no rule matches, the whole response is the
   * answer.
   * @default ["boxed", "final_answer_is", "answer_is", "hash", "after_think"]
   */
  extraction?: readonly ExtractionRule[];
  /**
   * How a percentage compares with a bare number: `"strip"` reads `50\%` as `50`
   * (never as 0.5), `"strict"` keeps the percent sign significant.
   * @default "strip"
   */
  percent?: "strip" | "strict";
  /**
   * Relative tolerance for numeric comparison (Minerva uses about 1e-2 for
   * approximate answers). It applies when either side is written with a decimal
   * point or exponent, or computed in floating point (`\sqrt{2}`, `\pi`); exact
   * rationals written without decimals (`50`, `\frac{1}{3}`) still compare exactly.
   * @default 1e-9
   */
  relativeTolerance?: number;
}

/** The verdict on one (prediction, reference) pair. */
export interface MathVerdict {
  /** Whether the extracted prediction is equivalent to the reference. */
  equal: boolean;
  /** The answer read from the prediction, or `null` when none was found. */
  predAnswer: string | null;
  /** The answer read from the reference, or `null` when none was found. */
  goldAnswer: string | null;
  /**
   * Why: `"equal"`, `"not equal"`, `"undecided"` (the comparison could not tell, as when
   * both sides overflow at every sample point: not rewarded, but no evidence of a wrong
   * answer), `"no answer found"`, `"no reference answer"`, `"answer too long"`,
   * `"timeout"`, `"verifier error: …"`.
   */
  reason: string;
}
