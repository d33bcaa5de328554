/**
 * Hugging Face tokenizers (`tokenizer.json`) behind mgrpo's {@linkcode Tokenizer}
 * interface, for real checkpoints such as Qwen2 / Qwen2.5, DeepSeek-R1-Distill-Qwen
 * and Llama-3 (byte-level BPE).
 *
 * The tokenization itself is `@huggingface/tokenizers` (normalizer, pre-tokenizer
 * regex, BPE merges, added and special tokens, byte-level decoder). This module
 * adds what that package leaves to its caller:
 *
 * - the end-of-sequence, padding and end-of-turn ids, read from
 *   `tokenizer_config.json` (`eos_token`, `pad_token`) and `generation_config.json`
 *   (`eos_token_id`, `pad_token_id`);
 * - decoding an empty id list (the package throws on `[]`) and rejecting ids that
 *   are not in the vocabulary (the package maps them to the unknown token, or to
 *   `undefined`, silently);
 * - no "tokenization space clean-up" for BPE models, as in `transformers` 5 (the
 *   package applies it whenever `tokenizer_config.json` does not turn it off,
 *   which deletes real spaces before punctuation);
 * - file loading with errors that name the file and the field.
 *
 * @module
 */

import { Tokenizer as HfBackend } from "@huggingface/tokenizers";
import type { DecodeOptions, Tokenizer } from "./tokenizer.ts";

/** Options of {@linkcode HfTokenizer.encode}. */
export interface HfEncodeOptions {
  /**
   * Let the tokenizer's post-processor add its special tokens (for Llama-3, a
   * leading `<|begin_of_text|>`; for Qwen2, nothing). Chat prompts rendered from a
   * chat template already contain them, which is why `transformers`'
   * `apply_chat_template` encodes with this off.
   *
   * @default {false}
   */
  addSpecialTokens?: boolean;
}

/** Options of the {@linkcode HfTokenizer} constructor. */
export interface HfTokenizerOptions {
  /** The parsed `tokenizer_config.json`, if any. @default {undefined} */
  config?: Record<string, unknown>;
  /** The parsed `generation_config.json`, if any. @default {undefined} */
  generationConfig?: Record<string, unknown>;
  /**
   * Where the files came from, for error messages.
   *
   * @default {"tokenizer.json"}
   */
  source?: string;
}

/** The ChatML and reasoning tokens the rest of mgrpo looks up by name. */
const IM_START = "<|im_start|>";
const IM_END = "<|im_end|>";
const THINK_START = "<think>";
const THINK_END = "</think>";

