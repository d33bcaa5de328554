/**
 * A small LaTeX-and-plain-text math parser for final answers: normalizes the
 * notation models and datasets use (`\dfrac`, `\left(`, `10,\!080`, `30^\circ`,
 * `\text{ cm}`, `4.5e33`, doubled backslashes, Python escape artifacts), tokenizes,
 * and parses into a {@linkcode MathNode} tree: numbers as exact rationals, symbols,
 * sums, products, powers, functions, `±`, percentages, tuples and intervals, sets,
 * lists, matrices, relations and unions.
 *
 * The parser is a recursive-descent parser with a depth limit
 * ({@linkcode MAX_PARSE_DEPTH}); it never evaluates anything, so huge powers such as
 * `10^{10^{10}}` parse instantly. It throws `SyntaxError` on text it cannot read.
 *
 * @module
 */
import { ratFromDecimal, type Rational } from "./numeric.ts";

/** A relation between two sides; `~` is `\approx`, `in` is `\in`. */
export type RelOp = "=" | "<" | "<=" | ">" | ">=" | "!=" | "~" | "in";

/** A parsed answer. */
export type MathNode =
  /** A number literal; `decimal` when written with a decimal point or exponent. */
  | { kind: "number"; value: Rational; decimal: boolean }
  /** A variable, possibly with a subscript (`x_1`) or accent (`dot(x)`). */
  | { kind: "symbol"; name: string }
  /** `\pi`, Euler's `e`, the imaginary unit `i`, or `\infty`. */
  | { kind: "constant"; name: "pi" | "e" | "i" | "inf" }
  | { kind: "add"; terms: MathNode[] }
  | { kind: "neg"; arg: MathNode }
  /** A product; `apply` when written `f(x)`: a symbol directly followed by parentheses. */
  | { kind: "mul"; factors: MathNode[]; apply?: boolean }
  /** A quotient; `frac` when written with `\frac` (for mixed numbers such as `1\frac{4}{5}`). */
  | { kind: "div"; num: MathNode; den: MathNode; frac?: boolean }
  | { kind: "pow"; base: MathNode; exp: MathNode }
  /** `left ± right` (`left` is `null` for a leading `±`); `minus` when written `\mp`. */
  | { kind: "pm"; left: MathNode | null; right: MathNode; minus: boolean }
  | { kind: "func"; name: string; args: MathNode[] }
  | { kind: "percent"; arg: MathNode }
  /** `a:b`. */
  | { kind: "ratio"; left: MathNode; right: MathNode }
  /** A number in another base, such as `204_5`. */
  | { kind: "based"; digits: string; base: string }
  /** A bracketed sequence: a tuple, or an interval when the brackets say so. */
  | { kind: "tuple"; items: MathNode[]; open: "(" | "["; close: ")" | "]" }
  | { kind: "set"; items: MathNode[] }
  /** A comma, `and`/`or` or semicolon separated sequence outside brackets. */
  | { kind: "list"; items: MathNode[] }
  | { kind: "matrix"; rows: MathNode[][] }
  /** A chain `sides[0] ops[0] sides[1] ops[1] …`. */
  | { kind: "relation"; ops: RelOp[]; sides: MathNode[] }
  | { kind: "union"; parts: MathNode[] }
  /** Words: `\text{east}`, `Evelyn`. */
  | { kind: "text"; text: string }
  /** Something compared only structurally (`\sum`, `\int`, `\lim`, `\cap`). */
  | { kind: "opaque"; name: string; args: MathNode[] };

/** The deepest nesting the parser follows before giving up with a `SyntaxError`. */
export const MAX_PARSE_DEPTH = 600;

// --- normalization ---

const KNOWN_COMMANDS =
  "frac|dfrac|tfrac|cfrac|sqrt|left|right|boxed|text|textbf|mathrm|mathbf|le|ge|leq|geq|cdot|times|pi|infty|in|pm|mp|sin|cos|tan|log|ln|exp|cup|neq|ne|approx|circ|mbox|quad|qquad|dots|ldots|cdots|theta|alpha|beta|gamma|lambda|omega|sigma|mu|phi|binom|lfloor|rfloor|lceil|rceil|displaystyle";

/**
 * Control characters that Python escapes made of LaTeX commands in strings
 * written without a raw prefix (`"\frac"` is a form feed and `rac`), with the
 * command starts they are repaired before.
 */
const ESCAPE_ARTIFACTS: readonly [RegExp, string][] = (
  [
    [12, "rac|box", "f"],
    [9, "ext|imes|heta|au|an\\b|frac|riangle", "t"],
    [8, "oxed|egin|eta|inom|ar\\b|ig", "b"],
    [11, "ec|arepsilon|arphi|ert", "v"],
    [13, "ight|ho|angle|floor|ceil|m\\b", "r"],
    [7, "lpha|pprox|ngle|st", "a"],
  ] as const
).map(([code, next, letter]) => [
  new RegExp(`${String.fromCharCode(code)}(?=${next})`, "g"),
  `\\${letter}`,
]);

/** A placeholder for `\\` while single-backslash rules run. */
const ROW_BREAK = String.fromCharCode(1);

const UNICODE: readonly [RegExp, string][] = [
  [/[\u2212\u2013\u2014]/g, "-"],
  [/\u00d7/g, "\\times "],
  [/[\u00b7\u22c5]/g, "\\cdot "],
  [/\u00f7/g, "/"],
  [/\u03c0/g, "\\pi "],
  [/\u221e/g, "\\infty "],
  [/\u2264/g, "\\le "],
  [/\u2265/g, "\\ge "],
  [/\u2260/g, "\\ne "],
  [/\u2248/g, "\\approx "],
  // √51 is the root of 51 (LaTeX's \sqrt51 would be \sqrt{5}·1): the whole number goes under it.
  [/\u221a\s*(\d+(?:\.\d+)?)/g, "\\sqrt{$1}"],
  [/\u221a/g, "\\sqrt"],
  [/\u222a/g, "\\cup "],
  [/\u2208/g, "\\in "],
  [/\u00b0/g, "\\degree "],
  [/\u00b2/g, "^2"],
  [/\u00b3/g, "^3"],
  [/\u00b1/g, "\\pm "],
  [/[\u20ac\u00a3\u00a5]/g, " "],
  [/\u00a0/g, " "],
];

/**
 * Normalizes the notation of an answer so that equivalent spellings tokenize the
 * same way: unwraps math delimiters, removes sizing and spacing commands, joins
 * thousands separators (`10,\!080` → `10080`), maps `\dfrac` to `\frac`, degrees
 * to `\degree`, repairs doubled backslashes and Python escape artifacts.
 */
