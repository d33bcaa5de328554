/**
 * `deno task sft`'s Layer-2 examples: with `--flip-phrase P` every example after P changes the
 * answer without checking and every other one checks; with `--layer2-target check-count` each
 * equation of the answer is undone and only the steps from the first that fails are counted out.
 * Problems are drawn in order from the seeded stream.
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
  return layer2Drawn({ layer2Target: "count", countForm: "letters", flipPhrases }, n)
    .map(([text, completion]) => {
      const phrase = PHRASES.find((p) => text.endsWith(p));
      assert.ok(phrase !== undefined, text);
      return [phrase, completion];
    });
}

/** n Layer-2 examples drawn with `options`, as [the prompt text, the completion text]. */
function layer2Drawn(
  options: Pick<Parameters<typeof sftExamples>[1], "layer2Target" | "countForm" | "flipPhrases">,
  n: number,
): [string, string][] {
  const draw = sftExamples(
    config,
    { correctionFrac: 0, layer2Frac: 1, confirmShare: 0, seed: 1, ...options },
    tokenizer,
    new Set(),
  );
  return Array.from({ length: n }, () => {
    const [prompt, completion] = draw();
    return [tokenizer.decode(prompt), tokenizer.decode(completion, { skipSpecialTokens: true })];
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

Deno.test("sftExamples() with check-count undoes each equation of the answer and counts out the steps from the first that fails", () => {
  const examples = layer2Drawn({ layer2Target: "check-count" }, 300);
  let confirmed = 0;
  let counted = 0;
  for (const [prompt, completion] of examples) {
    // The answer's chain, as the Corrector shows it in the open thought: `7+2=9 9-3=6 <phrase>`.
    const thought = prompt.slice(prompt.lastIndexOf("<think>") + "<think>".length);
    const chain = [...thought.matchAll(/(\d+)([+*-])(\d+)=(\d+)/g)].map((m) => ({
      before: Number(m[1]),
      op: m[2]!,
      operand: Number(m[3]),
      after: Number(m[4]),
    }));
    assert.ok(chain.length >= 1, prompt);
    const checks = [...completion.matchAll(/(\d+)([+/-])(\d+)=(-?[\d.]+) (ok|no)/g)];
    // Every check undoes the equation at its place with true arithmetic, and says ok exactly
    // when it lands on the value that equation started from.
    checks.forEach((m, i) => {
      const s = chain[i]!;
      const [after, inverse, operand, back] = [Number(m[1]), m[2], Number(m[3]), Number(m[4])];
      assert.deepEqual([after, operand], [s.after, s.operand], completion);
      assert.equal(inverse, { "+": "-", "-": "+", "*": "/" }[s.op], completion);
      assert.equal(
        back,
        inverse === "-" ? after - operand : inverse === "+" ? after + operand : after / operand,
      );
      assert.equal(m[5], back === s.before ? "ok" : "no", completion);
    });
    const answer = Number(completion.slice(completion.indexOf("</think>") + "</think>".length));
    const layer1Answer = chain[chain.length - 1]!.after;
    if (checks.every((m) => m[5] === "ok")) {
      // A right answer: every equation checks, nothing is counted, the answer stands.
      assert.equal(checks.length, chain.length, completion);
      assert.equal(completion, `${checks.map((m) => ` ${m[0]}`).join("")}</think>${layer1Answer}`);
      confirmed++;
    } else {
      // A slip: the check stops at the first no, the count starts there from the value that
      // step started from, and the answer changes.
      const first = checks.findIndex((m) => m[5] === "no");
      assert.equal(first, checks.length - 1, completion);
      const s = chain[first]!;
      assert.ok(completion.includes(` no ${s.before}${s.op}${s.operand}:`), completion);
      assert.notEqual(answer, layer1Answer, completion);
      counted++;
    }
  }
  // About half of the answers shown are wrong (layer2WrongShare 0.5).
  assert.ok(confirmed > 100 && counted > 100, `${confirmed} confirmed, ${counted} counted`);
});
