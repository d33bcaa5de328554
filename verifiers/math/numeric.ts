/**
 * Exact rationals (BigInt numerator and denominator) and complex floats: the two
 * number systems the math verifier computes in. Rationals decide exact answers
 * (`\frac{1}{2}` vs `0.5`, `7,425,000` vs `7425000`); complex floats evaluate
 * everything else (`\sqrt{2}`, `\pi`, `3+4i`, expressions at sample points).
 *
 * Every operation is bounded: rational results whose numerator or denominator
 * would exceed {@linkcode MAX_RATIONAL_BITS} bits return `null` so that callers
 * fall back to floats, and nothing here loops on the size of a value.
 *
 * @module
 */

/** An exact rational number `n / d` in lowest terms with `d > 0`. */
export interface Rational {
  /** The numerator. */
  readonly n: bigint;
  /** The denominator, always positive. */
  readonly d: bigint;
}

/** The largest numerator or denominator, in bits, that exact arithmetic keeps. */
export const MAX_RATIONAL_BITS = 20_000;

function bitLength(x: bigint): number {
  if (x < 0n) x = -x;
  if (x === 0n) return 0;
  const hex = x.toString(16);
  return (hex.length - 1) * 4 + (32 - Math.clz32(parseInt(hex[0] ?? "0", 16)));
}