export function normalizeLatex(text: string): string {
  let s = text;
  for (const [pattern, replacement] of ESCAPE_ARTIFACTS) s = s.replace(pattern, replacement);
  for (const [pattern, replacement] of UNICODE) s = s.replace(pattern, replacement);
  // Doubled backslashes before a command name (raw strings written with `\\frac`).
  s = s.replace(new RegExp(`(?<!\\\\)\\\\\\\\(?=(?:${KNOWN_COMMANDS})(?![a-zA-Z]))`, "g"), "\\");
  // A literal backslash-n (two characters) is a newline, not `\n…`.
  s = s.replace(/\\n(?![a-zA-Z])/g, " ");
  // Protect row breaks (\\) from the single-backslash rules below.
  s = s.replaceAll("\\\\", ROW_BREAK);
  // Thousands separators written with LaTeX spacing: 10,\!080  14{,}916  1\,000.
  s = s.replace(
    /(\d)\s*(?:\{\s*,\s*\}|,\s*\\!|\\!\s*,|,\s*\\,|\\,|\\!|\\;)\s*(?=\d{3}(?!\d))/g,
    "$1",
  );
  s = s.replace(/\\(?:left|right)\s*\./g, " ");
  s = s.replace(
    /\\(?:left|right|middle|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|bigg|Bigg|big|Big)(?![a-zA-Z])/g,
    "",
  );
  s = s.replace(/\\(?:hspace|vspace|phantom|hphantom|vphantom)\*?\s*\{[^{}]*\}/g, " ");
  s = s.replace(/\\[,:;! ]/g, " ");
  s = s.replace(/~/g, " ");
  s = s.replace(
    /\\(?:qquad|quad|displaystyle|textstyle|scriptstyle|limits|nolimits|hfill|allowbreak|nobreak|rm|bf|it|small|large|Large|normalsize)(?![a-zA-Z])/g,
    " ",
  );
  s = s.replace(/\\(?:d|t|c)frac(?![a-zA-Z])/g, "\\frac");
  s = s.replace(/\\(?:d|t)binom(?![a-zA-Z])/g, "\\binom");
  s = s.replace(/\\operatorname\*?\s*\{\s*([a-zA-Z]+)\s*\}/g, "\\$1 ");
  s = s.replace(/\\\$/g, " ");
  s = s.replace(/\$/g, " ");
  s = s.replace(/(?<!\\)\\[()[\]]/g, " ");
  s = s.replace(/\b(?:np|sp|math|sympy)\.(?=[a-z])/g, "");
  s = s.replace(/\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![a-zA-Z])/g, "\\degree ");
  s = s.replaceAll(ROW_BREAK, "\\\\");
  s = s.replace(
    /\^\s*\{\s*((?:\\prime\s*)+)\}/g,
    (_m, primes: string) => "'".repeat(primes.split("\\prime").length - 1),
  );
  s = s.replace(/\\prime(?![a-zA-Z])/g, "'");
  s = s.replace(/\\cdotp(?![a-zA-Z])/g, "\\cdot");
  return s.trim();
}

// --- tokenizer ---

interface Token {
  t: "num" | "word" | "cmd" | "op" | "text" | "begin" | "end";
  v: string;
  /** Whether white space came before the token. */
  sp: boolean;
}

const TEXT_COMMANDS = new Set(
  "text textbf textit textrm textnormal textsf texttt textup textmd mbox hbox emph".split(" "),
);

const CONNECTOR_WORDS = new Set(["and", "or"]);
const PERCENT_WORDS = new Set(["percent", "percentage", "pct", "percents"]);

/** Reads a brace group starting at `s[i] === "{"`; returns its content and the index after it. */
function readBraces(s: string, i: number): [string, number] | null {
  let depth = 0;
  for (let j = i; j < s.length; j++) {
    const c = s[j];
    if (c === "\\") {
      j++;
      continue;
    }
    if (c === "{") depth++;
    else if (c === "}") {
      depth--;
      if (depth === 0) return [s.slice(i + 1, j), j + 1];
    }
  }
  return null;
}

const NUMBER_INT = /\d+/y;
const THOUSANDS_GROUP = /,\d{3}(?!\d)/y;
const SPACE_GROUP = / \d{3}(?![\d,])/y;
const FRACTION_PART = /\.\d+/y;
const EXPONENT_PART = /[eE][+-]?\d+(?![a-zA-Z\d])/y;
const WORD = /[a-zA-Z]+/y;
const COMMAND = /\\([a-zA-Z]+)\*?/y;

function previousNonSpace(s: string, i: number): string {
  for (let j = i - 1; j >= 0; j--) if (s[j] !== " ") return s[j] ?? "";
  return "";
}

function nextNonSpace(s: string, i: number): string {
  for (let j = i; j < s.length; j++) if (s[j] !== " ") return s[j] ?? "";
  return "";
}

function matchAt(pattern: RegExp, s: string, i: number): string | null {
  pattern.lastIndex = i;
  const match = pattern.exec(s);
  return match === null ? null : match[0];
}

/** Lexes a number at `s[i]`; returns the normalized literal and the index after it. */
function lexNumber(s: string, i: number): [string, number] {
  let j = i;
  let literal = "";
  const integer = matchAt(NUMBER_INT, s, j);
  if (integer !== null) {
    literal = integer;
    j += integer.length;
    const before = previousNonSpace(s, i);
    const insideBrackets = "([{,;".includes(before) && before !== "";
    if (integer.length <= 3 && integer[0] !== "0") {
      // 7,425,000 (not inside brackets or lists, where the comma separates items)
      let k = j;
      let groups = "";
      for (let g = matchAt(THOUSANDS_GROUP, s, k); g !== null; g = matchAt(THOUSANDS_GROUP, s, k)) {
        groups += g.slice(1);
        k += g.length;
      }
      const after = nextNonSpace(s, k);
      const listContinues = s[k] === "," && /\d/.test(s[k + 1] ?? "");
      if (groups !== "" && !insideBrackets && !")]}".includes(after || "#") && !listContinues) {
        literal += groups;
        j = k;
      } else if (groups === "") {
        // 1 000 (a space as thousands separator)
        let spaced = "";
        for (let g = matchAt(SPACE_GROUP, s, k); g !== null; g = matchAt(SPACE_GROUP, s, k)) {
          spaced += g.slice(1);
          k += g.length;
        }
        if (spaced !== "" && !insideBrackets) {
          literal += spaced;
          j = k;
        }
      }
    }
  }
  const fraction = matchAt(FRACTION_PART, s, j);
  if (fraction !== null) {
    literal += fraction;
    j += fraction.length;
  } else if (integer !== null && s[j] === "." && "/*".includes(nextNonSpace(s, j + 1) || "#")) {
    literal += ".";
    j += 1;
  }
  const exponent = matchAt(EXPONENT_PART, s, j);
  if (exponent !== null) {
    literal += exponent;
    j += exponent.length;
  }
  return [literal, j];
}

