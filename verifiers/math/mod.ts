/**
 * The math answer verifier: answer extraction, a LaTeX answer parser and
 * mathematical equivalence.
 *
 * @example
 * ```ts
 * import { verifyMath } from "./mod.ts";
 * const verdict = verifyMath("The answer is $\\boxed{7,425,000}$.", "7425000");
 * if (!verdict.equal) throw new Error(verdict.reason);
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./verify.ts";
export * from "./extract.ts";
export * from "./equivalence.ts";
export * from "./latex.ts";
export * from "./pool.ts";