function gcd(a: bigint, b: bigint): bigint {
  if (a < 0n) a = -a;
  if (b < 0n) b = -b;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/**
 * Builds the rational `n / d` in lowest terms, or `null` when `d` is zero or the
 * result is larger than {@linkcode MAX_RATIONAL_BITS}.
 */
export function rational(n: bigint, d: bigint = 1n): Rational | null {
  if (d === 0n) return null;
  if (d < 0n) {
    n = -n;
    d = -d;
  }
  const g = gcd(n, d);
  if (g > 1n) {
    n /= g;
    d /= g;
  }
  if (bitLength(n) > MAX_RATIONAL_BITS || bitLength(d) > MAX_RATIONAL_BITS) return null;
  return { n, d };
}

/** The sum of two rationals, or `null` when too large. */
export function ratAdd(a: Rational, b: Rational): Rational | null {
  return rational(a.n * b.d + b.n * a.d, a.d * b.d);
}

/** The product of two rationals, or `null` when too large. */
export function ratMul(a: Rational, b: Rational): Rational | null {
  return rational(a.n * b.n, a.d * b.d);
}

/** The quotient `a / b`, or `null` when `b` is zero or the result too large. */
export function ratDiv(a: Rational, b: Rational): Rational | null {
  return rational(a.n * b.d, a.d * b.n);
}

/** The negation of a rational. */
export function ratNeg(a: Rational): Rational {
  return { n: -a.n, d: a.d };
}

/** Whether two rationals are equal. */
export function ratEqual(a: Rational, b: Rational): boolean {
  return a.n === b.n && a.d === b.d;
}

/** Whether a rational is an integer. */
export function ratIsInteger(a: Rational): boolean {
  return a.d === 1n;
}

/**
 * `a` raised to the integer power `k`, or `null` when `a` is zero and `k` negative,
 * or when the result would exceed {@linkcode MAX_RATIONAL_BITS} (checked before computing).
 */
export function ratPowInt(a: Rational, k: bigint): Rational | null {
  if (k === 0n) return { n: 1n, d: 1n };
  if (k < 0n) {
    if (a.n === 0n) return null;
    return ratPowInt({ n: a.d, d: a.n }, -k);
  }
  if (a.n === 0n) return a;
  const bits = Math.max(bitLength(a.n), bitLength(a.d));
  if (bits <= 1) return rational(a.n < 0n && k % 2n === 1n ? -1n : 1n, 1n);
  if (k > 100_000n || Number(k) * (bits - 1) > MAX_RATIONAL_BITS) return null;
  let n = a.n ** k;
  let d = a.d ** k;
  if (d < 0n) {
    n = -n;
    d = -d;
  }
  return rational(n, d);
}

/** The exact `q`-th root of a rational when it is rational (`\sqrt[3]{8}` is 2), else `null`. */
export function ratRoot(a: Rational, q: number): Rational | null {
  if (!Number.isInteger(q) || q < 1 || q > 64) return null;
  if (q === 1) return a;
  const negative = a.n < 0n;
  if (negative && q % 2 === 0) return null;
  const n = intRoot(negative ? -a.n : a.n, q);
  const d = intRoot(a.d, q);
  if (n === null || d === null) return null;
  return rational(negative ? -n : n, d);
}

/** The exact integer `q`-th root of `x >= 0`, or `null` when `x` is not a perfect power. */
function intRoot(x: bigint, q: number): bigint | null {
  if (x < 2n) return x;
  const estimate = Math.round(Math.exp(Math.log(Number(x)) / q));
  if (!Number.isFinite(estimate)) return null;
  const bq = BigInt(q);
  for (const delta of [0, -1, 1]) {
    const r = BigInt(Math.max(0, estimate + delta));
    if (r ** bq === x) return r;
  }
  return null;
}

/** The nearest float to a rational (may be `±Infinity` or 0 for huge or tiny values). */
export function ratToNumber(a: Rational): number {
  const direct = Number(a.n) / Number(a.d);
  if (Number.isFinite(direct) && direct !== 0) return direct;
  if (a.n === 0n) return 0;
  // Scale both parts down to keep precision when they overflow a double.
  const shift = BigInt(Math.max(0, Math.max(bitLength(a.n), bitLength(a.d)) - 1000));
  const scaled = Number(a.n >> shift) / Number(a.d >> shift);
  if (Number.isFinite(scaled) && scaled !== 0) return scaled;
  const log10 = ratLog10(a);
  return (a.n < 0n ? -1 : 1) * 10 ** log10;
}

function ratLog10(a: Rational): number {
  const log = (x: bigint): number => {
    if (x < 0n) x = -x;
    const s = x.toString();
    return Math.log10(Number(`0.${s.slice(0, 17)}`)) + s.length;
  };
  return log(a.n) - log(a.d);
}

/** Parses a decimal literal such as `"1000.99"`, `".4"`, `"4.5e33"` to an exact rational. */
export function ratFromDecimal(text: string): Rational | null {
  const match = /^(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (match === null) return null;
  const whole = match[1] ?? "";
  const fraction = match[2] ?? "";
  if (whole === "" && fraction === "") return null;
  const exponentText = match[3] ?? "0";
  if (exponentText.replace(/^[+-]/, "").length > 6) return null;
  const exponent = Number(exponentText) - fraction.length;
  if (Math.abs(exponent) > 6000) return null;
  const digits = BigInt(`${whole}${fraction}` || "0");
  return exponent >= 0
    ? rational(digits * 10n ** BigInt(exponent))
    : rational(digits, 10n ** BigInt(-exponent));
}

/** A complex number with float parts. */
export interface Complex {
  /** The real part. */
  readonly re: number;
  /** The imaginary part. */
  readonly im: number;
}

/** Builds a complex number. */
export function complex(re: number, im = 0): Complex {
  return { re, im };
}

/** Complex addition. */
export function cAdd(a: Complex, b: Complex): Complex {
  return { re: a.re + b.re, im: a.im + b.im };
}

/** Complex subtraction. */
export function cSub(a: Complex, b: Complex): Complex {
  return { re: a.re - b.re, im: a.im - b.im };
}

/** Complex multiplication. */
export function cMul(a: Complex, b: Complex): Complex {
  if (a.im === 0 && b.im === 0) return { re: a.re * b.re, im: 0 };
  return { re: a.re * b.re - a.im * b.im, im: a.re * b.im + a.im * b.re };
}

/** Complex division (NaN parts when dividing by zero). */
export function cDiv(a: Complex, b: Complex): Complex {
  if (a.im === 0 && b.im === 0) return { re: b.re === 0 ? NaN : a.re / b.re, im: 0 };
  const denominator = b.re * b.re + b.im * b.im;
  if (denominator === 0) return { re: NaN, im: NaN };
  return {
    re: (a.re * b.re + a.im * b.im) / denominator,
    im: (a.im * b.re - a.re * b.im) / denominator,
  };
}

/** The modulus `|a|`. */
export function cAbs(a: Complex): number {
  return Math.hypot(a.re, a.im);
}

/** The principal natural logarithm. */
export function cLog(a: Complex): Complex {
  if (a.im === 0 && a.re > 0) return { re: Math.log(a.re), im: 0 };
  return { re: Math.log(cAbs(a)), im: Math.atan2(a.im, a.re) };
}

/** The exponential. */
export function cExp(a: Complex): Complex {
  const r = Math.exp(a.re);
  if (a.im === 0) return { re: r, im: 0 };
  return { re: r * Math.cos(a.im), im: r * Math.sin(a.im) };
}

/** The principal power `a^b` (a real result for a real base and integer exponent). */
export function cPow(a: Complex, b: Complex): Complex {
  if (b.im === 0 && a.im === 0) {
    if (Number.isInteger(b.re) || a.re >= 0) return { re: Math.pow(a.re, b.re), im: 0 };
  }
  if (a.re === 0 && a.im === 0) {
    return b.re > 0 ? { re: 0, im: 0 } : { re: NaN, im: NaN };
  }
  if (b.im === 0 && Number.isInteger(b.re) && Math.abs(b.re) <= 64) {
    let result: Complex = { re: 1, im: 0 };
    for (let k = 0; k < Math.abs(b.re); k++) result = cMul(result, a);
    return b.re < 0 ? cDiv({ re: 1, im: 0 }, result) : result;
  }
  return cExp(cMul(b, cLog(a)));
}

/** The principal square root. */
export function cSqrt(a: Complex): Complex {
  if (a.im === 0) {
    return a.re >= 0 ? { re: Math.sqrt(a.re), im: 0 } : { re: 0, im: Math.sqrt(-a.re) };
  }
  return cPow(a, { re: 0.5, im: 0 });
}

/** The sine. */
export function cSin(a: Complex): Complex {
  if (a.im === 0) return { re: Math.sin(a.re), im: 0 };
  return { re: Math.sin(a.re) * Math.cosh(a.im), im: Math.cos(a.re) * Math.sinh(a.im) };
}

/** The cosine. */
export function cCos(a: Complex): Complex {
  if (a.im === 0) return { re: Math.cos(a.re), im: 0 };
  return { re: Math.cos(a.re) * Math.cosh(a.im), im: -Math.sin(a.re) * Math.sinh(a.im) };
}

/** Whether both parts are finite numbers. */
export function cIsFinite(a: Complex): boolean {
  return Number.isFinite(a.re) && Number.isFinite(a.im);
}

/**
 * Whether two complex numbers agree within a relative tolerance:
 * `|a - b| <= relativeTolerance * max(|a|, |b|)`, or `|a - b| <= absoluteTolerance`.
 */
export function cClose(
  a: Complex,
  b: Complex,
  relativeTolerance: number,
  absoluteTolerance = 0,
): boolean {
  if (!cIsFinite(a) || !cIsFinite(b)) return false;
  const difference = Math.hypot(a.re - b.re, a.im - b.im);
  if (difference <= absoluteTolerance) return true;
  return difference <= relativeTolerance * Math.max(cAbs(a), cAbs(b));
}

/** The gamma function for real arguments (Lanczos approximation); NaN at poles. */
export function gamma(x: number): number {
  if (Number.isInteger(x) && x <= 0) return NaN;
  if (x < 0.5) return Math.PI / (Math.sin(Math.PI * x) * gamma(1 - x));
  if (x > 171.7) return Infinity;
  const g = 7;
  const c = [
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  x -= 1;
  let sum = c[0] ?? 0;
  for (let k = 1; k < g + 2; k++) sum += (c[k] ?? 0) / (x + k);
  const t = x + g + 0.5;
  return Math.sqrt(2 * Math.PI) * Math.pow(t, x + 0.5) * Math.exp(-t) * sum;
}