/** Splits normalized LaTeX into tokens; throws `SyntaxError` on an unclosed `\text{`. */
function tokenize(s: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let sp = false;
  const push = (t: Token["t"], v: string): void => {
    tokens.push({ t, v, sp });
    sp = false;
  };
  while (i < s.length) {
    const c = s[i] ?? "";
    if (/\s/.test(c)) {
      sp = true;
      i++;
      continue;
    }
    if (/\d/.test(c) || (c === "." && /\d/.test(s[i + 1] ?? ""))) {
      const [literal, next] = lexNumber(s, i);
      push("num", literal);
      i = next;
      continue;
    }
    if (/[a-zA-Z]/.test(c)) {
      const word = matchAt(WORD, s, i) ?? c;
      const lower = word.toLowerCase();
      if (CONNECTOR_WORDS.has(lower)) push("op", "and");
      else if (PERCENT_WORDS.has(lower)) push("op", "%");
      else push("word", word);
      i += word.length;
      continue;
    }
    if (c === "\\") {
      const command = matchAt(COMMAND, s, i);
      if (command === null) {
        const symbol = s[i + 1] ?? "";
        i += 2;
        if (symbol === "\\") push("op", "\\\\");
        else if (symbol === "{" || symbol === "}") push("op", `\\${symbol}`);
        else if (symbol === "|") push("op", "||");
        else if (symbol === "%") push("op", "%");
        else if (symbol !== "") push("op", symbol);
        continue;
      }
      const name = command.replace(/^\\/, "").replace(/\*$/, "");
      i += command.length;
      if (TEXT_COMMANDS.has(name) || name === "begin" || name === "end") {
        while (s[i] === " ") i++;
        let content: string;
        if (s[i] === "{") {
          const group = readBraces(s, i);
          if (group === null) throw new SyntaxError(`Cannot parse answer: unclosed \\${name}{`);
          content = group[0];
          i = group[1];
        } else {
          content = s[i] ?? "";
          i++;
        }
        if (name === "begin" || name === "end") {
          push(name, content.replace(/\*$/, "").trim());
          continue;
        }
        const trimmed = content.trim().toLowerCase();
        if (CONNECTOR_WORDS.has(trimmed) || trimmed === "," || trimmed === "and/or") {
          push("op", "and");
        } else if (PERCENT_WORDS.has(trimmed) || trimmed === "%" || trimmed === "\\%") {
          push("op", "%");
        } else if (trimmed === "") continue;
        else push("text", content);
        continue;
      }
      if (name === "mathrm" || name === "mathit" || name === "operatorname") {
        let k = i;
        while (s[k] === " ") k++;
        const group = s[k] === "{" ? readBraces(s, k) : null;
        const content = group === null ? "" : group[0].trim();
        if (group !== null && FUNCTIONS.has(content)) {
          push("cmd", content);
          i = group[1];
          continue;
        }
        // \mathrm{cm}, \mathrm{ergs/s}, \mathrm{m}: a unit (or a word); not \mathrm{e}, \mathrm{d}.
        if (
          group !== null && /^[a-zA-Z][a-zA-Z\s/^\-\d.]*$/.test(content) && !/^[eid]$/.test(content)
        ) {
          push("text", content);
          i = group[1];
          continue;
        }
      }
      push("cmd", name);
      continue;
    }
    const two = s.slice(i, i + 2);
    if (
      two === "<=" || two === ">=" || two === "!=" || two === "=<" || two === "=>" || two === "**"
    ) {
      push("op", two === "=<" ? "<=" : two === "**" ? "^" : two);
      i += 2;
      continue;
    }
    if (two === ":=") {
      push("op", "=");
      i += 2;
      continue;
    }
    push("op", c);
    i++;
  }
  return tokens;
}

// --- parser ---

const RELATION_COMMANDS: Record<string, RelOp> = {
  le: "<=",
  leq: "<=",
  leqslant: "<=",
  leqq: "<=",
  ge: ">=",
  geq: ">=",
  geqslant: ">=",
  geqq: ">=",
  lt: "<",
  gt: ">",
  ne: "!=",
  neq: "!=",
  approx: "~",
  simeq: "~",
  thickapprox: "~",
  equiv: "=",
  in: "in",
};

const RELATION_OPS: Record<string, RelOp> = {
  "=": "=",
  "<": "<",
  ">": ">",
  "<=": "<=",
  ">=": ">=",
  "!=": "!=",
};

const FUNCTIONS = new Set(
  ("sin cos tan cot sec csc arcsin arccos arctan arccot arcsec arccsc asin acos atan " +
    "sinh cosh tanh coth log ln lg exp sqrt abs floor ceil max min gcd lcm det sgn")
    .split(" "),
);

const INVERSE_TRIG: Record<string, string> = {
  sin: "arcsin",
  cos: "arccos",
  tan: "arctan",
  cot: "arccot",
  sec: "arcsec",
  csc: "arccsc",
};

const STYLE_COMMANDS = new Set(
  ("mathrm mathbf mathit mathsf mathtt mathnormal boldsymbol bm mathbb mathcal mathfrak " +
    "mathscr pmb boxed fbox underline cancel color")
    .split(" "),
);

const ACCENT_COMMANDS = new Set(
  ("overline bar hat widehat vec dot ddot tilde widetilde overrightarrow overleftarrow " +
    "overleftrightarrow acute check breve mathring overarc arc")
    .split(" "),
);

const NON_PRIMARY_COMMANDS = new Set([
  ...Object.keys(RELATION_COMMANDS),
  ...("notin sim cong cup cap setminus pm mp cdot times div ast rfloor rceil rangle " +
    "rvert rVert to rightarrow Rightarrow implies iff Leftrightarrow mid colon degree " +
    "circ quad qquad wedge vee land lor neg forall exists pmod bmod mod not").split(" "),
]);

const MATRIX_ENVIRONMENTS = new Set(
  "matrix pmatrix bmatrix Bmatrix vmatrix Vmatrix smallmatrix array".split(" "),
);

/** Words after a number that are units, dropped from the value (`5 cm` is 5). */
const UNIT_WORDS = new Set(
  ("cup cups pie pies box egg eggs cm mm km kg mg ml hours hour hr hrs minutes minute mins min seconds second sec secs days day " +
    "weeks week years year yrs months month meters meter metres metre miles mile mi feet foot ft " +
    "inches inch yards yard yd units unit dollars dollar cents cent yuan euros euro pounds pound " +
    "lbs lb oz ounces ounce gallons gallon liters liter litres litre degrees degree deg radians " +
    "radian rad sq square cubic mph kph kmh ergs erg joules joule watts watt volts volt kelvin " +
    "newtons grams gram kilograms kilogram times ways people students points")
    .split(" "),
);

