/**
 * pass@k of an evaluation with n completions per problem (`deno task eval --n N --k K`).
 *
 * @module
 */

/**
 * The unbiased pass@k estimator of Chen et al. (2021): the probability that at least one of k
 * completions drawn without replacement from n, of which c are correct, is correct,
 * `1 - C(n-c, k) / C(n, k)`, computed as a stable product.
 *
 * @throws {RangeError} When not `0 ≤ c ≤ n` and `1 ≤ k ≤ n`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { passAtK } from "./pass_at_k.ts";
 *
 * assert.equal(passAtK(4, 1, 1), 0.25); // 1 - C(3,1)/C(4,1)
 * assert.equal(passAtK(4, 1, 2), 0.5); // 1 - C(3,2)/C(4,2) = 1 - 3/6
 * ```
 */
export function passAtK(n: number, c: number, k: number): number {
  if (!(Number.isInteger(n) && Number.isInteger(c) && c >= 0 && c <= n)) {
    throw new RangeError(
      `Cannot compute pass@k: need 0 <= c <= n: current value is c=${c}, n=${n}`,
    );
  }
  if (!(Number.isInteger(k) && k >= 1 && k <= n)) {
    throw new RangeError(
      `Cannot compute pass@k: need 1 <= k <= n: current value is k=${k}, n=${n}`,
    );
  }
  if (n - c < k) return 1;
  let miss = 1;
  for (let i = n - c + 1; i <= n; i++) miss *= 1 - k / i;
  return 1 - miss;
}
