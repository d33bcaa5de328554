/**
 * A character-level tokenizer for the embedded tiny model: one id per
 * printable ASCII character and newline, plus ChatML and reasoning special
 * tokens that each encode as a single id.
 *
 * @module
 */
import type { DecodeOptions, Tokenizer } from "./tokenizer.ts";
export type { DecodeOptions, Tokenizer } from "./tokenizer.ts";

/** Serialised form of a {@linkcode CharTokenizer}, as written by `toJSON()`. */
export interface CharTokenizerJSON {
  /** Always `"char"`. */
  type: "char";
  /** Format version, currently 1. */
  version: 1;
  /** Special tokens in id order, starting at id 0. */
  specialTokens: string[];
  /** The characters, in id order, after the special tokens. */
  alphabet: string;
}

/** End of text; also the padding token. */
export const ENDOFTEXT = "<|endoftext|>";
/** Start of a ChatML turn. */
export const IM_START = "<|im_start|>";
/** End of a ChatML turn. */
export const IM_END = "<|im_end|>";
/** Start of a reasoning block. */
export const THINK_START = "<think>";
/** End of a reasoning block. */
export const THINK_END = "</think>";

/** The special tokens, in id order (`<|endoftext|>` is id 0). */
export const SPECIAL_TOKENS: readonly string[] = [
  ENDOFTEXT,
  IM_START,
  IM_END,
  THINK_START,
  THINK_END,
];

/** The tokens dropped by `decode(ids, { skipSpecialTokens: true })`. */
const CONTROL_TOKENS: ReadonlySet<string> = new Set([ENDOFTEXT, IM_START, IM_END]);

/** The default alphabet: newline, then printable ASCII 0x20–0x7E. */
export const DEFAULT_ALPHABET: string = "\n" +
  Array.from({ length: 0x7e - 0x20 + 1 }, (_, i) => String.fromCharCode(0x20 + i)).join("");

function describeChar(text: string, index: number): string {
  const code = text.codePointAt(index) ?? 0;
  const hex = code.toString(16).toUpperCase().padStart(4, "0");
  return `${JSON.stringify(String.fromCodePoint(code))} (U+${hex})`;
}

/**
 * Character-level tokenizer: ids `0..4` are the special tokens
 * (`<|endoftext|>`, `<|im_start|>`, `<|im_end|>`, `<think>`, `</think>`), then
 * one id per character of the alphabet (by default `"\n"` and printable ASCII),
 * 101 ids in all.
 *
 * @example Round trip
 * ```ts
 * import assert from "node:assert/strict";
 * import { CharTokenizer } from "./char_tokenizer.ts";
 *
 * const tok = new CharTokenizer();
 * const ids = tok.encode("<think>1+1=2</think>2<|im_end|>");
 * assert.equal(ids.length, 9);
 * assert.equal(tok.decode(ids), "<think>1+1=2</think>2<|im_end|>");
 * assert.equal(tok.decode(ids, { skipSpecialTokens: true }), "<think>1+1=2</think>2");
 * ```
 */
export class CharTokenizer implements Tokenizer {
  #idToToken: string[];
  #tokenToId: Map<string, number>;
  #specialsByLength: string[];
  #alphabet: string;
  #controlIds: ReadonlySet<number>;

  /**
   * Creates the tokenizer.
   *
   * @param options.alphabet The characters after the special tokens, in id
   * order; each must be a single UTF-16 code unit and appear once.
   * @default {DEFAULT_ALPHABET}
   */
  constructor(options: { alphabet?: string } = {}) {
    const alphabet = options.alphabet ?? DEFAULT_ALPHABET;
    this.#alphabet = alphabet;
    this.#idToToken = [...SPECIAL_TOKENS];
    this.#tokenToId = new Map(SPECIAL_TOKENS.map((t, i) => [t, i]));
    for (let i = 0; i < alphabet.length; i++) {
      const ch = alphabet[i] as string;
      const code = ch.charCodeAt(0);
      if (code >= 0xd800 && code <= 0xdfff) {
        throw new RangeError(
          `Cannot create CharTokenizer: alphabet character at index ${i} is a lone surrogate: current value is U+${
            code.toString(16).toUpperCase()
          }`,
        );
      }
      if (this.#tokenToId.has(ch)) {
        throw new RangeError(
          `Cannot create CharTokenizer: alphabet character at index ${i} appears twice: current value is ${
            JSON.stringify(ch)
          }`,
        );
      }
      this.#tokenToId.set(ch, this.#idToToken.length);
      this.#idToToken.push(ch);
    }
    this.#specialsByLength = [...SPECIAL_TOKENS].sort((a, b) => b.length - a.length);
    this.#controlIds = new Set([...CONTROL_TOKENS].map((t) => this.#tokenToId.get(t) as number));
  }

  /** Number of ids (101 with the default alphabet). */
  get vocabSize(): number {
    return this.#idToToken.length;
  }

  /** Id of `<|endoftext|>` (0). */
  get eosId(): number {
    return 0;
  }

  /** Id used for padding: `<|endoftext|>` (0), as in Qwen2. */
  get padId(): number {
    return 0;
  }