const GREEK_AND_SYMBOLS = new Set(
  ("alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi " +
    "omicron rho varrho sigma varsigma tau upsilon phi varphi chi psi omega Gamma Delta Theta " +
    "Lambda Xi Pi Sigma Upsilon Phi Psi Omega hbar ell mho aleph nabla partial angle triangle " +
    "odot star S P")
    .split(" "),
);

function num(value: Rational, decimal = false): MathNode {
  return { kind: "number", value, decimal };
}

/** A deterministic string for a node, used for structural comparison and symbol names. */
export function nodeKey(node: MathNode): string {
  switch (node.kind) {
    case "number":
      return node.value.d === 1n ? `${node.value.n}` : `${node.value.n}/${node.value.d}`;
    case "symbol":
      return node.name;
    case "constant":
      return `#${node.name}`;
    case "add":
      return `(+ ${node.terms.map(nodeKey).join(" ")})`;
    case "neg":
      return `(- ${nodeKey(node.arg)})`;
    case "mul":
      return `(* ${node.factors.map(nodeKey).join(" ")})`;
    case "div":
      return `(/ ${nodeKey(node.num)} ${nodeKey(node.den)})`;
    case "pow":
      return `(^ ${nodeKey(node.base)} ${nodeKey(node.exp)})`;
    case "pm":
      return `(${node.minus ? "mp" : "pm"} ${node.left === null ? "_" : nodeKey(node.left)} ${
        nodeKey(node.right)
      })`;
    case "func":
    case "opaque":
      return `(${node.name} ${node.args.map(nodeKey).join(" ")})`;
    case "percent":
      return `(% ${nodeKey(node.arg)})`;
    case "ratio":
      return `(: ${nodeKey(node.left)} ${nodeKey(node.right)})`;
    case "based":
      return `${node.digits}_${node.base}`;
    case "tuple":
      return `${node.open}${node.items.map(nodeKey).join(",")}${node.close}`;
    case "set":
      return `{${node.items.map(nodeKey).join(",")}}`;
    case "list":
      return `[${node.items.map(nodeKey).join(",")}]`;
    case "matrix":
      return `M[${node.rows.map((row) => row.map(nodeKey).join("&")).join(";")}]`;
    case "relation": {
      let out = nodeKey(node.sides[0] ?? { kind: "text", text: "" });
      node.ops.forEach((op, k) => {
        out += ` ${op} ${nodeKey(node.sides[k + 1] ?? { kind: "text", text: "" })}`;
      });
      return `(${out})`;
    }
    case "union":
      return `(U ${node.parts.map(nodeKey).join(" ")})`;
    case "text":
      return `"${node.text}"`;
  }
}

/** What the parser noticed besides the tree. */
export interface ParseInfo {
  /** Whether bare prose words (three letters or more, not units or functions) were read. */
  prose: boolean;
}

class Parser {
  #tokens: Token[];
  #pos = 0;
  #depth = 0;
  #absDepth = 0;
  info: ParseInfo = { prose: false };

  constructor(tokens: Token[]) {
    this.#tokens = tokens;
  }

