/**
 * Mathematical equivalence of two extracted answers.
 *
 * Both answers are parsed by {@linkcode parseLatex} and compared by kind:
 *
 * - numbers exactly as BigInt rationals (`\frac{1}{2}` ≡ `0.5`, `7,425,000` ≡
 *   `7425000`); when either side is written with a decimal point or an exponent,
 *   within `relativeTolerance` (`\frac13` ≢ `0.3333` at the default 1e-9);
 * - expressions with constants or variables (`2\sqrt{2}` ≡ `\sqrt{8}`,
 *   `\frac{x}{2}+1` ≡ `\frac{x+2}{2}`, `3+4i`) numerically, in complex floating
 *   point, at six deterministic sample points (positive values between 0.25 and
 *   10, so identities that hold on the positive reals, such as `\sqrt{x^2} = x`,
 *   count as equal);
 * - tuples in order, with their brackets (`(1,2]` ≢ `(1,2)`; an open interval and
 *   the ordered pair with the same numbers are the same `(a,b)`), sets and
 *   comma-separated lists of solutions as sets (`1, 2` ≡ `\{2,1\}`, but neither
 *   matches the tuple `(2,1)`), `±` as the set of both values, unions of
 *   intervals after merging, inequalities as intervals (`x \ge 5` ≡ `[5,\infty)`)
 *   or as `f > 0` up to a positive factor, equations up to a nonzero factor
 *   (`2x+4y-3=0` ≡ `y=-\frac{1}{2}x+\frac{3}{4}`), `x = 3` ≡ `3` when the left side
 *   is a name (`x`, `f(x)`, `|AB|`, `(p,q)`), matrices entry by entry;
 * - percentages by `percent`: `"strip"` reads `50\%` as `50` (never as 0.5),
 *   `"strict"` matches a percentage only with a percentage;
 * - words (`\text{east}`, `Evelyn`) case-insensitively; multiple-choice letters
 *   (`(B)`, `\text{(B)}`, `B`) by the letter.
 *
 * Work is bounded: a comparison evaluates at most {@linkcode MAX_COMPARISON_STEPS}
 * nodes and gives up as undecided beyond that. {@linkcode compareAnswers} also answers
 * undecided (never equal) when the sample points cannot tell, as when both sides
 * overflow at every point.
 *
 * ## Why our own parser and not `@cortex-js/compute-engine`
 *
 * Measured on this machine (Deno 2.9, compute-engine 0.140.0): the npm package is
 * 46 MB on disk; `import` takes about 480 ms and `new ComputeEngine()` another
 * 170 ms, paid again in every Worker; the first `parse` takes about 40 ms, later
 * ones 1 to 10 ms. It does not hang on `10^{10^{10}}` (it keeps it symbolic), but
 * `isEqual` returned `undefined` for `\frac{x}{2}+1` vs `\frac{x+2}{2}` and for
 * `(x-y)(x+2y)` vs `x^2+xy-2y^2`, it reads `10,\!080` as the tuple `(10, 80)` and
 * `90^\circ` as `\frac{\pi}{2}`, so it would still need our normalization and a
 * numeric equality check on top. This module is a few thousand lines with no
 * dependency, loads in milliseconds, and every step is bounded.
 *
 * @module
 */
import {
  cAbs,
  cAdd,
  cClose,
  cCos,
  cDiv,
  cExp,
  cIsFinite,
  cLog,
  cMul,
  type Complex,
  complex,
  cPow,
  cSin,
  cSqrt,
  cSub,
  gamma,
  ratAdd,
  ratDiv,
  ratEqual,
  type Rational,
  rational,
  ratMul,
  ratNeg,
  ratPowInt,
  ratRoot,
  ratToNumber,
} from "./numeric.ts";
import { type MathNode, nodeKey, normalizeLatex, parseLatex, type RelOp } from "./latex.ts";

/** Options of {@linkcode answersEquivalent}. */
export interface EquivalenceOptions {
  /**
   * How a percentage compares with a bare number: `"strip"` reads `50\%` as `50`,
   * `"strict"` keeps the percent sign significant.
   * @default "strip"
   */
  percent?: "strip" | "strict";
  /**
   * Relative tolerance for values written with a decimal point or computed in
   * floating point. Exact rationals written without decimals compare exactly.
   * @default 1e-9
   */
  relativeTolerance?: number;
}

/** The most node evaluations one comparison may spend before it gives up as undecided. */
export const MAX_COMPARISON_STEPS = 200_000;

/**
 * The outcome of {@linkcode compareAnswers}: `"undecided"` when the comparison could not
 * tell (floating point overflowed where no difference was seen, or the step budget ran
 * out), which is not evidence that the answers differ.
 */
export type Comparison = "equal" | "not equal" | "undecided";

/** The sample points per comparison of expressions with variables. */
const SAMPLE_POINTS = 6;

interface Context {
  tolerance: number;
  percent: "strip" | "strict";
  steps: number;
  /** Set when a numeric check could not decide; a final `false` is then undecided. */
  undecided: boolean;
}

class BudgetExceeded extends Error {}

function spend(ctx: Context, amount = 1): void {
  ctx.steps -= amount;
  if (ctx.steps < 0) throw new BudgetExceeded("comparison budget exceeded");
}

/**
 * Whether two extracted answers are mathematically equivalent: `compareAnswers()`
 * is `"equal"`. An answer that cannot be parsed matches only the same text (after
 * normalization), and a comparison that cannot decide answers `false`.
 *
 * @example
 * ```ts
 * import { answersEquivalent } from "./equivalence.ts";
 * if (!answersEquivalent("\\dfrac{1}{2}", "0.5")) throw new Error("1/2 is 0.5");
 * if (answersEquivalent("0.5", "50\\%")) throw new Error("0.5 is not 50%");
 * if (answersEquivalent("(1,2]", "(1,2)")) throw new Error("intervals differ");
 * ```
 */
export function answersEquivalent(
  pred: string,
  gold: string,
  options: EquivalenceOptions = {},
): boolean {
  return compareAnswers(pred, gold, options) === "equal";
}

/**
 * Compares two extracted answers: `"equal"`, `"not equal"`, or `"undecided"` when the
 * numeric check had nothing to go on (a side that may overflow floating point, such as
 * `(x+1)^{1000000}`, came out infinite or NaN at the sample points and no difference was
 * seen at the others) or the step budget ran out. Undecided is never equal.
 *
 * @example
 * ```ts
 * import { compareAnswers } from "./equivalence.ts";
 * if (compareAnswers("x+1", "1+x") !== "equal") throw new Error("x+1 is 1+x");
 * if (compareAnswers("x+1", "x+2") !== "not equal") throw new Error("x+1 is not x+2");
 * if (compareAnswers("(x+1)^{1000000}", "(1+x)^{1000000}") !== "undecided") {
 *   throw new Error("overflows at every sample point");
 * }
 * ```
 */
