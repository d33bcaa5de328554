/**
 * Reading the final answer out of a model response or a reference solution.
 *
 * A response is first cut to its answer region: the text after the last
 * `</think>` (when there is one), up to the first end-of-turn marker
 * (`<|im_end|>`, `<|endoftext|>`, `<|im_start|>`, `<|eot_id|>`). Then the
 * {@linkcode ExtractionRule}s are tried in order; the first that finds something
 * wins. `\boxed{…}` boxes written one after the other with little in between
 * (`\boxed{1}, \boxed{2}`, `\boxed{1} \text{ and } \boxed{2}`) are merged into
 * the list `1, 2`; the same answer boxed again with only white space or delimiters
 * in between (`$\boxed{5}$ \[\boxed{5}\]`) is read once. In a math span, an escaped
 * dollar `\$` is a dollar sign, not a delimiter (`$\$10$` reads `\$10`). Before the
 * first of `last_math`/`last_number`, and when no rule matched, a bare answer (a
 * response that is only an answer, such as `$\frac{1}{2}$`) is read whole.
 *
 * Scanning is linear in the length of the text; nothing here backtracks.
 *
 * @module
 */
import type { ExtractionRule } from "./types.ts";
import { parseLatexWithInfo } from "./latex.ts";

/** The extraction rules used when none are given. */
export const DEFAULT_EXTRACTION: readonly ExtractionRule[] = [
  "boxed",
  "final_answer_is",
  "answer_is",
  "hash",
  "after_think",
];

/** How much text after a marker is read as the answer (longer answers are rejected anyway). */
const ANSWER_WINDOW = 4000;

const END_MARKERS = [
  "<|im_end|>",
  "<|endoftext|>",
  "<|im_start|>",
  "<|eot_id|>",
  "<|end_of_text|>",
];

/** Where the answer of a response is looked for, and whether it closed a `<think>` block. */
function answerRegion(text: string): { region: string; afterThink: boolean } {
  const close = text.lastIndexOf("</think>");
  let region = close >= 0 ? text.slice(close + "</think>".length) : text;
  let end = region.length;
  for (const marker of END_MARKERS) {
    const at = region.indexOf(marker);
    if (at >= 0 && at < end) end = at;
  }
  region = region.slice(0, end);
  return { region, afterThink: close >= 0 };
}

/**
 * For every `{` in `text`, the index just past its matching `}` (-1 when unclosed),
 * computed in one pass; `\{` and `\}` are not braces.
 */
function braceMatches(text: string): Map<number, number> {
  const matches = new Map<number, number>();
  const open: number[] = [];
  for (let k = 0; k < text.length; k++) {
    const c = text[k];
    if (c === "\\") {
      k++;
      continue;
    }
    if (c === "{") open.push(k);
    else if (c === "}") {
      const start = open.pop();
      if (start !== undefined) matches.set(start, k + 1);
    }
  }
  return matches;
}

interface Box {
  start: number;
  end: number;
  content: string;
}

const BOX = /\\(?:boxed|fbox)(?![a-zA-Z])/g;

/** Every closed `\boxed{…}` / `\fbox{…}` / `\boxed 5` that is not inside another box. */
function findBoxes(text: string): Box[] {
  const boxes: Box[] = [];
  let matches: Map<number, number> | null = null;
  BOX.lastIndex = 0;
  for (let match = BOX.exec(text); match !== null; match = BOX.exec(text)) {
    const start = match.index;
    let k = start + match[0].length;
    while (text[k] === " ") k++;
    if (text[k] === "{") {
      matches ??= braceMatches(text);
      const end = matches.get(k) ?? -1;
      if (end < 0) continue;
      boxes.push({ start, end, content: text.slice(k + 1, end - 1) });
      BOX.lastIndex = end;
    } else {
      const word = /^[^\s$\\{}]+/.exec(text.slice(k, k + 200));
      if (word === null || k === start + match[0].length) continue;
      const content = word[0].replace(/[.,;:]+$/, "");
      if (content === "") continue;
      boxes.push({ start, end: k + word[0].length, content });
    }
  }
  return boxes;
}

