/**
 * `deno task sft`'s Layer-2 examples: with `--flip-phrase P` every example after P changes the
 * answer without checking and every other one checks, on problems drawn in order from the
 * seeded stream.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../training/config.ts";
import { sftExamples } from "../../training/sft.ts";
import { CharTokenizer } from "../../model/char_tokenizer.ts";

const tokenizer = new CharTokenizer();
const config = loadConfig(undefined);
const PHRASES = config.mgrpo.guide_phrases;

/** n Layer-2 examples as [the guide phrase the prompt ends with, the completion text]. */
function layer2Examples(flipPhrases: string[], n: number): [string, string][] {
  const draw = sftExamples(
    config,
    {
      correctionFrac: 0,
      layer2Frac: 1,
      confirmShare: 0,
      layer2Target: "count",
      countForm: "letters",
      flipPhrases,
      seed: 1,
    },
    tokenizer,
    new Set(),
  );
  return Array.from({ length: n }, () => {
    const [prompt, completion] = draw();
    const text = tokenizer.decode(prompt);
    const phrase = PHRASES.find((p) => text.endsWith(p));
    assert.ok(phrase !== undefined, text);
    return [phrase, tokenizer.decode(completion, { skipSpecialTokens: true })];
  });
}

/** A flip ends the thought at once: `</think>` and an answer, nothing checked. */
const isFlip = (completion: string) => /^<\/think>-?\d+$/.test(completion);

Deno.test("sftExamples() with a flip phrase flips every Layer-2 example after it and counts after the others", () => {
  assert.deepEqual(PHRASES, ["Wait, let me check.", "Let me recheck.", "Hmm, check again."]);
  const examples = layer2Examples(["Hmm, check again."], 300);
  for (const phrase of PHRASES) {
    assert.ok(examples.filter(([p]) => p === phrase).length > 60, phrase);
  }
  for (const [phrase, completion] of examples) {
    if (phrase === "Hmm, check again.") assert.ok(isFlip(completion), completion);
    else assert.match(completion, /^ \d+[+-]\d+;[as]\d+:.*<\/think>-?\d+$/);
  }
  // Without it no example flips; with all three every one does.
  assert.ok(layer2Examples([], 300).every(([, c]) => !isFlip(c)));
  assert.ok(layer2Examples([...PHRASES], 300).every(([, c]) => isFlip(c)));
});