function show(value: unknown): string {
  if (value === undefined) return "undefined";
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Text of a special-token field of `tokenizer_config.json`: a string, an
 * `AddedToken` object (`{"__type": "AddedToken", "content": ...}`), or
 * `null`/absent (`undefined`).
 */
function tokenContent(
  config: Record<string, unknown>,
  field: string,
  where: string,
): string | undefined {
  const value = config[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  if (isRecord(value) && typeof value.content === "string") return value.content;
  throw new TypeError(
    `Cannot load tokenizer ${where}: field "${field}" must be a string or an object with a string "content": current value is ${
      show(value)
    }`,
  );
}

/** Ids of a `generation_config.json` field that holds one id or a list of ids. */
function configIds(
  config: Record<string, unknown>,
  field: string,
  where: string,
): number[] {
  const value = config[field];
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  if (list.some((id) => !Number.isInteger(id) || (id as number) < 0)) {
    throw new TypeError(
      `Cannot load tokenizer ${where}: field "${field}" must be a non-negative integer or a list of them: current value is ${
        show(value)
      }`,
    );
  }
  return list as number[];
}

/**
 * A `tokenizer.json` tokenizer (byte-level BPE as in Qwen2 and Llama-3, or any
 * model `@huggingface/tokenizers` supports) with the ids mgrpo needs.
 *
 * Encoding matches the Rust `tokenizers` library and `transformers` id for id,
 * including NFC normalisation, Qwen2's one-digit-per-token split, added tokens
 * (`<|im_start|>`, `<think>`) inside text, and byte-level fallback for any
 * Unicode. `decode(encode(text))` gives back the NFC form of `text`.
 *
 * @example Round trip with the tiny Qwen2-style tokenizer of the test fixtures
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadHfTokenizer } from "./hf_tokenizer.ts";
 *
 * const tok = await loadHfTokenizer("tests/fixtures/tokenizers/tiny-qwen2");
 * const ids = tok.encode("<think>2+2=4</think>4<|im_end|>");
 * assert.equal(ids[0], tok.thinkStartId);
 * assert.equal(ids.at(-1), tok.imEndId);
 * assert.equal(tok.decode(ids), "<think>2+2=4</think>4<|im_end|>");
 * assert.equal(tok.decode(ids, { skipSpecialTokens: true }), "<think>2+2=4</think>4");
 * assert.equal(tok.eosId, tok.imEndId);
 * ```
 */
export class HfTokenizer implements Tokenizer {
  #backend: HfBackend;
  #idToToken: Map<number, string>;
  #tokenToId: Map<string, number>;
  #specialIds: number[];
  #vocabSize: number;
  #eosId: number;
  #padId: number;
  #stopIds: number[];
  #cleanUp: boolean;
  #files: Record<string, string>;

  /**
   * Creates the tokenizer from parsed JSON files; {@linkcode loadHfTokenizer}
   * reads them from a directory.
   *
   * The end-of-sequence id is `tokenizer_config.json`'s `eos_token`, else the
   * first of `generation_config.json`'s `eos_token_id`. The padding id is
   * `pad_token`, else `pad_token_id`, else the end-of-sequence id.
   *
   * @param tokenizerJson The parsed `tokenizer.json`.
   * @throws {TypeError} When a file or field has the wrong shape.
   * @throws {RangeError} When a configured token or id is not in the vocabulary,
   * or no end-of-sequence token is configured.
   */
  constructor(tokenizerJson: unknown, options: HfTokenizerOptions = {}) {
    this.#files = { "tokenizer.json": JSON.stringify(tokenizerJson) };
    if (options.config !== undefined) {
      this.#files["tokenizer_config.json"] = JSON.stringify(options.config, null, 2) + "\n";
    }
    const source = options.source ?? "tokenizer.json";
    const where = JSON.stringify(source);
    if (!isRecord(tokenizerJson)) {
      throw new TypeError(
        `Cannot load tokenizer ${where}: expected a JSON object: current value is ${
          show(tokenizerJson).slice(0, 80)
        }`,
      );
    }
    const model = tokenizerJson.model;
    if (!isRecord(model) || typeof model.type !== "string" || !isRecord(model.vocab)) {
      throw new TypeError(
        `Cannot load tokenizer ${where}: field "model" must be an object with "type" and "vocab": current value is ${
          show(isRecord(model) ? { ...model, vocab: "...", merges: "..." } : model)
        }`,
      );
    }
    const config = options.config ?? {};
    try {
      this.#backend = new HfBackend(tokenizerJson, config);
    } catch (cause) {
      throw new TypeError(
        `Cannot load tokenizer ${where}: @huggingface/tokenizers rejected it: ${
          cause instanceof Error ? cause.message : String(cause)
        }`,
      );
    }
    this.#tokenToId = this.#backend.get_vocab(true);
    this.#idToToken = new Map();
    let maxId = -1;
    for (const [token, id] of this.#tokenToId) {
      this.#idToToken.set(id, token);
      if (id > maxId) maxId = id;
    }
    this.#vocabSize = maxId + 1;
    this.#specialIds = [...this.#backend.get_added_tokens_decoder()]
      .filter(([, token]) => token.special)
      .map(([id]) => id)
      .sort((a, b) => a - b);
    // `transformers` 5 never applies the clean-up to BPE models (it deletes real
    // spaces before punctuation); for the others it follows the config, default off.
    this.#cleanUp = model.type !== "BPE" && config.clean_up_tokenization_spaces === true;

    const generation = options.generationConfig ?? {};
    const configFile = JSON.stringify(source.replace(/tokenizer\.json$/, "tokenizer_config.json"));
    const generationFile = JSON.stringify(
      source.replace(/tokenizer\.json$/, "generation_config.json"),
    );
    const idOfField = (field: string): number | undefined => {
      const content = tokenContent(config, field, configFile);
      if (content === undefined) return undefined;
      const id = this.#tokenToId.get(content);
      if (id === undefined) {
        throw new RangeError(
          `Cannot load tokenizer ${configFile}: field "${field}" names a token that is not in the vocabulary: current value is ${
            show(content)
          }`,
        );
      }
      return id;
    };
    const checkIds = (field: string): number[] => {
      const ids = configIds(generation, field, generationFile);
      for (const id of ids) {
        if (!this.#idToToken.has(id)) {
          throw new RangeError(
            `Cannot load tokenizer ${generationFile}: field "${field}" holds an id that is not in the vocabulary of ${this.#vocabSize}: current value is ${id}`,
          );
        }
      }
      return ids;
    };
    const generationEos = checkIds("eos_token_id");
    const generationPad = checkIds("pad_token_id");
    const eosId = idOfField("eos_token") ?? generationEos[0];
    if (eosId === undefined) {
      throw new RangeError(
        `Cannot load tokenizer ${configFile}: no end-of-sequence token: field "eos_token" is not set here and "eos_token_id" is not set in generation_config.json: current value is ${
          show(config.eos_token)
        }`,
      );
    }
    this.#eosId = eosId;
    this.#padId = idOfField("pad_token") ?? generationPad[0] ?? eosId;
    const imEnd = this.#tokenToId.get(IM_END);
    this.#stopIds = [
      ...new Set([...(imEnd === undefined ? [] : [imEnd]), eosId, ...generationEos]),
    ];
  }

  /** Number of ids: one more than the largest id, added tokens included. */
  get vocabSize(): number {
    return this.#vocabSize;
  }

  /** Id of the end-of-sequence token (`eos_token`, else `eos_token_id`). */
  get eosId(): number {
    return this.#eosId;
  }

  /** Id used for padding (`pad_token`, else `pad_token_id`, else {@linkcode HfTokenizer.eosId}). */
  get padId(): number {
    return this.#padId;
  }

  /**
   * Id of `<|im_end|>`, the end-of-turn token of ChatML models (Qwen), or
   * `undefined` when the vocabulary has none (DeepSeek-R1-Distill ends a turn
   * with its end-of-sequence token; Llama-3 with `<|eot_id|>`).
   */
  get imEndId(): number | undefined {
    return this.#tokenToId.get(IM_END);
  }

  /** Id of `<|im_start|>`, or `undefined`. */
  get imStartId(): number | undefined {
    return this.#tokenToId.get(IM_START);
  }

  /** Id of `<think>`, or `undefined`. */
  get thinkStartId(): number | undefined {
    return this.#tokenToId.get(THINK_START);
  }

  /** Id of `</think>`, or `undefined`. */
  get thinkEndId(): number | undefined {
    return this.#tokenToId.get(THINK_END);
  }

  /**
   * The ids a sampler stops on: `<|im_end|>` if the vocabulary has it, the
   * end-of-sequence id, and every `eos_token_id` of `generation_config.json`,
   * without repeats.
   */
  get stopIds(): readonly number[] {
    return this.#stopIds;
  }

  /** Ids of the special added tokens (the ones `skipSpecialTokens` drops), ascending. */
  /** `tokenizer.json` and (when given) `tokenizer_config.json`, as they were read. */
  files(): Record<string, string> {
    return { ...this.#files };
  }

  get specialIds(): readonly number[] {
    return this.#specialIds;
  }

  /**
   * Encodes text to ids, as `tokenizers`' `encode` does.
   *
   * Added tokens written in the text (`<|im_start|>`, `<think>`) become their
   * single ids. Lone UTF-16 surrogates, which have no UTF-8 form, are encoded as
   * U+FFFD.
   */
  encode(text: string, options: HfEncodeOptions = {}): number[] {
    if (typeof text !== "string") {
      throw new TypeError(`Cannot encode text: expected a string: current value is ${show(text)}`);
    }
    return this.#backend.encode(text, { add_special_tokens: options.addSpecialTokens ?? false })
      .ids;
  }

  /**
   * Decodes ids to text. Bytes of an incomplete UTF-8 sequence (a prefix of the
   * ids of one character) decode to U+FFFD, as in `tokenizers`.
   *
   * @throws {RangeError} When an id is not an integer id of the vocabulary.
   */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      if (!Number.isInteger(id) || !this.#idToToken.has(id)) {
        throw new RangeError(
          `Cannot decode ids: id at position ${i} must be an integer id of the vocabulary in [0, ${this.#vocabSize}): current value is ${id}`,
        );
      }
    }
    if (ids.length === 0) return "";
    return this.#backend.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.#cleanUp,
    });
  }

  /** Id of a token given its text (an added token, or a byte-level vocabulary entry), or `undefined`. */
  tokenToId(token: string): number | undefined {
    return this.#tokenToId.get(token);
  }

  /** Text of an id as stored in the vocabulary (byte-level form, e.g. `"Ġthe"`), or `undefined`. */
  idToToken(id: number): string | undefined {
    return this.#idToToken.get(id);
  }
}