export function compareAnswers(
  pred: string,
  gold: string,
  options: EquivalenceOptions = {},
): Comparison {
  const ctx: Context = {
    tolerance: options.relativeTolerance ?? 1e-9,
    percent: options.percent ?? "strip",
    steps: MAX_COMPARISON_STEPS,
    undecided: false,
  };
  if (pred.trim() === "" || gold.trim() === "") return "not equal";
  const canonicalPred = canonicalText(pred);
  if (canonicalPred !== "" && canonicalPred === canonicalText(gold)) return "equal";
  const a = tryParse(pred);
  const b = tryParse(gold);
  if (a === null || b === null) return "not equal";
  try {
    if (same(a, b, ctx)) return "equal";
    return ctx.undecided ? "undecided" : "not equal";
  } catch (error) {
    // Out of steps, or a number too large for BigInt: not evidence either way.
    if (error instanceof BudgetExceeded || error instanceof RangeError) return "undecided";
    throw error;
  }
}

function tryParse(text: string): MathNode | null {
  try {
    return parseLatex(text);
  } catch (error) {
    if (error instanceof SyntaxError || error instanceof RangeError) return null;
    throw error;
  }
}

/** The answer text with notation differences removed, for a last-resort string comparison. */
export function canonicalText(text: string): string {
  return normalizeLatex(text)
    .replace(/\\(?:text[a-z]*|mathrm|mbox|math[a-z]+|boxed|fbox)\s*\{([^{}]*)\}/g, "$1")
    .replace(/\s/g, "")
    .replace(/\.+$/, "");
}

// --- preparation ---

function prep(node: MathNode, ctx: Context): MathNode {
  spend(ctx);
  if (node.kind === "list" && node.items.length === 1) return prep(node.items[0] as MathNode, ctx);
  if (node.kind === "percent" && ctx.percent === "strip") return prep(node.arg, ctx);
  if (node.kind === "relation") return prepRelation(node, ctx);
  return node;
}

function prepRelation(node: Extract<MathNode, { kind: "relation" }>, ctx: Context): MathNode {
  let ops = node.ops;
  let sides = node.sides;
  // x = 1/3 ≈ 0.33: the exact value before the approximation.
  const approx = ops.indexOf("~");
  if (approx > 0 && ops.slice(0, approx).every((op) => op === "=")) {
    ops = ops.slice(0, approx);
    sides = sides.slice(0, approx + 1);
  }
  if (ops.every((op) => op === "=" || op === "~")) {
    const first = sides[0] as MathNode;
    const last = sides[sides.length - 1] as MathNode;
    if (sides.length >= 3) {
      return isLabel(first)
        ? { kind: "relation", ops: ["="], sides: [first, last] }
        : prep(last, ctx);
    }
    // 5 \times 6 = 30 reads as 30.
    if (!hasSymbols(first) && !hasSymbols(last)) return prep(last, ctx);
    // 3 = x reads as x = 3 and 2x + 1 = y as y = 2x + 1, the name first; an equation
    // such as 5 = x + y keeps its sides (equations compare up to a factor, -1 included).
    if (isLabel(last) && !isLabel(first)) {
      return { kind: "relation", ops: ["="], sides: [last, first] };
    }
    return { kind: "relation", ops: ["="], sides: [first, last] };
  }
  if (ops.length === 1 && ops[0] === "in") return prep(sides[1] as MathNode, ctx);
  return { kind: "relation", ops, sides };
}

/** Whether a node names something (`x`, `f(x)`, `|AB|`, `(p,q)`, `\frac{NO}{BO}`) rather than computes it. */
function isLabel(node: MathNode): boolean {
  switch (node.kind) {
    case "symbol":
    case "text":
      return true;
    case "mul":
      return node.apply === true && node.factors[0]?.kind === "symbol" ||
        node.factors.every((factor) =>
          factor.kind === "symbol" || factor.kind === "func" && isLabel(factor)
        );
    case "opaque":
      return node.name === "apply" || node.name === "sub";
    case "func":
      return node.name === "abs" && node.args.length === 1 && isLabel(node.args[0] as MathNode);
    case "ratio":
      return isLabel(node.left) && isLabel(node.right);
    case "div":
      return isLabel(node.num) && isLabel(node.den);
    case "tuple":
      return node.items.every(isLabel);
    default:
      return false;
  }
}

function children(node: MathNode): MathNode[] {
  switch (node.kind) {
    case "add":
      return node.terms;
    case "neg":
    case "percent":
      return [node.arg];
    case "mul":
      return node.factors;
    case "div":
      return [node.num, node.den];
    case "pow":
      return [node.base, node.exp];
    case "pm":
      return node.left === null ? [node.right] : [node.left, node.right];
    case "func":
    case "opaque":
      return node.args;
    case "ratio":
      return [node.left, node.right];
    case "tuple":
    case "set":
    case "list":
      return node.items;
    case "matrix":
      return node.rows.flat();
    case "relation":
      return node.sides;
    case "union":
      return node.parts;
    default:
      return [];
  }
}

function hasSymbols(node: MathNode): boolean {
  if (node.kind === "symbol" || node.kind === "text") return true;
  return children(node).some(hasSymbols);
}

function containsKind(node: MathNode, kind: MathNode["kind"]): boolean {
  if (node.kind === kind) return true;
  return children(node).some((child) => containsKind(child, kind));
}

function collectSymbols(node: MathNode, into: Set<string>): Set<string> {
  if (node.kind === "symbol") into.add(node.name);
  else if (node.kind === "text") into.add(`text:${node.text}`);
  for (const child of children(node)) collectSymbols(child, into);
  return into;
}

/** Replaces every `±` by `+` (sign 1) or `-` (sign -1), and `∓` by the opposite. */
function choosePm(node: MathNode, sign: 1 | -1): MathNode {
  if (node.kind === "pm") {
    const right = choosePm(node.right, sign);
    const negative = (sign === -1) !== node.minus;
    const term: MathNode = negative ? { kind: "neg", arg: right } : right;
    return node.left === null ? term : { kind: "add", terms: [choosePm(node.left, sign), term] };
  }
  switch (node.kind) {
    case "add":
      return { kind: "add", terms: node.terms.map((term) => choosePm(term, sign)) };
    case "neg":
      return { kind: "neg", arg: choosePm(node.arg, sign) };
    case "mul":
      return { ...node, factors: node.factors.map((factor) => choosePm(factor, sign)) };
    case "div":
      return { ...node, num: choosePm(node.num, sign), den: choosePm(node.den, sign) };
    case "pow":
      return { kind: "pow", base: choosePm(node.base, sign), exp: choosePm(node.exp, sign) };
    case "func":
      return { kind: "func", name: node.name, args: node.args.map((arg) => choosePm(arg, sign)) };
    case "percent":
      return { kind: "percent", arg: choosePm(node.arg, sign) };
    default:
      return node;
  }
}

function expandPm(node: MathNode): MathNode[] {
  if (!isScalarKind(node) || !containsKind(node, "pm")) return [node];
  return [choosePm(node, 1), choosePm(node, -1)];
}

function isScalarKind(node: MathNode): boolean {
  return !["tuple", "set", "list", "matrix", "relation", "union"].includes(node.kind);
}

interface Labeled {
  label: MathNode;
  value: MathNode;
}

function labelEquation(node: MathNode): Labeled | null {
  if (node.kind !== "relation" || node.ops.length !== 1 || node.ops[0] !== "=") return null;
  const [left, right] = node.sides as [MathNode, MathNode];
  return isLabel(left) ? { label: left, value: right } : null;
}

