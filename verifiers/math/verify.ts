/**
 * The math answer verifier: reads the final answer of a response
 * ({@linkcode extractAnswer}) and of the reference ({@linkcode extractGoldAnswer}),
 * and compares them mathematically ({@linkcode compareAnswers}).
 *
 * It is synchronous, pure and bounded: answers longer than
 * {@linkcode MAX_ANSWER_LENGTH} characters are rejected without parsing, parsing
 * stops at a fixed nesting depth, huge powers are never computed exactly, and a
 * comparison has a fixed step budget. Model text is never evaluated as code.
 *
 * @module
 */
import type { MathVerdict, MathVerifyOptions } from "./types.ts";
import { extractAnswer, extractGoldAnswer } from "./extract.ts";
import { compareAnswers } from "./equivalence.ts";

/** The longest extracted answer (in characters) that is parsed; longer ones are not equal. */
export const MAX_ANSWER_LENGTH = 2000;

/**
 * Verifies a prediction against a reference answer.
 *
 * Reasons: `"equal"`, `"not equal"`, `"undecided"` (the comparison could not tell, as when
 * both sides overflow at every sample point; never equal), `"no answer found"` (empty
 * prediction), `"no reference answer"` (empty reference), `"answer too long"`.
 *
 * @example
 * ```ts
 * import { verifyMath } from "./verify.ts";
 * const verdict = verifyMath("... so the answer is $\\boxed{\\dfrac{1}{2}}$.", "0.5");
 * if (!verdict.equal || verdict.predAnswer !== "\\dfrac{1}{2}") throw new Error("expected equal");
 * if (verifyMath("\\boxed{0.5}", "50\\%").equal) throw new Error("0.5 is not 50%");
 * ```
 */
export function verifyMath(
  pred: string,
  gold: string,
  options: MathVerifyOptions = {},
): MathVerdict {
  const goldAnswer = extractGoldAnswer(gold);
  const predAnswer = extractAnswer(
    pred,
    options.extraction === undefined ? {} : { extraction: options.extraction },
  );
  if (goldAnswer === null) {
    return { equal: false, predAnswer, goldAnswer, reason: "no reference answer" };
  }
  if (predAnswer === null) {
    return { equal: false, predAnswer, goldAnswer, reason: "no answer found" };
  }
  if (predAnswer.length > MAX_ANSWER_LENGTH || goldAnswer.length > MAX_ANSWER_LENGTH) {
    return {
      equal: false,
      predAnswer: predAnswer.slice(0, MAX_ANSWER_LENGTH),
      goldAnswer: goldAnswer.slice(0, MAX_ANSWER_LENGTH),
      reason: "answer too long",
    };
  }
  const comparison = compareAnswers(predAnswer, goldAnswer, {
    ...(options.percent === undefined ? {} : { percent: options.percent }),
    ...(options.relativeTolerance === undefined
      ? {}
      : { relativeTolerance: options.relativeTolerance }),
  });
  return { equal: comparison === "equal", predAnswer, goldAnswer, reason: comparison };
}