  /** Id of `<|im_start|>`. */
  /** `<|im_end|>` then `<|endoftext|>`: a completion ends at the end of its turn. */
  get stopIds(): readonly number[] {
    return [this.imEndId, this.eosId];
  }

  /** `tokenizer.json` with {@linkcode CharTokenizer.toJSON}'s content. */
  files(): Record<string, string> {
    return { "tokenizer.json": JSON.stringify(this.toJSON(), null, 2) + "\n" };
  }

  get imStartId(): number {
    return 1;
  }

  /** Id of `<|im_end|>`, the end-of-turn token a sampler stops on. */
  get imEndId(): number {
    return 2;
  }

  /** Id of `<think>`. */
  get thinkStartId(): number {
    return 3;
  }

  /** Id of `</think>`. */
  get thinkEndId(): number {
    return 4;
  }

  /** Ids of all special tokens (each encodes as one id), in id order. */
  get specialIds(): readonly number[] {
    return SPECIAL_TOKENS.map((_, i) => i);
  }

  /**
   * Encodes text. Special tokens are recognised greedily (longest first) at
   * every position; every other character must be in the alphabet.
   *
   * @throws {RangeError} When a character is not in the alphabet.
   */
  encode(text: string): number[] {
    const ids: number[] = [];
    let i = 0;
    outer: while (i < text.length) {
      if (text.charCodeAt(i) === 0x3c /* "<" */) {
        for (const special of this.#specialsByLength) {
          if (text.startsWith(special, i)) {
            ids.push(this.#tokenToId.get(special) as number);
            i += special.length;
            continue outer;
          }
        }
      }
      const id = this.#tokenToId.get(text[i] as string);
      if (id === undefined || id < SPECIAL_TOKENS.length) {
        throw new RangeError(
          `Cannot encode text: character at index ${i} is not in the vocabulary: current value is ${
            describeChar(text, i)
          }`,
        );
      }
      ids.push(id);
      i += 1;
    }
    return ids;
  }

  /**
   * Decodes ids to text.
   *
   * @throws {RangeError} When an id is not an integer in `[0, vocabSize)`.
   */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skip = options.skipSpecialTokens ?? false;
    let out = "";
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      const token = Number.isInteger(id) ? this.#idToToken[id] : undefined;
      if (token === undefined) {
        throw new RangeError(
          `Cannot decode ids: id at position ${i} must be an integer in [0, ${this.vocabSize}): current value is ${id}`,
        );
      }
      if (skip && this.#controlIds.has(id)) continue;
      out += token;
    }
    return out;
  }

  /** Id of a token (a special token or one alphabet character), or `undefined`. */
  tokenToId(token: string): number | undefined {
    return this.#tokenToId.get(token);
  }

  /** Text of an id, or `undefined` when the id is out of range. */
  idToToken(id: number): string | undefined {
    return Number.isInteger(id) ? this.#idToToken[id] : undefined;
  }

  /** Serialises the tokenizer; {@linkcode CharTokenizer.fromJSON} reverses it. */
  toJSON(): CharTokenizerJSON {
    return {
      type: "char",
      version: 1,
      specialTokens: [...SPECIAL_TOKENS],
      alphabet: this.#alphabet,
    };
  }

  /**
   * Restores a tokenizer from `toJSON()` output (an object or its JSON text).
   *
   * @throws {TypeError} When a field has the wrong type.
   * @throws {RangeError} When the version, special tokens or alphabet are invalid.
   */
  static fromJSON(json: unknown): CharTokenizer {
    let value = json;
    if (typeof value === "string") {
      try {
        value = JSON.parse(value);
      } catch (cause) {
        throw new SyntaxError(
          `Cannot load CharTokenizer: the text is not valid JSON: ${String(cause)}`,
        );
      }
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new TypeError(
        `Cannot load CharTokenizer: expected an object: current value is ${JSON.stringify(value)}`,
      );
    }
    const obj = value as Record<string, unknown>;
    if (obj.type !== "char") {
      throw new RangeError(
        `Cannot load CharTokenizer: field "type" must be "char": current value is ${
          JSON.stringify(obj.type)
        }`,
      );
    }
    if (obj.version !== 1) {
      throw new RangeError(
        `Cannot load CharTokenizer: field "version" must be 1: current value is ${
          JSON.stringify(obj.version)
        }`,
      );
    }
    const specials = obj.specialTokens;
    if (!Array.isArray(specials) || specials.some((s) => typeof s !== "string")) {
      throw new TypeError(
        `Cannot load CharTokenizer: field "specialTokens" must be an array of strings: current value is ${
          JSON.stringify(specials)
        }`,
      );
    }
    if (
      specials.length !== SPECIAL_TOKENS.length || specials.some((s, i) => s !== SPECIAL_TOKENS[i])
    ) {
      throw new RangeError(
        `Cannot load CharTokenizer: field "specialTokens" must be ${
          JSON.stringify(SPECIAL_TOKENS)
        }: current value is ${JSON.stringify(specials)}`,
      );
    }
    if (typeof obj.alphabet !== "string") {
      throw new TypeError(
        `Cannot load CharTokenizer: field "alphabet" must be a string: current value is ${
          JSON.stringify(obj.alphabet)
        }`,
      );
    }
    return new CharTokenizer({ alphabet: obj.alphabet });
  }
}