// --- comparison ---

function same(a: MathNode, b: MathNode, ctx: Context): boolean {
  spend(ctx);
  a = prep(a, ctx);
  b = prep(b, ctx);
  if (nodeKey(a) === nodeKey(b)) return true;

  const labeledA = labelEquation(a);
  const labeledB = labelEquation(b);
  if (labeledA !== null && labeledB !== null) {
    if (same(labeledA.value, labeledB.value, ctx)) return true;
    return equationsEquivalent(a, b, ctx);
  }
  if (labeledA !== null && b.kind !== "relation") return same(labeledA.value, b, ctx);
  if (labeledB !== null && a.kind !== "relation") return same(a, labeledB.value, ctx);

  const collectionA = toCollection(a, ctx);
  const collectionB = toCollection(b, ctx);
  if (collectionA !== null || collectionB !== null) {
    return compareCollections(
      collectionA ?? { kind: "single", items: [a] },
      collectionB ?? { kind: "single", items: [b] },
      ctx,
    );
  }

  if (a.kind === "relation" || b.kind === "relation") return compareRelations(a, b, ctx);
  if (a.kind === "union" || b.kind === "union") return compareIntervalSets(a, b, ctx);
  if (a.kind === "tuple" || b.kind === "tuple") return compareTuples(a, b, ctx);
  if (a.kind === "matrix" || b.kind === "matrix") return compareMatrices(a, b, ctx);
  return compareScalars(a, b, ctx);
}

interface Collection {
  kind: "list" | "set" | "record" | "tuple" | "single";
  items: MathNode[];
  labels?: string[];
}

function toCollection(node: MathNode, ctx: Context): Collection | null {
  if (node.kind === "list") {
    const entries = node.items.map((item) => {
      const prepared = prep(item, ctx);
      const labeled = labelEquation(prepared);
      return labeled === null
        ? { label: null, value: prepared }
        : { label: nodeKey(labeled.label), value: labeled.value };
    });
    const labels = entries.map((entry) => entry.label);
    if (labels.every((label) => label !== null) && new Set(labels).size === labels.length) {
      return {
        kind: "record",
        items: entries.map((entry) => entry.value),
        labels: labels as string[],
      };
    }
    return { kind: "list", items: entries.flatMap((entry) => expandPm(prep(entry.value, ctx))) };
  }
  if (node.kind === "set") {
    return {
      kind: "set",
      items: node.items.flatMap((item) => expandPm(prep(item, ctx))),
    };
  }
  if (isScalarKind(node) && containsKind(node, "pm")) return { kind: "set", items: expandPm(node) };
  return null;
}

function compareCollections(a: Collection, b: Collection, ctx: Context): boolean {
  if (a.kind === "single" && b.kind === "single") return false;
  if (a.kind === "single" || b.kind === "single") {
    const single = a.kind === "single" ? a : b;
    const other = a.kind === "single" ? b : a;
    const node = single.items[0] as MathNode;
    // A bare list may be a tuple written without its parentheses: (6,31,-1) ≡ 6, 31, -1.
    if (node.kind === "tuple" && node.open === "(" && node.close === ")" && other.kind !== "set") {
      return orderedEqual(node.items, other.items, ctx);
    }
    if (node.kind === "matrix" && other.kind !== "set") {
      const vector = matrixAsVector(node);
      if (vector !== null) return orderedEqual(vector, other.items, ctx);
    }
    return other.items.length === 1 && same(node, other.items[0] as MathNode, ctx);
  }
  if (a.kind === "record" && b.kind === "record") {
    const labelsA = a.labels ?? [];
    const labelsB = b.labels ?? [];
    if (labelsA.length === labelsB.length && labelsA.every((label) => labelsB.includes(label))) {
      return labelsA.every((label, k) =>
        same(a.items[k] as MathNode, b.items[labelsB.indexOf(label)] as MathNode, ctx)
      );
    }
    return orderedEqual(a.items, b.items, ctx) || unorderedEqual(a.items, b.items, ctx);
  }
  if (a.kind === "record" || b.kind === "record") {
    const record = a.kind === "record" ? a : b;
    const other = a.kind === "record" ? b : a;
    if (orderedEqual(record.items, other.items, ctx)) return true;
    const indexed = (record.labels ?? []).every((label) => /_/.test(label));
    return (indexed || other.kind === "set") && unorderedEqual(record.items, other.items, ctx);
  }
  return unorderedEqual(a.items, b.items, ctx);
}

function orderedEqual(a: MathNode[], b: MathNode[], ctx: Context): boolean {
  return a.length === b.length && a.every((item, k) => same(item, b[k] as MathNode, ctx));
}

function dedupe(items: MathNode[], ctx: Context): MathNode[] {
  if (items.length > 300) throw new BudgetExceeded("list too long");
  const unique: MathNode[] = [];
  for (const item of items) {
    if (!unique.some((kept) => same(kept, item, ctx))) unique.push(item);
  }
  return unique;
}

/** A string naming the exact value of a number or tuple of numbers, or `null`. */
function exactKey(node: MathNode, ctx: Context): string | null {
  if (node.kind === "tuple") {
    const keys = node.items.map((item) => exactKey(prep(item, ctx), ctx));
    return keys.every((key) => key !== null) ? `${node.open}${keys.join(",")}${node.close}` : null;
  }
  if (!isScalarKind(node) || hasSymbols(node) || hasDecimal(node)) return null;
  const value = exactValue(node, ctx);
  return value === null ? null : `${value.n}/${value.d}`;
}

function unorderedEqual(a: MathNode[], b: MathNode[], ctx: Context): boolean {
  // Fast path for long lists of exact numbers or tuples: compare the sets of values.
  if (a.length + b.length > 16) {
    const keysA = a.map((item) => exactKey(item, ctx));
    const keysB = b.map((item) => exactKey(item, ctx));
    if (keysA.every((key) => key !== null) && keysB.every((key) => key !== null)) {
      const setA = new Set(keysA);
      const setB = new Set(keysB);
      return setA.size === setB.size && [...setA].every((key) => setB.has(key));
    }
  }
  const uniqueA = dedupe(a, ctx);
  const uniqueB = dedupe(b, ctx);
  if (uniqueA.length !== uniqueB.length) return false;
  const used = new Array<boolean>(uniqueB.length).fill(false);
  for (const item of uniqueA) {
    const match = uniqueB.findIndex((other, k) => !used[k] && same(item, other, ctx));
    if (match < 0) return false;
    used[match] = true;
  }
  return true;
}

function matrixAsVector(node: Extract<MathNode, { kind: "matrix" }>): MathNode[] | null {
  if (node.rows.every((row) => row.length === 1)) return node.rows.map((row) => row[0] as MathNode);
  if (node.rows.length === 1) return node.rows[0] ?? null;
  return null;
}