  #peek(offset = 0): Token | undefined {
    return this.#tokens[this.#pos + offset];
  }

  #is(t: Token["t"], v?: string, offset = 0): boolean {
    const token = this.#peek(offset);
    return token !== undefined && token.t === t && (v === undefined || token.v === v);
  }

  #next(): Token {
    const token = this.#tokens[this.#pos];
    if (token === undefined) throw new SyntaxError("Cannot parse answer: unexpected end");
    this.#pos++;
    return token;
  }

  #expect(t: Token["t"], v: string): void {
    if (!this.#is(t, v)) {
      throw new SyntaxError(
        `Cannot parse answer: expected "${v}": current value is ${this.#describe()}`,
      );
    }
    this.#pos++;
  }

  #describe(): string {
    const token = this.#peek();
    return token === undefined ? "the end" : `"${token.v}"`;
  }

  #enter(): void {
    if (++this.#depth > MAX_PARSE_DEPTH) {
      throw new SyntaxError(`Cannot parse answer: nesting deeper than ${MAX_PARSE_DEPTH}`);
    }
  }

  #leave(): void {
    this.#depth--;
  }

  /** Parses the whole token list as an answer. */
  parseAnswer(): MathNode {
    const node = this.#parseSequence(null);
    while (this.#is("op", ".") || this.#is("op", ",") || this.#is("op", ";")) this.#pos++;
    if (this.#pos < this.#tokens.length) {
      throw new SyntaxError(`Cannot parse answer: unexpected ${this.#describe()}`);
    }
    return node;
  }

  #atSeparator(): boolean {
    return this.#is("op", ",") || this.#is("op", "and") || this.#is("op", ";");
  }

  #atCloser(closers: readonly string[] | null): boolean {
    const token = this.#peek();
    if (token === undefined) return true;
    if (closers === null) return false;
    return (token.t === "op" || token.t === "cmd") && closers.includes(token.v);
  }

  /**
   * Parses items separated by `,`, `;`, `and`, `or` until one of `closers` (or the
   * end); semicolon-separated groups of several items become nested lists.
   */
  #parseSequence(closers: readonly string[] | null): MathNode {
    this.#enter();
    const groups: MathNode[][] = [];
    let current: MathNode[] = [];
    let sawSemicolon = false;
    const atEnd = (): boolean =>
      this.#atCloser(closers) ||
      (closers === null && this.#is("op", ".") && this.#peek(1) === undefined);
    while (true) {
      if (atEnd()) break;
      current.push(this.#parseItem());
      if (!this.#atSeparator()) break;
      while (this.#atSeparator()) {
        if (this.#is("op", ";")) {
          sawSemicolon = true;
          groups.push(current);
          current = [];
        }
        this.#pos++;
      }
    }
    groups.push(current);
    this.#leave();
    const nonEmpty = groups.filter((group) => group.length > 0);
    if (nonEmpty.length === 0) throw new SyntaxError("Cannot parse answer: empty");
    const items = sawSemicolon
      ? nonEmpty.map((group): MathNode =>
        group.length === 1 ? group[0] as MathNode : { kind: "list", items: group }
      )
      : nonEmpty[0] ?? [];
    return items.length === 1 ? items[0] as MathNode : { kind: "list", items };
  }

  #relationAt(): RelOp | null {
    const token = this.#peek();
    if (token === undefined) return null;
    if (token.t === "op") return RELATION_OPS[token.v] ?? null;
    if (token.t === "cmd") return RELATION_COMMANDS[token.v] ?? null;
    return null;
  }

  #parseItem(): MathNode {
    this.#enter();
    const first = this.#parseUnion();
    const ops: RelOp[] = [];
    const sides = [first];
    for (let op = this.#relationAt(); op !== null; op = this.#relationAt()) {
      this.#pos++;
      ops.push(op);
      sides.push(this.#parseUnion());
    }
    this.#leave();
    return ops.length === 0 ? first : { kind: "relation", ops, sides };
  }

  #parseUnion(): MathNode {
    let node = this.#parseRatio();
    const parts = [node];
    while (this.#is("cmd", "cup") || this.#is("cmd", "cap") || this.#is("cmd", "setminus")) {
      const op = this.#next().v;
      const right = this.#parseRatio();
      if (op === "cup") parts.push(right);
      else {
        node = {
          kind: "opaque",
          name: op,
          args: [parts.length === 1 ? node : { kind: "union", parts: [...parts] }, right],
        };
        parts.splice(0, parts.length, node);
      }
    }
    return parts.length === 1 ? parts[0] as MathNode : { kind: "union", parts };
  }

  #parseRatio(): MathNode {
    let node = this.#parseAdd();
    while (this.#is("op", ":") && !this.#is("op", "=", 1)) {
      this.#pos++;
      node = { kind: "ratio", left: node, right: this.#parseAdd() };
    }
    return node;
  }

  #parseAdd(): MathNode {
    this.#enter();
    let terms: MathNode[] = [this.#parseMul()];
    while (true) {
      if (this.#is("op", "+")) {
        this.#pos++;
        terms.push(this.#parseMul());
      } else if (this.#is("op", "-")) {
        this.#pos++;
        terms.push({ kind: "neg", arg: this.#parseMul() });
      } else if (this.#is("cmd", "pm") || this.#is("cmd", "mp")) {
        const minus = this.#next().v === "mp";
        const left = terms.length === 1 ? terms[0] as MathNode : { kind: "add", terms } as MathNode;
        terms = [{ kind: "pm", left, right: this.#parseMul(), minus }];
      } else break;
    }
    this.#leave();
    return terms.length === 1 ? terms[0] as MathNode : { kind: "add", terms };
  }

  #startsPrimary(): boolean {
    const token = this.#peek();
    if (token === undefined) return false;
    switch (token.t) {
      case "num":
      case "word":
      case "text":
      case "begin":
        return true;
      case "cmd":
        return !NON_PRIMARY_COMMANDS.has(token.v);
      case "op":
        return token.v === "(" || token.v === "[" || token.v === "{" || token.v === "\\{" ||
          (token.v === "|" && this.#absDepth === 0) || token.v === "||";
      default:
        return false;
    }
  }

  #parseMul(): MathNode {
    this.#enter();
    let factors: MathNode[] = [this.#parseUnary()];
    let apply = false;
    const product = (): MathNode =>
      factors.length === 1
        ? factors[0] as MathNode
        : { kind: "mul", factors, ...(apply ? { apply } : {}) };
    while (true) {
      if (
        this.#is("op", "*") || this.#is("cmd", "cdot") || this.#is("cmd", "times") ||
        this.#is("cmd", "ast")
      ) {
        this.#pos++;
        factors.push(this.#parseUnary());
      } else if (this.#is("op", "/") || this.#is("cmd", "div")) {
        this.#pos++;
        const den = this.#parseUnary();
        factors = [{ kind: "div", num: product(), den }];
        apply = false;
      } else if (this.#isUnitAhead(factors)) {
        this.#skipUnit();
      } else if (this.#startsPrimary()) {
        const token = this.#peek();
        const previous = factors[factors.length - 1];
        const applies = token !== undefined && token.t === "op" && token.v === "(" && !token.sp &&
          factors.length === 1 && previous?.kind === "symbol";
        const factor = this.#parsePostfix(true);
        // 1\frac{4}{5} is the mixed number 1 + 4/5, and -3\frac{8}{9} is -(3 + 8/9).
        const whole = previous?.kind === "neg" ? previous.arg : previous;
        if (
          factors.length === 1 && whole?.kind === "number" && !whole.decimal &&
          whole.value.d === 1n && factor.kind === "div" && factor.frac === true &&
          factor.num.kind === "number" && factor.den.kind === "number" && !factor.num.decimal &&
          !factor.den.decimal
        ) {
          const mixed: MathNode = {
            kind: "add",
            terms: [whole, whole.value.n < 0n ? { kind: "neg", arg: factor } : factor],
          };
          factors = [previous?.kind === "neg" ? { kind: "neg", arg: mixed } : mixed];
          continue;
        }
        if (applies && factor.kind === "number" && previous !== undefined) {
          factors = [{ kind: "opaque", name: "apply", args: [previous, factor] }];
          continue;
        }
        if (applies) apply = true;
        factors.push(factor);
      } else break;
    }
    this.#leave();
    return product();
  }

  /** Whether the next token is a unit after a value (`5 \text{ cm}`, `125 miles`). */
  #isUnitAhead(factors: MathNode[]): boolean {
    const token = this.#peek();
    if (token === undefined || factors.length === 0) return false;
    if (factors.every((factor) => factor.kind === "text")) return false;
    if (token.t === "text") {
      return !/^\s*\(\s*[A-Za-z]\s*\)\s*$/.test(token.v) && !isNumericText(token.v);
    }
    if (token.t === "word") {
      if (UNIT_WORDS.has(token.v.toLowerCase()) && !this.#is("op", "(", 1)) return true;
      return token.v.length >= 4 && !FUNCTIONS.has(token.v.toLowerCase()) &&
        !this.#is("op", "(", 1) && !this.#is("op", "^", 1) && !this.#is("op", "_", 1);
    }
    return false;
  }

  /** Skips a unit and what belongs to it: `cm^2`, `\mathrm{m} \mathrm{s}^{-1}`, `erg/s`. */
  #skipUnit(): void {
    const token = this.#next();
    if (token.t === "word" && !UNIT_WORDS.has(token.v.toLowerCase())) this.info.prose = true;
    while (true) {
      if (this.#is("op", "^")) {
        this.#pos++;
        this.#parseExponent();
      } else if (
        (this.#is("op", "/") || this.#is("cmd", "cdot")) &&
        (this.#is("word", undefined, 1) || this.#is("text", undefined, 1))
      ) {
        this.#pos += 2;
      } else if (
        this.#is("text") ||
        (this.#is("word") && UNIT_WORDS.has((this.#peek()?.v ?? "").toLowerCase()))
      ) {
        this.#pos++;
      } else break;
    }
  }

  #parseUnary(): MathNode {
    this.#enter();
    let node: MathNode;
    if (this.#is("op", "-")) {
      this.#pos++;
      node = { kind: "neg", arg: this.#parseUnary() };
    } else if (this.#is("op", "+")) {
      this.#pos++;
      node = this.#parseUnary();
    } else if (this.#is("cmd", "pm") || this.#is("cmd", "mp")) {
      const minus = this.#next().v === "mp";
      node = { kind: "pm", left: null, right: this.#parseUnary(), minus };
    } else node = this.#parsePostfix(false);
    this.#leave();
    return node;
  }

  #parsePostfix(inProduct: boolean): MathNode {
    this.#enter();
    let node = this.#parsePrimary(inProduct);
    while (true) {
      if (this.#is("op", "^")) {
        this.#pos++;
        if (this.#is("cmd", "degree") || this.#is("cmd", "circ")) {
          this.#pos++;
          continue;
        }
        node = { kind: "pow", base: node, exp: this.#parseExponent() };
      } else if (this.#is("op", "_")) {
        this.#pos++;
        node = applySubscript(node, this.#parseSubscriptText());
      } else if (this.#is("op", "!") && !this.#is("op", "=", 1)) {
        this.#pos++;
        node = { kind: "func", name: "factorial", args: [node] };
      } else if (this.#is("op", "%")) {
        this.#pos++;
        node = { kind: "percent", arg: node };
      } else if (this.#is("op", "'")) {
        this.#pos++;
        node = node.kind === "symbol"
          ? { kind: "symbol", name: `${node.name}'` }
          : { kind: "opaque", name: "prime", args: [node] };
      } else if (this.#is("cmd", "degree") || this.#is("cmd", "circ")) {
        this.#pos++;
      } else break;
    }
    this.#leave();
    return node;
  }

  #parseExponent(): MathNode {
    this.#enter();
    let node: MathNode;
    const token = this.#peek();
    if (token === undefined) throw new SyntaxError("Cannot parse answer: missing exponent");
    if (token.t === "op" && token.v === "{") {
      this.#pos++;
      node = this.#parseSequence(["}"]);
      this.#expect("op", "}");
    } else if (token.t === "num") {
      this.#pos++;
      node = numberNode(token.v);
    } else if (token.t === "word") {
      node = this.#peelLetter();
    } else if (token.t === "op" && (token.v === "-" || token.v === "+")) {
      this.#pos++;
      const inner = this.#parseExponent();
      node = token.v === "-" ? { kind: "neg", arg: inner } : inner;
    } else node = this.#parsePrimary(false);
    this.#leave();
    return node;
  }

  #parseSubscriptText(): string {
    const token = this.#peek();
    if (token === undefined) throw new SyntaxError("Cannot parse answer: missing subscript");
    if (token.t === "op" && token.v === "{") {
      this.#pos++;
      let depth = 1;
      let text = "";
      while (true) {
        const inner = this.#next();
        if (inner.t === "op" && inner.v === "{") depth++;
        if (inner.t === "op" && inner.v === "}" && --depth === 0) break;
        text += inner.t === "cmd" ? inner.v : inner.v;
        if (text.length > 200) throw new SyntaxError("Cannot parse answer: subscript too long");
      }
      return text;
    }
    if (token.t === "num") {
      this.#pos++;
      return token.v;
    }
    if (token.t === "word") {
      const letter = this.#peelLetter();
      return letter.kind === "symbol"
        ? letter.name
        : letter.kind === "constant"
        ? letter.name
        : "?";
    }
    this.#pos++;
    return token.v;
  }

  /** Takes the first letter of a word token as a symbol (or `e`, `i`). */
  #peelLetter(): MathNode {
    const token = this.#peek();
    if (token === undefined || token.t !== "word") {
      throw new SyntaxError("Cannot parse answer: expected a letter");
    }
    const letter = token.v[0] ?? "";
    if (token.v.length === 1) this.#pos++;
    else this.#tokens[this.#pos] = { t: "word", v: token.v.slice(1), sp: false };
    return letterNode(letter);
  }

  /** A single-character argument (`\frac12`, `\sqrt3`) or a braced group. */
  #parseArgument(): MathNode {
    const token = this.#peek();
    if (token === undefined) throw new SyntaxError("Cannot parse answer: missing argument");
    if (token.t === "op" && token.v === "{") {
      this.#pos++;
      const node = this.#parseSequence(["}"]);
      this.#expect("op", "}");
      return node;
    }
    if (token.t === "num") {
      const digit = token.v[0] ?? "";
      if (token.v.length === 1 || !/\d/.test(digit)) {
        this.#pos++;
        return numberNode(token.v);
      }
      this.#tokens[this.#pos] = { t: "num", v: token.v.slice(1), sp: false };
      return numberNode(digit);
    }
    if (token.t === "word") return this.#peelLetter();
    return this.#parsePrimary(false);
  }

  #parsePrimary(inProduct: boolean): MathNode {
    this.#enter();
    const node = this.#parsePrimaryInner(inProduct);
    this.#leave();
    return node;
  }

  #parsePrimaryInner(inProduct: boolean): MathNode {
    const token = this.#peek();
    if (token === undefined) throw new SyntaxError("Cannot parse answer: unexpected end");
    switch (token.t) {
      case "num":
        this.#pos++;
        return numberNode(token.v);
      case "word":
        return this.#parseWord(token.v, inProduct);
      case "text":
        this.#pos++;
        return textNode(token.v);
      case "begin":
        this.#pos++;
        return this.#parseEnvironment(token.v);
      case "end":
        throw new SyntaxError(`Cannot parse answer: unexpected \\end{${token.v}}`);
      case "cmd":
        this.#pos++;
        return this.#parseCommand(token.v);
      case "op":
        return this.#parseOperatorPrimary(token.v);
    }
  }

  #parseWord(word: string, inProduct: boolean): MathNode {
    const lower = word.toLowerCase();
    if (
      FUNCTIONS.has(lower) &&
      (this.#is("op", "(", 1) || this.#is("op", "^", 1) || this.#is("op", "_", 1) ||
        lower.length > 2)
    ) {
      this.#pos++;
      return this.#parseFunction(
        lower === "asin"
          ? "arcsin"
          : lower === "acos"
          ? "arccos"
          : lower === "atan"
          ? "arctan"
          : lower,
      );
    }
    if (lower === "pi") {
      this.#pos++;
      return { kind: "constant", name: "pi" };
    }
    if (lower === "infty" || lower === "infinity" || lower === "inf" || lower === "oo") {
      this.#pos++;
      return { kind: "constant", name: "inf" };
    }
    if (word.length === 1 || word.length === 2) return this.#peelLetter();
    const next = this.#peek(1);
    const mathy = next !== undefined && next.t === "op" &&
      (next.v === "^" || next.v === "_" || (next.v === "(" && !next.sp));
    if (!UNIT_WORDS.has(lower)) this.info.prose = true;
    if (word.length === 3 && (inProduct || mathy)) return this.#peelLetter();
    this.#pos++;
    return { kind: "text", text: lower };
  }

  #parseOperatorPrimary(op: string): MathNode {
    switch (op) {
      case "(":
      case "[": {
        this.#pos++;
        return this.#parseBracket(op);
      }
      case "{": {
        this.#pos++;
        const inner = this.#parseSequence(["}"]);
        this.#expect("op", "}");
        return inner.kind === "list" ? { kind: "set", items: inner.items } : inner;
      }
      case "\\{": {
        this.#pos++;
        if (this.#is("op", "\\}")) {
          this.#pos++;
          return { kind: "set", items: [] };
        }
        const inner = this.#parseSequence(["\\}"]);
        this.#expect("op", "\\}");
        return { kind: "set", items: inner.kind === "list" ? inner.items : [inner] };
      }
      case "|": {
        this.#pos++;
        this.#absDepth++;
        const inner = this.#parseItem();
        this.#absDepth--;
        this.#expect("op", "|");
        return { kind: "func", name: "abs", args: [inner] };
      }
      case "||": {
        this.#pos++;
        this.#absDepth++;
        const inner = this.#parseItem();
        this.#absDepth--;
        this.#expect("op", "||");
        return { kind: "func", name: "abs", args: [inner] };
      }
      default:
        throw new SyntaxError(`Cannot parse answer: unexpected "${op}"`);
    }
  }

  #parseBracket(open: "(" | "["): MathNode {
    const items: MathNode[] = [];
    let separated = false;
    while (true) {
      if (this.#is("op", ")") || this.#is("op", "]")) break;
      items.push(this.#parseItem());
      if (this.#is("op", ",") || this.#is("op", ";")) {
        this.#pos++;
        separated = true;
        continue;
      }
      break;
    }
    const close = this.#next();
    if (close.t !== "op" || (close.v !== ")" && close.v !== "]")) {
      throw new SyntaxError(`Cannot parse answer: unclosed "${open}"`);
    }
    if (items.length === 0) throw new SyntaxError("Cannot parse answer: empty brackets");
    if (!separated && items.length === 1) {
      if (open === "(" && close.v === ")" || open === "[" && close.v === "]") {
        return items[0] as MathNode;
      }
      throw new SyntaxError(`Cannot parse answer: mismatched "${open}${close.v}"`);
    }
    return { kind: "tuple", items, open, close: close.v as ")" | "]" };
  }

  #parseEnvironment(name: string): MathNode {
    if (!MATRIX_ENVIRONMENTS.has(name)) {
      throw new SyntaxError(`Cannot parse answer: unsupported environment "${name}"`);
    }
    if (name === "array" && this.#is("op", "{")) {
      // Column specification such as {cc} or {c|ccc}.
      let depth = 0;
      do {
        const token = this.#next();
        if (token.t === "op" && token.v === "{") depth++;
        if (token.t === "op" && token.v === "}") depth--;
      } while (depth > 0);
    }
    const rows: (MathNode | null)[][] = [];
    let row: (MathNode | null)[] = [];
    while (true) {
      if (this.#peek() === undefined) {
        throw new SyntaxError(`Cannot parse answer: unclosed \\begin{${name}}`);
      }
      const empty = this.#is("op", "&") || this.#is("op", "\\\\") || this.#is("end");
      row.push(empty ? null : this.#parseItem());
      if (this.#is("op", "&")) {
        this.#pos++;
        continue;
      }
      if (this.#is("op", "\\\\")) {
        this.#pos++;
        rows.push(row);
        row = [];
        continue;
      }
      if (this.#is("end")) {
        this.#pos++;
        rows.push(row);
        break;
      }
      throw new SyntaxError(`Cannot parse answer: unexpected ${this.#describe()} in a matrix`);
    }
    const filled = rows.filter((cells) => cells.some((cell) => cell !== null));
    if (filled.length === 0) throw new SyntaxError("Cannot parse answer: empty matrix");
    const width = filled[0]?.length ?? 0;
    if (filled.some((cells) => cells.length !== width || cells.includes(null))) {
      throw new SyntaxError("Cannot parse answer: ragged matrix");
    }
    return { kind: "matrix", rows: filled as MathNode[][] };
  }

  #parseCommand(name: string): MathNode {
    if (name === "frac") {
      const numerator = this.#parseArgument();
      const denominator = this.#parseArgument();
      return { kind: "div", num: numerator, den: denominator, frac: true };
    }
    if (name === "sqrt") {
      if (this.#is("op", "[")) {
        this.#pos++;
        const index = this.#parseSequence(["]"]);
        this.#expect("op", "]");
        return { kind: "func", name: "root", args: [this.#parseArgument(), index] };
      }
      return { kind: "func", name: "sqrt", args: [this.#parseArgument()] };
    }
    if (name === "binom" || name === "choose") {
      const n = this.#parseArgument();
      return { kind: "func", name: "binom", args: [n, this.#parseArgument()] };
    }
    if (FUNCTIONS.has(name)) return this.#parseFunction(name);
    if (name === "pi") return { kind: "constant", name: "pi" };
    if (name === "infty" || name === "infin") return { kind: "constant", name: "inf" };
    if (name === "imath") return { kind: "constant", name: "i" };
    if (name === "emptyset" || name === "varnothing") return { kind: "set", items: [] };
    if (
      name === "dots" || name === "ldots" || name === "cdots" || name === "dotsm" ||
      name === "dotsb"
    ) {
      return { kind: "text", text: "..." };
    }
    if (STYLE_COMMANDS.has(name)) {
      if (name === "color" && this.#is("op", "{")) this.#parseSubscriptText();
      return this.#parseArgument();
    }
    if (ACCENT_COMMANDS.has(name)) {
      return { kind: "symbol", name: `${name}(${nodeKey(this.#parseArgument())})` };
    }
    if (name === "lfloor" || name === "lceil") {
      const inner = this.#parseSequence([name === "lfloor" ? "rfloor" : "rceil"]);
      this.#pos++;
      return { kind: "func", name: name === "lfloor" ? "floor" : "ceil", args: [inner] };
    }
    if (name === "lvert" || name === "lVert" || name === "vert" || name === "Vert") {
      const closers = name === "lvert" ? ["rvert"] : name === "lVert" ? ["rVert"] : [name];
      this.#absDepth++;
      const inner = this.#parseSequence(closers);
      this.#absDepth--;
      this.#pos++;
      return { kind: "func", name: "abs", args: [inner] };
    }
    if (name === "langle") {
      const inner = this.#parseSequence(["rangle"]);
      this.#pos++;
      return {
        kind: "tuple",
        items: inner.kind === "list" ? inner.items : [inner],
        open: "(",
        close: ")",
      };
    }
    if (
      name === "sum" || name === "prod" || name === "int" || name === "iint" || name === "oint" ||
      name === "lim"
    ) {
      return this.#parseBigOperator(name);
    }
    if (GREEK_AND_SYMBOLS.has(name)) return { kind: "symbol", name };
    if (NON_PRIMARY_COMMANDS.has(name)) {
      throw new SyntaxError(`Cannot parse answer: unexpected \\${name}`);
    }
    // An unknown command: a symbol named after it (and its braced argument).
    if (this.#is("op", "{")) {
      return { kind: "symbol", name: `\\${name}{${nodeKey(this.#parseArgument())}}` };
    }
    return { kind: "symbol", name: `\\${name}` };
  }

  #parseBigOperator(name: string): MathNode {
    let lower: MathNode = { kind: "text", text: "" };
    let upper: MathNode = { kind: "text", text: "" };
    for (let k = 0; k < 2; k++) {
      if (this.#is("op", "_")) {
        this.#pos++;
        lower = this.#parseExponent();
      } else if (this.#is("op", "^")) {
        this.#pos++;
        upper = this.#parseExponent();
      }
    }
    const body = this.#parseFunctionArgument();
    return { kind: "opaque", name, args: [lower, upper, body] };
  }

  #parseFunction(name: string): MathNode {
    let power: MathNode | null = null;
    let base: MathNode | null = null;
    for (let k = 0; k < 2; k++) {
      if (this.#is("op", "^")) {
        this.#pos++;
        power = this.#parseExponent();
      } else if (this.#is("op", "_")) {
        this.#pos++;
        base = this.#parseExponent();
      }
    }
    let argument: MathNode;
    if (this.#is("op", "(") || this.#is("op", "[") || this.#is("op", "{")) {
      argument = this.#parsePostfix(false);
    } else argument = this.#parseFunctionArgument();
    let fn = name;
    if (
      power !== null && power.kind === "neg" && power.arg.kind === "number" &&
      power.arg.value.n === 1n &&
      power.arg.value.d === 1n && INVERSE_TRIG[name] !== undefined
    ) {
      fn = INVERSE_TRIG[name] ?? name;
      power = null;
    }
    const args = fn === "log" && base !== null ? [argument, base] : [argument];
    if (fn === "lg") args.push(numberNode("10"));
    const call: MathNode = { kind: "func", name: fn === "lg" ? "log" : fn, args };
    return power === null ? call : { kind: "pow", base: call, exp: power };
  }

  /** The argument of `\sin x`: implicit factors up to the next operator or function. */
  #parseFunctionArgument(): MathNode {
    const factors: MathNode[] = [];
    while (this.#startsPrimary()) {
      const token = this.#peek();
      if (
        factors.length > 0 && token !== undefined &&
        ((token.t === "cmd" && FUNCTIONS.has(token.v)) || token.t === "text" ||
          (token.t === "word" && FUNCTIONS.has(token.v.toLowerCase())))
      ) break;
      factors.push(this.#parsePostfix(factors.length > 0));
    }
    if (factors.length === 0) {
      throw new SyntaxError("Cannot parse answer: function without argument");
    }
    return factors.length === 1 ? factors[0] as MathNode : { kind: "mul", factors };
  }
}

function numberNode(literal: string): MathNode {
  const value = ratFromDecimal(literal);
  if (value === null) {
    // An exponent too large for exact arithmetic: 1e999999 and the like.
    const mantissa = literal.split(/[eE]/);
    const m = ratFromDecimal(mantissa[0] ?? "");
    if (m === null || mantissa[1] === undefined) {
      throw new SyntaxError(`Cannot parse number "${literal}"`);
    }
    return {
      kind: "mul",
      factors: [num(m, true), {
        kind: "pow",
        base: num({ n: 10n, d: 1n }),
        exp: mantissa[1].startsWith("-")
          ? { kind: "neg", arg: numberNode(mantissa[1].slice(1)) }
          : numberNode(mantissa[1].replace(/^\+/, "")),
      }],
    };
  }
  return num(value, /[.eE]/.test(literal));
}

function letterNode(letter: string): MathNode {
  if (letter === "e") return { kind: "constant", name: "e" };
  if (letter === "i") return { kind: "constant", name: "i" };
  return { kind: "symbol", name: letter };
}

function isChoiceText(text: string): boolean {
  return /^\s*\(?\s*[A-Za-z]\s*\)?\s*$/.test(text);
}

function isNumericText(text: string): boolean {
  return /^[\s\d.,/+-]+$/.test(text) && /\d/.test(text);
}

function textNode(content: string): MathNode {
  if (isChoiceText(content)) return letterNode(content.replace(/[\s()]/g, ""));
  if (isNumericText(content)) return parseLatex(content);
  return { kind: "text", text: content.trim().replace(/\s+/g, " ").toLowerCase() };
}

function applySubscript(node: MathNode, subscript: string): MathNode {
  const sub = subscript.replace(/\s+/g, "");
  switch (node.kind) {
    case "symbol":
      return { kind: "symbol", name: `${node.name}_${sub}` };
    case "constant":
      return {
        kind: "symbol",
        name: `${node.name === "i" ? "i" : node.name === "e" ? "e" : node.name}_${sub}`,
      };
    case "number":
      if (
        !node.decimal && node.value.d === 1n && node.value.n >= 0n && /^[0-9A-Za-z]+$/.test(sub)
      ) {
        return { kind: "based", digits: node.value.n.toString(), base: sub };
      }
      return { kind: "opaque", name: "sub", args: [node, { kind: "symbol", name: sub }] };
    case "text":
      return { kind: "text", text: `${node.text}_${sub.toLowerCase()}` };
    default:
      return { kind: "opaque", name: "sub", args: [node, { kind: "symbol", name: sub }] };
  }
}

/** Parses an answer; throws `SyntaxError` when it cannot. See {@linkcode parseLatexWithInfo}. */
export function parseLatex(text: string): MathNode {
  return parseLatexWithInfo(text).node;
}

/**
 * Normalizes and parses an answer, also reporting whether prose words were read
 * (a response, not a bare answer). Throws `SyntaxError` when it cannot parse.
 *
 * @example
 * ```ts
 * import { parseLatexWithInfo } from "./latex.ts";
 * const { node } = parseLatexWithInfo("\\frac{1}{2}");
 * if (node.kind !== "div") throw new Error("expected a quotient");
 * ```
 */
export function parseLatexWithInfo(text: string): { node: MathNode; info: ParseInfo } {
  const normalized = normalizeLatex(text).replace(/[.\s]+$/, "");
  if (normalized === "") throw new SyntaxError("Cannot parse answer: empty");
  const parser = new Parser(tokenize(normalized));
  const node = parser.parseAnswer();
  return { node, info: parser.info };
}
