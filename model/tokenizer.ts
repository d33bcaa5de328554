/**
 * The tokenizer interface every model part uses (the Sampler, the Learner, the verifiers'
 * prompts): the built-in character tokenizer (`char_tokenizer.ts`) and Hugging Face's
 * `tokenizer.json` (`hf_tokenizer.ts`) implement it.
 *
 * @module
 */

/**
 * The tokenizer surface the rest of mgrpo relies on. Method names follow
 * Hugging Face tokenizers so that a `tokenizer.json`-backed implementation can
 * be swapped in.
 */
export interface Tokenizer {
  /** Turns text into token ids. */
  encode(text: string): number[];
  /** Turns token ids back into text. */
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /** Number of ids; valid ids are `0 .. vocabSize - 1`. */
  readonly vocabSize: number;
  /** Id of the end-of-sequence token. */
  readonly eosId: number;
  /** Id used for padding. */
  readonly padId: number;
  /** Id of a token given its text, or `undefined` when the token is unknown. */
  tokenToId(token: string): number | undefined;
  /** Ids that end a completion (end of turn, end of text): the Sampler stops on them. */
  readonly stopIds: readonly number[];
  /** The files that rebuild this tokenizer, by name (written into checkpoints). */
  files(): Record<string, string>;
}

/** Options of {@linkcode CharTokenizer.decode}. */
export interface DecodeOptions {
  /**
   * Drop the control tokens `<|endoftext|>`, `<|im_start|>` and `<|im_end|>`
   * from the output. `<think>` and `</think>` are kept, as Qwen's tokenizers
   * keep them (they are added tokens, not special ones), because verifiers
   * read them.
   *
   * @default {false}
   */
  skipSpecialTokens?: boolean;
}