function compareTuples(a: MathNode, b: MathNode, ctx: Context): boolean {
  if (a.kind === "tuple" && b.kind === "tuple") {
    if (a.open !== b.open || a.close !== b.close) {
      const intervalsA = toIntervals(a, ctx);
      const intervalsB = toIntervals(b, ctx);
      return intervalsA !== null && intervalsB !== null &&
        intervalListsEqual(intervalsA, intervalsB, ctx);
    }
    return orderedEqual(a.items, b.items, ctx);
  }
  const tuple = a.kind === "tuple" ? a : b;
  const other = a.kind === "tuple" ? b : a;
  if (tuple.kind !== "tuple") return false;
  if (other.kind === "matrix" && tuple.open === "(") {
    const vector = matrixAsVector(other);
    return vector !== null && orderedEqual(tuple.items, vector, ctx);
  }
  if (other.kind === "set" || other.kind === "union") return compareIntervalSets(a, b, ctx);
  return false;
}

function compareMatrices(a: MathNode, b: MathNode, ctx: Context): boolean {
  if (a.kind === "matrix" && b.kind === "matrix") {
    if (a.rows.length !== b.rows.length) return false;
    return a.rows.every((row, r) => orderedEqual(row, b.rows[r] ?? [], ctx));
  }
  // A matrix expression (a sum or product of matrices) against a matrix.
  return numericEqual(a, b, ctx);
}

// --- relations and intervals ---

function difference(left: MathNode, right: MathNode): MathNode {
  return { kind: "add", terms: [left, { kind: "neg", arg: right }] };
}

function equationsEquivalent(a: MathNode, b: MathNode, ctx: Context): boolean {
  if (a.kind !== "relation" || b.kind !== "relation") return false;
  if (a.ops.length !== 1 || b.ops.length !== 1 || a.ops[0] !== "=" || b.ops[0] !== "=") {
    return false;
  }
  return proportional(
    difference(a.sides[0] as MathNode, a.sides[1] as MathNode),
    difference(b.sides[0] as MathNode, b.sides[1] as MathNode),
    false,
    ctx,
  );
}

/** `f > 0`, `f >= 0` or `f != 0` for a one-operator inequality. */
function inequalityForm(
  node: Extract<MathNode, { kind: "relation" }>,
): { f: MathNode; op: "gt" | "ge" | "ne" } | null {
  if (node.ops.length !== 1) return null;
  const [left, right] = node.sides as [MathNode, MathNode];
  switch (node.ops[0]) {
    case "<":
      return { f: difference(right, left), op: "gt" };
    case "<=":
      return { f: difference(right, left), op: "ge" };
    case ">":
      return { f: difference(left, right), op: "gt" };
    case ">=":
      return { f: difference(left, right), op: "ge" };
    case "!=":
      return { f: difference(left, right), op: "ne" };
    default:
      return null;
  }
}

function compareRelations(a: MathNode, b: MathNode, ctx: Context): boolean {
  if (a.kind === "relation" && b.kind === "relation") {
    if (a.ops.length === 1 && b.ops.length === 1 && a.ops[0] === "=" && b.ops[0] === "=") {
      return equationsEquivalent(a, b, ctx);
    }
    const formA = inequalityForm(a);
    const formB = inequalityForm(b);
    if (formA !== null && formB !== null) {
      if (formA.op !== formB.op) return false;
      return proportional(formA.f, formB.f, formA.op !== "ne", ctx);
    }
    if (a.ops.length === b.ops.length && a.ops.length >= 2) {
      if (a.ops.every((op, k) => op === b.ops[k]) && orderedEqual(a.sides, b.sides, ctx)) {
        return true;
      }
      const flipped = [...b.ops].reverse().map(flipOp);
      if (
        a.ops.every((op, k) => op === flipped[k]) &&
        orderedEqual(a.sides, [...b.sides].reverse(), ctx)
      ) {
        return true;
      }
    }
  }
  return compareIntervalSets(a, b, ctx);
}

function flipOp(op: RelOp): RelOp {
  switch (op) {
    case "<":
      return ">";
    case ">":
      return "<";
    case "<=":
      return ">=";
    case ">=":
      return "<=";
    default:
      return op;
  }
}

interface Interval {
  lo: MathNode | null;
  hi: MathNode | null;
  loClosed: boolean;
  hiClosed: boolean;
}

function infinitySign(node: MathNode): 1 | -1 | 0 {
  if (node.kind === "constant" && node.name === "inf") return 1;
  if (node.kind === "neg") return infinitySign(node.arg) === 1 ? -1 : 0;
  return 0;
}

function isConstant(node: MathNode): boolean {
  return !hasSymbols(node) && infinitySign(node) === 0 && isScalarKind(node);
}

function toIntervals(node: MathNode, ctx: Context): Interval[] | null {
  spend(ctx);
  switch (node.kind) {
    case "tuple": {
      if (node.items.length !== 2) return null;
      const [lo, hi] = node.items as [MathNode, MathNode];
      return [{
        lo: infinitySign(lo) === -1 ? null : lo,
        hi: infinitySign(hi) === 1 ? null : hi,
        loClosed: node.open === "[",
        hiClosed: node.close === "]",
      }];
    }
    case "union": {
      const out: Interval[] = [];
      for (const part of node.parts) {
        const intervals = toIntervals(prep(part, ctx), ctx);
        if (intervals === null) return null;
        out.push(...intervals);
      }
      return out;
    }
    case "set":
      return node.items.every(isConstant)
        ? node.items.map((item) => ({ lo: item, hi: item, loClosed: true, hiClosed: true }))
        : null;
    case "relation":
      return relationIntervals(node, ctx);
    default:
      return null;
  }
}

function relationIntervals(
  node: Extract<MathNode, { kind: "relation" }>,
  ctx: Context,
): Interval[] | null {
  if (node.ops.length === 1) {
    let [left, right] = node.sides as [MathNode, MathNode];
    let op = node.ops[0] as RelOp;
    if (isConstant(left) && isLabel(right)) {
      [left, right] = [right, left];
      op = flipOp(op);
    }
    if (!isLabel(left) || !isConstant(right)) return null;
    switch (op) {
      case "<":
      case "<=":
        return [{ lo: null, hi: right, loClosed: false, hiClosed: op === "<=" }];
      case ">":
      case ">=":
        return [{ lo: right, hi: null, loClosed: op === ">=", hiClosed: false }];
      case "!=":
        return [
          { lo: null, hi: right, loClosed: false, hiClosed: false },
          { lo: right, hi: null, loClosed: false, hiClosed: false },
        ];
      case "=":
        return [{ lo: right, hi: right, loClosed: true, hiClosed: true }];
      default:
        return null;
    }
  }
  if (node.ops.length !== 2) return null;
  let [a, x, b] = node.sides as [MathNode, MathNode, MathNode];
  let [op1, op2] = node.ops as [RelOp, RelOp];
  if ((op1 === ">" || op1 === ">=") && (op2 === ">" || op2 === ">=")) {
    [a, b] = [b, a];
    [op1, op2] = [flipOp(op2), flipOp(op1)];
  }
  if (!(op1 === "<" || op1 === "<=") || !(op2 === "<" || op2 === "<=")) return null;
  const lo = infinitySign(a) === -1 ? null : a;
  const hi = infinitySign(b) === 1 ? null : b;
  if ((lo !== null && !isConstant(lo)) || (hi !== null && !isConstant(hi))) return null;
  if (x.kind === "func" && x.name === "abs" && isLabel(x.args[0] as MathNode)) {
    // a <= |x| <= b with a >= 0: [-b, -a] ∪ [a, b].
    const loValue = lo === null ? 0 : realValue(lo, ctx);
    if (loValue === null || loValue < 0) return null;
    const negate = (n: MathNode | null): MathNode | null =>
      n === null ? null : { kind: "neg", arg: n };
    if (loValue === 0 && op1 === "<=") {
      return [{ lo: negate(hi), hi, loClosed: op2 === "<=", hiClosed: op2 === "<=" }];
    }
    return [
      { lo: negate(hi), hi: negate(lo), loClosed: op2 === "<=", hiClosed: op1 === "<=" },
      { lo, hi, loClosed: op1 === "<=", hiClosed: op2 === "<=" },
    ];
  }
  if (!isLabel(x)) return null;
  return [{ lo, hi, loClosed: op1 === "<=", hiClosed: op2 === "<=" }];
}

