import assert from "node:assert/strict";
import {
  cClose,
  complex,
  cPow,
  cSqrt,
  gamma,
  MAX_RATIONAL_BITS,
  ratAdd,
  ratFromDecimal,
  rational,
  ratPowInt,
  ratRoot,
  ratToNumber,
} from "../../../verifiers/math/numeric.ts";

Deno.test("rational() reduces to lowest terms with a positive denominator", () => {
  assert.deepEqual(rational(6n, -4n), { n: -3n, d: 2n });
  assert.equal(rational(1n, 0n), null);
  assert.deepEqual(ratAdd({ n: 1n, d: 3n }, { n: 1n, d: 6n }), { n: 1n, d: 2n });
});

Deno.test("ratFromDecimal() reads decimals and exponents exactly", () => {
  assert.deepEqual(ratFromDecimal("1000.99"), { n: 100099n, d: 100n });
  assert.deepEqual(ratFromDecimal(".4"), { n: 2n, d: 5n });
  assert.deepEqual(ratFromDecimal("4.5e3"), { n: 4500n, d: 1n });
  assert.deepEqual(ratFromDecimal("1.24e-8"), { n: 31n, d: 2500000000n });
  assert.equal(ratFromDecimal("1e9999999"), null);
  assert.equal(ratFromDecimal("abc"), null);
});

Deno.test("ratPowInt() and ratRoot() stay exact and refuse huge results", () => {
  assert.deepEqual(ratPowInt({ n: 2n, d: 3n }, -2n), { n: 9n, d: 4n });
  assert.deepEqual(ratPowInt({ n: -1n, d: 1n }, 10n ** 12n + 1n), { n: -1n, d: 1n });
  assert.equal(ratPowInt({ n: 10n, d: 1n }, 10n ** 10n), null);
  assert.equal(ratPowInt({ n: 2n, d: 1n }, BigInt(MAX_RATIONAL_BITS) + 10n), null);
  assert.equal(ratPowInt({ n: 2n, d: 1n }, 1009n)?.n, 2n ** 1009n);
  assert.deepEqual(ratRoot({ n: -27n, d: 8n }, 3), { n: -3n, d: 2n });
  assert.equal(ratRoot({ n: 2n, d: 1n }, 2), null);
  // Parts too large for a double still give the right quotient.
  assert.ok(Math.abs(ratToNumber({ n: 10n ** 400n + 1n, d: 10n ** 399n }) - 10) < 1e-12);
  assert.equal(ratToNumber({ n: 10n ** 400n, d: 1n }), Infinity);
});

Deno.test("cPow() and cSqrt() take principal values", () => {
  assert.ok(cClose(cSqrt(complex(-4)), complex(0, 2), 1e-12));
  assert.ok(cClose(cPow(complex(0, 1), complex(2)), complex(-1), 1e-12));
  assert.ok(cClose(cPow(complex(2), complex(0.5)), complex(Math.SQRT2), 1e-12));
});

Deno.test("gamma() matches factorials", () => {
  assert.ok(Math.abs(gamma(6) - 120) < 1e-9);
  assert.ok(Math.abs(gamma(0.5) - Math.sqrt(Math.PI)) < 1e-12);
  assert.ok(Number.isNaN(gamma(-2)));
});
