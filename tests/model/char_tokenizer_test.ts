import assert from "node:assert/strict";
import { CharTokenizer } from "../../model/char_tokenizer.ts";
import { type Tokenizer } from "../../model/tokenizer.ts";

Deno.test("CharTokenizer() has 101 ids with the special tokens first", () => {
  const tok = new CharTokenizer();
  assert.equal(tok.vocabSize, 5 + 1 + 95);
  assert.equal(tok.eosId, 0);
  assert.equal(tok.padId, 0);
  assert.deepEqual(tok.specialIds, [0, 1, 2, 3, 4]);
  assert.equal(tok.tokenToId("<|endoftext|>"), 0);
  assert.equal(tok.tokenToId("<|im_start|>"), tok.imStartId);
  assert.equal(tok.tokenToId("<|im_end|>"), tok.imEndId);
  assert.equal(tok.tokenToId("<think>"), tok.thinkStartId);
  assert.equal(tok.tokenToId("</think>"), tok.thinkEndId);
  assert.equal(tok.tokenToId("\n"), 5);
  assert.equal(tok.tokenToId(" "), 6);
  assert.equal(tok.tokenToId("~"), 100);
  assert.equal(tok.tokenToId("é"), undefined);
  assert.equal(tok.idToToken(3), "<think>");
  assert.equal(tok.idToToken(6 + ("A".charCodeAt(0) - 0x20)), "A");
  assert.equal(tok.idToToken(101), undefined);
});

Deno.test("CharTokenizer.encode() maps each special token to one id", () => {
  const tok = new CharTokenizer();
  const ids = tok.encode("<|im_start|>user\nHi<|im_end|>\n<think>1+1=2</think>2");
  const A = (c: string) => tok.tokenToId(c);
  assert.deepEqual(ids, [
    1,
    A("u"),
    A("s"),
    A("e"),
    A("r"),
    5,
    A("H"),
    A("i"),
    2,
    5,
    3,
    A("1"),
    A("+"),
    A("1"),
    A("="),
    A("2"),
    4,
    A("2"),
  ]);
});

Deno.test("CharTokenizer.encode() treats partial specials as plain characters", () => {
  const tok = new CharTokenizer();
  const text = "<thin> <|im_end| </think";
  const ids = tok.encode(text);
  assert.equal(ids.length, text.length);
  assert.ok(ids.every((id) => id >= 5));
  assert.equal(tok.decode(ids), text);
  // A plain "<" right before a special token.
  assert.deepEqual(tok.encode("<<think>"), [tok.tokenToId("<"), 3]);
});

Deno.test("CharTokenizer.encode() throws a RangeError naming the character and its index", () => {
  const tok = new CharTokenizer();
  assert.throws(
    () => tok.encode("ab\técd"),
    (err: unknown) =>
      err instanceof RangeError &&
      err.message ===
        'Cannot encode text: character at index 2 is not in the vocabulary: current value is "\\t" (U+0009)',
  );
  assert.throws(() => tok.encode("café"), /index 3 .*"é" \(U\+00E9\)/);
});

Deno.test("CharTokenizer.decode() round-trips and can skip control tokens", () => {
  const tok = new CharTokenizer();
  const text = "<|im_start|>assistant\n<think>7+5=12 12-3=9</think>9<|im_end|><|endoftext|>";
  const ids = tok.encode(text);
  assert.equal(tok.decode(ids), text);
  assert.equal(
    tok.decode(ids, { skipSpecialTokens: true }),
    "assistant\n<think>7+5=12 12-3=9</think>9",
  );
  let printable = "";
  for (let c = 0x20; c <= 0x7e; c++) printable += String.fromCharCode(c);
  assert.equal(tok.decode(tok.encode(printable + "\n")), printable + "\n");
  assert.throws(() => tok.decode([101]), RangeError);
  assert.throws(() => tok.decode([-1]), RangeError);
  assert.throws(() => tok.decode([1.5]), RangeError);
});

Deno.test("CharTokenizer.toJSON() and CharTokenizer.fromJSON() round-trip", () => {
  const tok = new CharTokenizer();
  const json = JSON.stringify(tok);
  const restored = CharTokenizer.fromJSON(JSON.parse(json));
  assert.deepEqual(restored.toJSON(), tok.toJSON());
  const text = "Ann has 7 pens.<think>7</think>7";
  assert.deepEqual(restored.encode(text), tok.encode(text));
  assert.deepEqual(CharTokenizer.fromJSON(json).encode(text), tok.encode(text));
  const small = new CharTokenizer({ alphabet: "0123456789+-= " });
  const smallRestored = CharTokenizer.fromJSON(small.toJSON());
  assert.equal(smallRestored.vocabSize, 19);
  assert.deepEqual(
    smallRestored.encode("<think>1+2=3</think>3"),
    small.encode("<think>1+2=3</think>3"),
  );
});

Deno.test("CharTokenizer.fromJSON() rejects invalid input", () => {
  const good = new CharTokenizer().toJSON();
  assert.throws(() => CharTokenizer.fromJSON(null), TypeError);
  assert.throws(() => CharTokenizer.fromJSON("{not json"), SyntaxError);
  assert.throws(() => CharTokenizer.fromJSON({ ...good, type: "bpe" }), RangeError);
  assert.throws(() => CharTokenizer.fromJSON({ ...good, version: 2 }), RangeError);
  assert.throws(
    () => CharTokenizer.fromJSON({ ...good, specialTokens: ["<|endoftext|>"] }),
    RangeError,
  );
  assert.throws(() => CharTokenizer.fromJSON({ ...good, specialTokens: [1, 2] }), TypeError);
  assert.throws(() => CharTokenizer.fromJSON({ ...good, alphabet: 5 }), TypeError);
  assert.throws(() => CharTokenizer.fromJSON({ ...good, alphabet: "abca" }), /appears twice/);
});

Deno.test("CharTokenizer implements the Tokenizer interface", () => {
  const tok: Tokenizer = new CharTokenizer();
  assert.equal(tok.decode(tok.encode("42")), "42");
  assert.equal(tok.tokenToId("<|im_end|>"), 2);
});