async function readJson(
  path: string,
  required: boolean,
): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (cause) {
    if (!required && cause instanceof Deno.errors.NotFound) return undefined;
    throw new Error(
      `Cannot load tokenizer ${JSON.stringify(path)}: the file cannot be read: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new SyntaxError(
      `Cannot load tokenizer ${JSON.stringify(path)}: the file is not valid JSON: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
    );
  }
  if (!isRecord(value)) {
    throw new TypeError(
      `Cannot load tokenizer ${JSON.stringify(path)}: expected a JSON object: current value is ${
        show(value).slice(0, 80)
      }`,
    );
  }
  return value;
}

/**
 * Loads a Hugging Face tokenizer from a checkpoint directory: `tokenizer.json`
 * (required), `tokenizer_config.json` and `generation_config.json` (optional,
 * but one of them must name the end-of-sequence token).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadHfTokenizer } from "./hf_tokenizer.ts";
 *
 * const tok = await loadHfTokenizer("tests/fixtures/tokenizers/tiny-qwen2");
 * assert.deepEqual(tok.encode("2025"), tok.encode("2").concat(tok.encode("025")));
 * assert.equal(tok.padId, tok.tokenToId("<|endoftext|>"));
 * ```
 *
 * @throws {Error} When `tokenizer.json` cannot be read.
 * @throws {SyntaxError} When a file is not valid JSON.
 * @throws {TypeError} When a file or field has the wrong shape.
 * @throws {RangeError} When a configured token is not in the vocabulary.
 */
export async function loadHfTokenizer(dir: string): Promise<HfTokenizer> {
  const base = dir.replace(/\/+$/, "");
  const tokenizerJson = await readJson(`${base}/tokenizer.json`, true);
  const config = await readJson(`${base}/tokenizer_config.json`, false);
  const generationConfig = await readJson(`${base}/generation_config.json`, false);
  const options: HfTokenizerOptions = { source: `${base}/tokenizer.json` };
  if (config !== undefined) options.config = config;
  if (generationConfig !== undefined) options.generationConfig = generationConfig;
  return new HfTokenizer(tokenizerJson, options);
}