function compareIntervalSets(a: MathNode, b: MathNode, ctx: Context): boolean {
  const intervalsA = toIntervals(a, ctx);
  const intervalsB = toIntervals(b, ctx);
  if (intervalsA === null || intervalsB === null) return false;
  return intervalListsEqual(intervalsA, intervalsB, ctx);
}

interface NumericInterval extends Interval {
  loValue: number;
  hiValue: number;
}

function mergeIntervals(intervals: Interval[], ctx: Context): NumericInterval[] | null {
  const numeric: NumericInterval[] = [];
  for (const interval of intervals) {
    const loValue = interval.lo === null ? -Infinity : realValue(interval.lo, ctx);
    const hiValue = interval.hi === null ? Infinity : realValue(interval.hi, ctx);
    if (loValue === null || hiValue === null) return null;
    numeric.push({ ...interval, loValue, hiValue });
  }
  numeric.sort((x, y) => x.loValue - y.loValue || x.hiValue - y.hiValue);
  const merged: NumericInterval[] = [];
  for (const interval of numeric) {
    const last = merged[merged.length - 1];
    if (
      last !== undefined &&
      (interval.loValue < last.hiValue ||
        (interval.loValue === last.hiValue && (last.hiClosed || interval.loClosed)))
    ) {
      if (
        interval.hiValue > last.hiValue || (interval.hiValue === last.hiValue && interval.hiClosed)
      ) {
        merged[merged.length - 1] = {
          ...last,
          hi: interval.hi,
          hiValue: interval.hiValue,
          hiClosed: interval.hiValue === last.hiValue
            ? last.hiClosed || interval.hiClosed
            : interval.hiClosed,
        };
      }
      continue;
    }
    merged.push(interval);
  }
  return merged;
}

function intervalListsEqual(a: Interval[], b: Interval[], ctx: Context): boolean {
  const mergedA = mergeIntervals(a, ctx);
  const mergedB = mergeIntervals(b, ctx);
  if (mergedA === null || mergedB === null) {
    // Symbolic endpoints: compare in the order written.
    return a.length === b.length && a.every((x, k) => {
      const y = b[k] as Interval;
      return x.loClosed === y.loClosed && x.hiClosed === y.hiClosed &&
        endpointEqual(x.lo, y.lo, ctx) && endpointEqual(x.hi, y.hi, ctx);
    });
  }
  if (mergedA.length !== mergedB.length) return false;
  return mergedA.every((x, k) => {
    const y = mergedB[k] as NumericInterval;
    const loOk = x.lo === null || y.lo === null
      ? x.lo === y.lo
      : x.loClosed === y.loClosed && endpointEqual(x.lo, y.lo, ctx);
    const hiOk = x.hi === null || y.hi === null
      ? x.hi === y.hi
      : x.hiClosed === y.hiClosed && endpointEqual(x.hi, y.hi, ctx);
    return loOk && hiOk;
  });
}

function endpointEqual(a: MathNode | null, b: MathNode | null, ctx: Context): boolean {
  if (a === null || b === null) return a === b;
  return compareScalars(prep(a, ctx), prep(b, ctx), ctx);
}

function realValue(node: MathNode, ctx: Context): number | null {
  const exact = exactValue(node, ctx);
  if (exact !== null) return ratToNumber(exact);
  const value = evaluate(node, () => complex(NaN), ctx);
  if (value === null || value.kind !== "scalar") return null;
  const z = value.z;
  if (!cIsFinite(z) || Math.abs(z.im) > 1e-12 * Math.max(1, Math.abs(z.re))) return null;
  return z.re;
}

// --- scalars ---

function compareScalars(a: MathNode, b: MathNode, ctx: Context): boolean {
  if (a.kind === "based" || b.kind === "based") return compareBased(a, b);
  if (ctx.percent === "strict" && (a.kind === "percent" || b.kind === "percent")) {
    if (a.kind !== "percent" || b.kind !== "percent") return false;
    return same(a.arg, b.arg, ctx);
  }
  if (a.kind === "text" && b.kind === "text") return a.text === b.text;
  if (!isScalarKind(a) || !isScalarKind(b)) return false;
  const exactA = exactValue(a, ctx);
  const exactB = exactValue(b, ctx);
  if (exactA !== null && exactB !== null) {
    if (ratEqual(exactA, exactB)) return true;
    if (!hasDecimal(a) && !hasDecimal(b)) return false;
    return cClose(complex(ratToNumber(exactA)), complex(ratToNumber(exactB)), ctx.tolerance);
  }
  const exactNonzero = (value: Rational | null): boolean => value !== null && value.n !== 0n;
  return numericEqual(a, b, ctx, !exactNonzero(exactA) && !exactNonzero(exactB));
}

function compareBased(a: MathNode, b: MathNode): boolean {
  const digits = (node: MathNode): [string, string] | null => {
    if (node.kind === "based") return [node.digits.replace(/^0+(?=.)/, ""), node.base];
    if (node.kind === "number" && !node.decimal && node.value.d === 1n && node.value.n >= 0n) {
      return [node.value.n.toString(), ""];
    }
    return null;
  };
  const x = digits(a);
  const y = digits(b);
  if (x === null || y === null || x[0] !== y[0]) return false;
  return x[1] === y[1] || x[1] === "" || y[1] === "";
}

function hasDecimal(node: MathNode): boolean {
  if (node.kind === "number") return node.decimal;
  return children(node).some(hasDecimal);
}

/** The exact rational value of a constant expression, or `null`. */
function exactValue(node: MathNode, ctx: Context): Rational | null {
  spend(ctx);
  switch (node.kind) {
    case "number":
      return node.value;
    case "neg": {
      const value = exactValue(node.arg, ctx);
      return value === null ? null : ratNeg(value);
    }
    case "add": {
      let sum: Rational | null = { n: 0n, d: 1n };
      for (const term of node.terms) {
        const value = exactValue(term, ctx);
        if (value === null || sum === null) return null;
        sum = ratAdd(sum, value);
      }
      return sum;
    }
    case "mul": {
      let product: Rational | null = { n: 1n, d: 1n };
      for (const factor of node.factors) {
        const value = exactValue(factor, ctx);
        if (value === null || product === null) return null;
        product = ratMul(product, value);
      }
      return product;
    }
    case "div":
    case "ratio": {
      const top = exactValue(node.kind === "div" ? node.num : node.left, ctx);
      const bottom = exactValue(node.kind === "div" ? node.den : node.right, ctx);
      return top === null || bottom === null ? null : ratDiv(top, bottom);
    }
    case "pow": {
      const base = exactValue(node.base, ctx);
      const exponent = exactValue(node.exp, ctx);
      if (base === null || exponent === null) return null;
      if (exponent.d === 1n) return ratPowInt(base, exponent.n);
      if (exponent.d > 64n) return null;
      const powered = ratPowInt(base, exponent.n);
      return powered === null ? null : ratRoot(powered, Number(exponent.d));
    }
    case "percent":
      return ctx.percent === "strip" ? exactValue(node.arg, ctx) : null;
    case "func":
      return exactFunction(node.name, node.args, ctx);
    default:
      return null;
  }
}