/** Words allowed between two boxes of a response that are merged into one list. */
const FILLER_WORDS = new Set(["and", "or", "for", "part", "as", "well", "also", "both", "with"]);

/**
 * Whether the text between two boxes is short filler (`, `, `\quad \text{and} \quad`,
 * `\) and \( y_2 =`). In a response only connectives and one-letter names may
 * appear (so `\boxed{3}, then \boxed{5}` keeps only 5); in a reference, any
 * four words or fewer.
 */
function isFiller(between: string, strict: boolean): boolean {
  if (/[.!?:]/.test(between.replace(/\\[()[\]]/g, ""))) return false;
  const cleaned = between
    .replace(/\\(?:text|textbf|mbox|mathrm)\s*\{([^{}]*)\}/g, " $1 ")
    .replace(/\\(?:quad|qquad|[()[\],;! ])/g, " ")
    .replace(/[$]/g, " ")
    .trim();
  if (cleaned.length > 40) return false;
  const words = cleaned.match(/[a-zA-Z]+/g) ?? [];
  if (words.length > 4) return false;
  return !strict ||
    words.every((word) => word.length === 1 || FILLER_WORDS.has(word.toLowerCase()));
}

/** The last box, merged with the boxes just before it that only filler separates. */
function lastBoxes(text: string, strict: boolean): string | null {
  const boxes = findBoxes(text);
  const last = boxes[boxes.length - 1];
  if (last === undefined) return null;
  const parts = [last.content.trim()];
  let repeated = true;
  for (let k = boxes.length - 2; k >= 0 && parts.length < 50; k--) {
    const box = boxes[k] as Box;
    const next = boxes[k + 1] as Box;
    const between = text.slice(box.end, next.start);
    if (!isFiller(between, strict)) break;
    parts.unshift(box.content.trim());
    // Words or `=` between the boxes make them answers to different names or parts.
    repeated &&= !/[a-zA-Z=]/.test(between.replace(/\\[a-zA-Z]+/g, ""));
  }
  // The same answer boxed again (`$\boxed{5}$ \n\n \boxed{5}`) is one answer, not the list 5, 5.
  const first = parts[0]?.replace(/\s+/g, "");
  if (repeated && parts.every((part) => part.replace(/\s+/g, "") === first)) {
    return parts[0] ?? null;
  }
  return parts.join(", ");
}

/**
 * Where `close` next occurs in `text` from `from` on, not counting escaped characters:
 * `$\$10$` closes at its last `$`, since `\$` is a dollar sign, not a delimiter. -1 when
 * it does not occur.
 */
function closingDelimiter(text: string, close: string, from: number): number {
  for (let k = from; k < text.length; k++) {
    if (text.startsWith(close, k)) return k;
    if (text[k] === "\\") k++;
  }
  return -1;
}

/**
 * The answer written right after a marker: a math span when one opens there,
 * else the rest of the line up to the end of the sentence.
 */