function exactFunction(name: string, args: MathNode[], ctx: Context): Rational | null {
  const values = args.map((arg) => exactValue(arg, ctx));
  const [x, y] = values;
  if (x === undefined || x === null) return null;
  switch (name) {
    case "sqrt":
      return ratRoot(x, 2);
    case "root":
      return y !== undefined && y !== null && y.d === 1n && y.n > 0n && y.n <= 64n
        ? ratRoot(x, Number(y.n))
        : null;
    case "abs":
      return x.n < 0n ? ratNeg(x) : x;
    case "floor":
    case "ceil": {
      let q = x.n / x.d;
      if (x.n % x.d !== 0n) {
        if (x.n < 0n && name === "floor") q -= 1n;
        if (x.n > 0n && name === "ceil") q += 1n;
      }
      return rational(q);
    }
    case "factorial": {
      if (x.d !== 1n || x.n < 0n || x.n > 1500n) return null;
      let product = 1n;
      for (let k = 2n; k <= x.n; k++) product *= k;
      return rational(product);
    }
    case "binom": {
      if (y === undefined || y === null || x.d !== 1n || y.d !== 1n || x.n > 5000n || x.n < 0n) {
        return null;
      }
      if (y.n < 0n || y.n > x.n) return { n: 0n, d: 1n };
      let result = 1n;
      for (let k = 1n; k <= y.n; k++) result = (result * (x.n - y.n + k)) / k;
      return rational(result);
    }
    default:
      return null;
  }
}

// --- numeric evaluation ---

type Value = { kind: "scalar"; z: Complex } | { kind: "matrix"; rows: Complex[][] };

function scalar(z: Complex): Value {
  return { kind: "scalar", z };
}

const NAN: Complex = complex(NaN, NaN);