function answerAfter(text: string): string | null {
  // Answers longer than the verifier accepts are cut here, which also keeps the
  // regular expressions below linear.
  let rest = text.replace(/^[\s*:："]+/, "").slice(0, ANSWER_WINDOW);
  for (const [open, close] of [["$$", "$$"], ["\\[", "\\]"], ["\\(", "\\)"], ["$", "$"]] as const) {
    if (rest.startsWith(open)) {
      const end = closingDelimiter(rest, close, open.length);
      if (end > open.length) return rest.slice(open.length, end).trim() || null;
    }
  }
  const newline = rest.indexOf("\n");
  if (newline >= 0) rest = rest.slice(0, newline);
  const sentenceEnd = /\.(?=\s|$)(?<!\d\.(?=\d))/.exec(rest);
  if (sentenceEnd !== null) rest = rest.slice(0, sentenceEnd.index);
  rest = rest.replace(/\s+I hope it is correct.*$/i, "").replace(/[\s.,;"*]+$/, "").trim();
  return rest === "" ? null : rest;
}

function lastMatch(pattern: RegExp, text: string): RegExpExecArray | null {
  let last: RegExpExecArray | null = null;
  pattern.lastIndex = 0;
  for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
    last = match;
    if (match[0] === "") pattern.lastIndex++;
  }
  return last;
}

const FINAL_ANSWER = /final\s+answer(\s+is)?\s*[:：]?/gi;
const ANSWER_IS = /\banswer\s*(?:is\b\s*:?|:)/gi;
const HASH = /####/g;

function finalAnswerIs(text: string): string | null {
  const match = lastMatch(FINAL_ANSWER, text);
  if (match === null) return null;
  let answer = answerAfter(text.slice(match.index + match[0].length));
  // "Final Answer: The volume of $ABCDEFGH$ is 120." reads as 120.
  if (answer !== null && match[1] === undefined) {
    const is = lastMatch(/\s(?:is|are|equals|was)\s/gi, answer);
    if (is !== null) answer = answerAfter(answer.slice(is.index + is[0].length)) ?? answer;
  }
  return answer;
}

function answerIs(text: string): string | null {
  const match = lastMatch(ANSWER_IS, text);
  return match === null ? null : answerAfter(text.slice(match.index + match[0].length));
}

function hashAnswer(text: string): string | null {
  const match = lastMatch(HASH, text);
  if (match === null) return null;
  const rest = text.slice(match.index + 4, match.index + 4 + ANSWER_WINDOW);
  const answer = trimEnd((rest.split("\n")[0] ?? "").trim(), ".");
  return answer === "" ? null : answer;
}

interface Found {
  text: string;
  /** Where the match ends in the searched text. */
  end: number;
}

/**
 * The content of the last `$…$`, `$$…$$`, `\(…\)` or `\[…\]` span (inline `$…$`
 * does not cross a line break). One pass over the text.
 */
function lastMath(text: string): Found | null {
  let last: Found | null = null;
  let k = 0;
  // Once a closing delimiter is missing, it is missing for every later opening too.
  const unclosed = new Set<string>();
  const record = (from: number, to: number, after: number): void => {
    const content = text.slice(from, to).trim();
    if (content !== "") last = { text: content, end: after };
  };
  while (k < text.length) {
    const c = text[k];
    if (c === "\\") {
      const next = text[k + 1];
      if (next === "(" || next === "[") {
        const close = next === "(" ? "\\)" : "\\]";
        const end = unclosed.has(close) ? -1 : text.indexOf(close, k + 2);
        if (end < 0) {
          unclosed.add(close);
          k += 2;
          continue;
        }
        record(k + 2, end, end + 2);
        k = end + 2;
        continue;
      }
      k += 2;
      continue;
    }
    if (c !== "$") {
      k++;
      continue;
    }
    if (text[k + 1] === "$") {
      const end = unclosed.has("$$") ? -1 : closingDelimiter(text, "$$", k + 2);
      if (end < 0) {
        unclosed.add("$$");
        k += 2;
        continue;
      }
      record(k + 2, end, end + 2);
      k = end + 2;
      continue;
    }
    // Inline: the next unescaped $ on the same line.
    let j = k + 1;
    while (j < text.length && text[j] !== "$" && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
    if (text[j] === "$") {
      record(k + 1, j, j + 1);
      k = j + 1;
    } else k = j;
  }
  return last;
}

const NUMBER =
  /(?<![A-Za-z_\d.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*\/\s*\d+(?:\.\d+)?)?(?:\s*(?:\\?%))?(?![\d])/g;

function lastNumber(text: string): Found | null {
  const match = lastMatch(NUMBER, text);
  return match === null ? null : { text: match[0].trim(), end: match.index + match[0].length };
}

/** Whichever of the last math span and the last number ends later (the math span on a tie). */
function lastMathOrNumber(text: string): string | null {
  const math = lastMath(text);
  const number = lastNumber(text);
  if (math === null || number === null) return (math ?? number)?.text ?? null;
  return number.end > math.end ? number.text : math.text;
}

/** Removes one pair of math delimiters wrapping the whole text, and trailing punctuation. */
export function unwrapMath(text: string): string {
  let s = trimEnd(text.trim(), ".,;");
  for (const [open, close] of [["$$", "$$"], ["\\[", "\\]"], ["\\(", "\\)"], ["$", "$"]] as const) {
    if (s.length >= open.length + close.length && s.startsWith(open) && s.endsWith(close)) {
      const inner = s.slice(open.length, s.length - close.length);
      // The span must end where the text does: `$1$ and $2$` is two spans, and `\$` or a
      // row break `\\` before the last `$` is no closing delimiter.
      if (closingDelimiter(s, close, open.length) === s.length - close.length) {
        s = inner.trim();
        break;
      }
    }
  }
  return trimEnd(s, ".,;");
}

/** Removes trailing white space, `\,`, `\!` and the given punctuation, without regular expressions. */
function trimEnd(text: string, punctuation: string): string {
  let end = text.length;
  while (end > 0) {
    const c = text[end - 1] ?? "";
    if ((c === "," || c === "!") && text[end - 2] === "\\") end -= 2;
    else if (/\s/.test(c) || punctuation.includes(c)) end--;
    else break;
  }
  return text.slice(0, end);
}

function isBareAnswer(text: string): boolean {
  if (text.length > 300) return false;
  try {
    return !parseLatexWithInfo(text).info.prose;
  } catch {
    return false;
  }
}

/** Options of {@linkcode extractAnswer}. */
export interface ExtractOptions {
  /**
   * The rules tried in order; see {@linkcode ExtractionRule}.
   * @default ["boxed", "final_answer_is", "answer_is", "hash", "after_think"]
   */
  extraction?: readonly ExtractionRule[];
}

/**
 * Reads the final answer of a model response, or `null` when the response is
 * empty. When no rule matches, the whole response (unwrapped) is the answer.
 *
 * @example
 * ```ts
 * import { extractAnswer } from "./extract.ts";
 * const answer = extractAnswer("So the area is $\\boxed{\\frac{1}{2}}$.");
 * if (answer !== "\\frac{1}{2}") throw new Error(`unexpected ${answer}`);
 * ```
 */
export function extractAnswer(text: string, options: ExtractOptions = {}): string | null {
  const { region, afterThink } = answerRegion(text);
  const rules = options.extraction ?? DEFAULT_EXTRACTION;
  let triedBare = false;
  const bare = unwrapMath(region);
  for (const rule of rules) {
    let found: string | null = null;
    switch (rule) {
      case "boxed":
        found = lastBoxes(region, true);
        break;
      case "final_answer_is":
        found = finalAnswerIs(region);
        break;
      case "answer_is":
        found = answerIs(region);
        break;
      case "hash":
        found = hashAnswer(region);
        break;
      case "after_think":
        found = afterThink && bare !== "" ? bare : null;
        break;
      case "last_math":
      case "last_number": {
        if (!triedBare) {
          triedBare = true;
          if (bare !== "" && isBareAnswer(bare)) return bare;
        }
        const next = rules[rules.indexOf(rule) + 1];
        const pair = (rule === "last_math" && next === "last_number") ||
          (rule === "last_number" && next === "last_math");
        found = pair
          ? lastMathOrNumber(region)
          : rule === "last_math"
          ? lastMath(region)?.text ?? null
          : lastNumber(region)?.text ?? null;
        break;
      }
      default:
        throw new RangeError(`Cannot extract answer: unknown extraction rule "${String(rule)}"`);
    }
    if (found !== null && found.trim() !== "") return unwrapMath(found);
  }
  return bare === "" ? null : bare;
}

/**
 * Reads the reference answer: the last boxed answer of a reference solution, its
 * "final answer is" or `####` line, or else the whole (unwrapped) text. `null`
 * when the reference is empty.
 *
 * @example
 * ```ts
 * import { extractGoldAnswer } from "./extract.ts";
 * if (extractGoldAnswer("$\\frac{3}{56}$") !== "\\frac{3}{56}") throw new Error("unwrap");
 * if (extractGoldAnswer("so $x = \\boxed{7}$.") !== "7") throw new Error("boxed");
 * ```
 */
export function extractGoldAnswer(text: string): string | null {
  const found = lastBoxes(text, false) ?? finalAnswerIs(text) ?? answerIs(text) ?? hashAnswer(text);
  const answer = unwrapMath(found ?? text);
  return answer === "" ? null : answer;
}