function hashString(text: string): number {
  let h = 2166136261;
  for (let k = 0; k < text.length; k++) {
    h ^= text.charCodeAt(k);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

function unitHash(seed: number): number {
  let t = (seed + 0x6d2b79f5) >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** The ranges the sample points draw from: small, around 1, and up to 10. */
const SAMPLE_RANGES: readonly [number, number][] = [
  [0.25, 1.25],
  [0.5, 2.5],
  [1.5, 3.5],
  [0.25, 2.75],
  [3, 6],
  [5, 10],
];

/** The value of variable `name` at sample point `point`: deterministic and positive. */
function sampleValue(name: string, point: number): number {
  const [low, high] = SAMPLE_RANGES[point % SAMPLE_RANGES.length] as [number, number];
  return low + (high - low) * unitHash(hashString(name) + 7919 * (point + 1));
}

function numericEqual(a: MathNode, b: MathNode, ctx: Context, allowAbsolute = false): boolean {
  const symbols = collectSymbols(b, collectSymbols(a, new Set()));
  const points = symbols.size === 0 ? 1 : SAMPLE_POINTS;
  const tolerance = Math.max(ctx.tolerance, 1e-11);
  // An infinite or undefined value decides nothing when it may be an overflow
  // ((x+1)^{1000000}) or a cancellation of overflows (Inf/Inf); a written \infty or a
  // division by zero is infinite or undefined for real.
  const overflow = mayOverflow(a, b);
  let valid = 0;
  let unknown = false;
  for (let point = 0; point < points; point++) {
    const env = (name: string): Complex => complex(sampleValue(name, point));
    const x = evaluate(a, env, ctx);
    const y = evaluate(b, env, ctx);
    if (x === null || y === null || x.kind !== y.kind) return false;
    if (x.kind === "scalar" && y.kind === "scalar") {
      // Undefined on both sides is no evidence; on one side only, a difference unless it
      // may be an overflow.
      if (!cIsFinite(x.z) && !cIsFinite(y.z)) continue;
      if (!cIsFinite(x.z) || !cIsFinite(y.z)) {
        if (!overflow) return false;
        unknown = true;
        continue;
      }
      valid++;
      if (!closeScalars(x.z, y.z, tolerance, allowAbsolute)) return false;
      continue;
    }
    if (x.kind === "matrix" && y.kind === "matrix") {
      if (
        x.rows.length !== y.rows.length || x.rows.some((row, r) => row.length !== y.rows[r]?.length)
      ) {
        return false;
      }
      const cellsX = x.rows.flat();
      const cellsY = y.rows.flat();
      const finiteX = cellsX.every(cIsFinite);
      const finiteY = cellsY.every(cIsFinite);
      if (!finiteX && !finiteY) continue;
      if (!finiteX || !finiteY) {
        if (!overflow) return false;
        unknown = true;
        continue;
      }
      valid++;
      if (
        !cellsX.every((z, k) => closeScalars(z, cellsY[k] as Complex, tolerance, allowAbsolute))
      ) return false;
    }
  }
  if (!unknown && valid >= Math.min(points, 3)) return true;
  // Too few points where both sides are finite, and no difference seen at any of them.
  if (overflow) ctx.undecided = true;
  return false;
}

/** The value of a number literal, its negation or a quotient of two, else NaN. */
function smallNumber(node: MathNode): number {
  switch (node.kind) {
    case "number":
      return ratToNumber(node.value);
    case "neg":
      return -smallNumber(node.arg);
    case "div":
      return smallNumber(node.num) / smallNumber(node.den);
    default:
      return NaN;
  }
}

/** Functions whose value may overflow a float for moderate arguments. */
const FAST_GROWING = new Set(["exp", "factorial", "binom", "sinh", "cosh", "sum", "prod"]);

/**
 * Whether evaluating `a` or `b` in floating point may overflow or underflow: they hold a
 * power with a large or symbolic exponent, an exponential, a factorial or a series, or a
 * literal beyond 1e±100, and no written \infty.
 */
function mayOverflow(a: MathNode, b: MathNode): boolean {
  const has = (node: MathNode, test: (node: MathNode) => boolean): boolean =>
    test(node) || children(node).some((child) => has(child, test));
  const infinity = (node: MathNode): boolean => node.kind === "constant" && node.name === "inf";
  const grows = (node: MathNode): boolean => {
    switch (node.kind) {
      case "pow":
        // x^2 and \pi^{-1/2} stay small at the sample points; x^{100} and e^x may not.
        return !(Math.abs(smallNumber(node.exp)) <= 20) || has(node.base, grows);
      case "func":
      case "opaque":
        return FAST_GROWING.has(node.name);
      case "number": {
        const magnitude = Math.abs(ratToNumber(node.value));
        return magnitude > 1e100 || (magnitude < 1e-100 && node.value.n !== 0n);
      }
      default:
        return false;
    }
  };
  return !has(a, infinity) && !has(b, infinity) && (has(a, grows) || has(b, grows));
}

/**
 * Whether two computed values agree. With `allowAbsolute` (neither side is an
 * exact nonzero constant), a zero also matches float noise below 1e-12
 * (`\cos(\pi/2)` is 6e-17); an exact constant such as `2.88e-19` never matches 0.
 */
function closeScalars(x: Complex, y: Complex, tolerance: number, allowAbsolute: boolean): boolean {
  if (cClose(x, y, tolerance)) return true;
  return allowAbsolute && (cAbs(x) === 0 || cAbs(y) === 0) && cAbs(cSub(x, y)) <= 1e-12;
}

/** Whether two functions agree up to a constant factor (a positive one when `positive`). */
function proportional(f: MathNode, g: MathNode, positive: boolean, ctx: Context): boolean {
  const symbols = collectSymbols(g, collectSymbols(f, new Set()));
  const points = symbols.size === 0 ? 1 : SAMPLE_POINTS;
  const tolerance = Math.max(ctx.tolerance, 1e-9);
  let ratio: Complex | null = null;
  let valid = 0;
  let zeros = 0;
  let skipped = 0;
  for (let point = 0; point < points; point++) {
    const env = (name: string): Complex => complex(sampleValue(name, point));
    const x = evaluate(f, env, ctx);
    const y = evaluate(g, env, ctx);
    if (x === null || y === null || x.kind !== "scalar" || y.kind !== "scalar") return false;
    if (!cIsFinite(x.z) || !cIsFinite(y.z)) {
      skipped++;
      continue;
    }
    const smallX = cAbs(x.z) < 1e-12;
    const smallY = cAbs(y.z) < 1e-12;
    if (smallX && smallY) {
      zeros++;
      continue;
    }
    if (smallX || smallY) return false;
    const r = cDiv(x.z, y.z);
    valid++;
    if (ratio === null) ratio = r;
    else if (!cClose(ratio, r, tolerance)) return false;
  }
  if (ratio !== null && positive && !(Math.abs(ratio.im) <= 1e-12 * cAbs(ratio) && ratio.re > 0)) {
    return false;
  }
  if (ratio === null ? zeros > 0 : valid + zeros >= Math.min(points, 3)) return true;
  // Too few finite points to tell: undecided when overflow or undefined values cost them.
  if (skipped > 0 && mayOverflow(f, g)) ctx.undecided = true;
  return false;
}

function toScalar(value: Value | null): Complex {
  return value !== null && value.kind === "scalar" ? value.z : NAN;
}

function evaluate(node: MathNode, env: (name: string) => Complex, ctx: Context): Value | null {
  spend(ctx);
  switch (node.kind) {
    case "number":
      return scalar(complex(ratToNumber(node.value)));
    case "symbol":
      return scalar(env(node.name));
    case "text":
      return scalar(env(`text:${node.text}`));
    case "constant":
      switch (node.name) {
        case "pi":
          return scalar(complex(Math.PI));
        case "e":
          return scalar(complex(Math.E));
        case "i":
          return scalar(complex(0, 1));
        case "inf":
          return scalar(complex(Infinity));
      }
      return null;
    case "add": {
      let sum: Value | null = scalar(complex(0));
      for (const term of node.terms) sum = addValues(sum, evaluate(term, env, ctx));
      return sum;
    }
    case "neg": {
      const value = evaluate(node.arg, env, ctx);
      return value === null ? null : scaleValue(value, complex(-1));
    }
    case "mul": {
      let product: Value | null = scalar(complex(1));
      for (const factor of node.factors) product = mulValues(product, evaluate(factor, env, ctx));
      return product;
    }
    case "div":
    case "ratio": {
      const top = evaluate(node.kind === "div" ? node.num : node.left, env, ctx);
      const bottom = evaluate(node.kind === "div" ? node.den : node.right, env, ctx);
      if (top === null || bottom === null || bottom.kind !== "scalar") return null;
      return scaleValue(top, cDiv(complex(1), bottom.z));
    }
    case "pow":
      return evaluatePower(node.base, node.exp, env, ctx);
    case "percent":
      return evaluate(node.arg, env, ctx);
    case "based": {
      const base = Number(node.base);
      if (!Number.isInteger(base) || base < 2 || base > 36) {
        return scalar(env(`based:${node.digits}_${node.base}`));
      }
      const value = parseInt(node.digits, base);
      return scalar(
        complex(node.digits.split("").every((d) => parseInt(d, 36) < base) ? value : NaN),
      );
    }
    case "func":
      return evaluateFunction(node.name, node.args, env, ctx);
    case "opaque":
      return evaluateOpaque(node.name, node.args, env, ctx);
    case "matrix":
      return {
        kind: "matrix",
        rows: node.rows.map((row) => row.map((cell) => toScalar(evaluate(cell, env, ctx)))),
      };
    default:
      return null;
  }
}

function addValues(a: Value | null, b: Value | null): Value | null {
  if (a === null || b === null) return null;
  if (a.kind === "scalar" && b.kind === "scalar") return scalar(cAdd(a.z, b.z));
  if (a.kind === "matrix" && b.kind === "matrix") {
    if (a.rows.length !== b.rows.length) return null;
    const rows = a.rows.map((row, r) => {
      const other = b.rows[r] ?? [];
      return row.length === other.length ? row.map((z, c) => cAdd(z, other[c] as Complex)) : null;
    });
    return rows.some((row) => row === null) ? null : { kind: "matrix", rows: rows as Complex[][] };
  }
  // scalar + matrix is not defined; the zero that starts a sum is the exception.
  if (a.kind === "scalar" && a.z.re === 0 && a.z.im === 0) return b;
  return null;
}

function scaleValue(value: Value, factor: Complex): Value {
  if (value.kind === "scalar") return scalar(cMul(value.z, factor));
  return { kind: "matrix", rows: value.rows.map((row) => row.map((z) => cMul(z, factor))) };
}

function mulValues(a: Value | null, b: Value | null): Value | null {
  if (a === null || b === null) return null;
  if (a.kind === "scalar") return scaleValue(b, a.z);
  if (b.kind === "scalar") return scaleValue(a, b.z);
  const inner = a.rows[0]?.length ?? 0;
  if (inner !== b.rows.length) return null;
  const width = b.rows[0]?.length ?? 0;
  return {
    kind: "matrix",
    rows: a.rows.map((row) =>
      Array.from({ length: width }, (_, c) => {
        let sum = complex(0);
        for (let k = 0; k < inner; k++) {
          sum = cAdd(sum, cMul(row[k] as Complex, b.rows[k]?.[c] as Complex));
        }
        return sum;
      })
    ),
  };
}

function evaluatePower(
  baseNode: MathNode,
  exponentNode: MathNode,
  env: (name: string) => Complex,
  ctx: Context,
): Value | null {
  const base = evaluate(baseNode, env, ctx);
  if (base === null) return null;
  const exactExponent = hasSymbols(exponentNode) ? null : exactValue(exponentNode, ctx);
  if (base.kind === "matrix") {
    if (
      exactExponent === null || exactExponent.d !== 1n || exactExponent.n < 1n ||
      exactExponent.n > 16n
    ) {
      return null;
    }
    let result: Value | null = base;
    for (let k = 1n; k < exactExponent.n; k++) result = mulValues(result, base);
    return result;
  }
  const z = base.z;
  if (
    exactExponent !== null && z.im === 0 && z.re < 0 && exactExponent.d % 2n === 1n &&
    exactExponent.d > 1n
  ) {
    // A real odd root of a negative number: (-8)^{1/3} = -2.
    const magnitude = Math.pow(-z.re, ratToNumber(exactExponent));
    return scalar(complex(exactExponent.n % 2n === 0n ? magnitude : -magnitude));
  }
  const exponent = exactExponent !== null
    ? complex(ratToNumber(exactExponent))
    : toScalar(evaluate(exponentNode, env, ctx));
  return scalar(cPow(z, exponent));
}

function realOnly(z: Complex, f: (x: number) => number): Complex {
  if (!cIsFinite(z) || Math.abs(z.im) > 1e-12 * Math.max(1, Math.abs(z.re))) return NAN;
  return complex(f(z.re));
}

function evaluateFunction(
  name: string,
  args: MathNode[],
  env: (name: string) => Complex,
  ctx: Context,
): Value | null {
  const first = args[0];
  if (first === undefined) return null;
  const listArgs = first.kind === "tuple" || first.kind === "list" ? first.items : args;
  const values = listArgs.map((arg) => toScalar(evaluate(arg, env, ctx)));
  const z = values[0] ?? NAN;
  const w = values[1];
  switch (name) {
    case "sqrt":
      return scalar(cSqrt(z));
    case "root": {
      const index = args[1] === undefined ? null : exactValue(args[1], ctx);
      const n = index !== null
        ? ratToNumber(index)
        : toScalar(evaluate(args[1] as MathNode, env, ctx)).re;
      if (z.im === 0 && z.re < 0 && Number.isInteger(n) && n % 2 === 1) {
        return scalar(complex(-Math.pow(-z.re, 1 / n)));
      }
      return scalar(cPow(z, complex(1 / n)));
    }
    case "abs":
      return scalar(complex(cAbs(z)));
    case "floor":
      return scalar(realOnly(z, Math.floor));
    case "ceil":
      return scalar(realOnly(z, Math.ceil));
    case "sgn":
      return scalar(realOnly(z, Math.sign));
    case "sin":
      return scalar(cSin(z));
    case "cos":
      return scalar(cCos(z));
    case "tan":
      return scalar(cDiv(cSin(z), cCos(z)));
    case "cot":
      return scalar(cDiv(cCos(z), cSin(z)));
    case "sec":
      return scalar(cDiv(complex(1), cCos(z)));
    case "csc":
      return scalar(cDiv(complex(1), cSin(z)));
    case "arcsin":
      return scalar(realOnly(z, Math.asin));
    case "arccos":
      return scalar(realOnly(z, Math.acos));
    case "arctan":
      return scalar(realOnly(z, Math.atan));
    case "arccot":
      return scalar(realOnly(z, (x) => Math.atan(1 / x)));
    case "arcsec":
      return scalar(realOnly(z, (x) => Math.acos(1 / x)));
    case "arccsc":
      return scalar(realOnly(z, (x) => Math.asin(1 / x)));
    case "sinh":
      return scalar(cDiv(cSub(cExp(z), cExp(cMul(z, complex(-1)))), complex(2)));
    case "cosh":
      return scalar(cDiv(cAdd(cExp(z), cExp(cMul(z, complex(-1)))), complex(2)));
    case "tanh":
    case "coth": {
      const plus = cExp(z);
      const minus = cExp(cMul(z, complex(-1)));
      const ratio = cDiv(cSub(plus, minus), cAdd(plus, minus));
      return scalar(name === "tanh" ? ratio : cDiv(complex(1), ratio));
    }
    case "exp":
      return scalar(cExp(z));
    case "ln":
      return scalar(cLog(z));
    case "log":
      return scalar(w === undefined || args.length < 2 ? cLog(z) : cDiv(cLog(z), cLog(w)));
    case "factorial":
      return scalar(realOnly(z, (x) => gamma(x + 1)));
    case "binom": {
      if (w === undefined) return null;
      const n = realOnly(z, (x) => x).re;
      const k = realOnly(w, (x) => x).re;
      return scalar(complex(gamma(n + 1) / (gamma(k + 1) * gamma(n - k + 1))));
    }
    case "max":
    case "min": {
      const reals = values.map((v) => realOnly(v, (x) => x).re);
      return scalar(complex(name === "max" ? Math.max(...reals) : Math.min(...reals)));
    }
    case "gcd":
    case "lcm": {
      const integers = values.map((v) => realOnly(v, (x) => x).re);
      if (!integers.every((x) => Number.isSafeInteger(x))) return scalar(NAN);
      const g = (p: number, q: number): number => (q === 0 ? Math.abs(p) : g(q, p % q));
      const result = integers.reduce((
        p,
        q,
      ) => (name === "gcd" ? g(p, q) : Math.abs(p * q) / (g(p, q) || 1)));
      return scalar(complex(result));
    }
    default:
      return evaluateOpaque(name, args, env, ctx);
  }
}

/**
 * A value for something compared structurally (`f(2)`, `\int`, `\lim`): a fixed
 * pseudo-random combination of its parts, so equal parts give equal values.
 * Sums and products with small integer bounds are computed.
 */
function evaluateOpaque(
  name: string,
  args: MathNode[],
  env: (name: string) => Complex,
  ctx: Context,
): Value | null {
  if ((name === "sum" || name === "prod") && args.length === 3) {
    const computed = evaluateSeries(name, args as [MathNode, MathNode, MathNode], env, ctx);
    if (computed !== null) return computed;
  }
  let total = complex(0.5 + unitHash(hashString(name)));
  args.forEach((arg, k) => {
    const value = evaluate(arg, env, ctx);
    const part = value !== null && value.kind === "scalar"
      ? value.z
      : complex(unitHash(hashString(nodeKey(arg))) * 3);
    const weight = complex(0.5 + unitHash(hashString(`${name}#${k}`)));
    total = cAdd(total, cMul(weight, cAdd(part, cMul(part, part))));
  });
  return scalar(total);
}

function evaluateSeries(
  name: string,
  [lower, upper, body]: [MathNode, MathNode, MathNode],
  env: (name: string) => Complex,
  ctx: Context,
): Value | null {
  if (lower.kind !== "relation" || lower.ops[0] !== "=" || lower.sides[0]?.kind !== "symbol") {
    return null;
  }
  const index = lower.sides[0].name;
  const from = exactValue(lower.sides[1] as MathNode, ctx);
  const to = exactValue(upper, ctx);
  if (from === null || to === null || from.d !== 1n || to.d !== 1n || to.n - from.n > 1000n) {
    return null;
  }
  let total = complex(name === "sum" ? 0 : 1);
  for (let k = from.n; k <= to.n; k++) {
    const value = Number(k);
    const term = toScalar(
      evaluate(body, (symbol) => (symbol === index ? complex(value) : env(symbol)), ctx),
    );
    total = name === "sum" ? cAdd(total, term) : cMul(total, term);
  }
  return scalar(total);
}
