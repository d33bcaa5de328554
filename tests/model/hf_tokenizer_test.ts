// Goldens: tests/fixtures/tokenizers/golden.json, written by tools/tokenizer_golden.py with the
// Rust `tokenizers` library and `transformers.AutoTokenizer` (which agree on every id there).
import assert from "node:assert/strict";
import { HfTokenizer, loadHfTokenizer } from "../../model/hf_tokenizer.ts";
import type { Tokenizer } from "../../model/tokenizer.ts";
import { type ChatMessage, loadChatTemplate, renderChat } from "../../prompts/chat_template.ts";

const DIR = new URL("../fixtures/tokenizers/tiny-qwen2", import.meta.url).pathname;
const GOLDEN_PATH = new URL("../fixtures/tokenizers/golden.json", import.meta.url).pathname;
const RENDERED_PATH = new URL("../fixtures/chat_templates/rendered.json", import.meta.url).pathname;

interface GoldenCase {
  text: string;
  ids: number[];
  tokens: string[];
  decoded: string;
  decoded_skip_special: string;
  nfc: string;
}

interface Golden {
  chat_ids: Record<string, number[]>;
  vocab_size: number;
  added_tokens: Record<string, number>;
  eos_token_id: number;
  pad_token_id: number;
  cases: GoldenCase[];
  partial: { text: string; ids: number[]; prefix_decodes: string[] }[];
  single_id_decodes: { id: number; decoded: string }[];
}

const golden: Golden = JSON.parse(Deno.readTextFileSync(GOLDEN_PATH));
const tok = await loadHfTokenizer(DIR);

function readJson(name: string): Record<string, unknown> {
  return JSON.parse(Deno.readTextFileSync(`${DIR}/${name}`));
}

async function withDir(
  files: Record<string, string>,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mgrpo-hf-tokenizer-" });
  try {
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("HfTokenizer.encode() gives the ids of tokenizers and transformers for every golden string", () => {
  assert.ok(golden.cases.length >= 40);
  for (const c of golden.cases) {
    assert.deepEqual(tok.encode(c.text), c.ids, `encode(${JSON.stringify(c.text)})`);
  }
});

Deno.test("HfTokenizer.encode() splits digits one by one and keeps added tokens whole", () => {
  const digits = tok.encode("12345678901234567890");
  assert.equal(digits.length, 20);
  assert.deepEqual(digits.map((id) => tok.idToToken(id)), [..."12345678901234567890"]);
  const ids = tok.encode("<|im_start|>user\nHi<|im_end|><think>x</think>");
  assert.equal(ids[0], tok.imStartId);
  assert.ok(ids.includes(tok.imEndId as number));
  assert.equal(ids.at(-3), tok.thinkStartId);
  assert.equal(ids.at(-1), tok.thinkEndId);
  // A partial or unknown special token is ordinary text.
  assert.ok(!tok.encode("<|im_end").includes(tok.imEndId as number));
  assert.deepEqual(tok.encode(""), []);
  // The byte-level alphabet covers any text: no unknown token.
  assert.equal(tok.decode(tok.encode("\u{1F9EA}\u0000\uFFFF")), "\u{1F9EA}\u0000\uFFFF");
});

Deno.test("HfTokenizer.decode() matches the golden decodes, with and without special tokens", () => {
  for (const c of golden.cases) {
    assert.equal(tok.decode(c.ids), c.decoded, `decode(${JSON.stringify(c.text)})`);
    assert.equal(
      tok.decode(c.ids, { skipSpecialTokens: true }),
      c.decoded_skip_special,
      `decode(${JSON.stringify(c.text)}, skip)`,
    );
  }
  const withSpecials = golden.cases.find((c) => c.text.startsWith("<think>\nLet me think."));
  assert.ok(withSpecials !== undefined);
  assert.equal(
    withSpecials.decoded_skip_special,
    "<think>\nLet me think.\n</think>\n\nThe answer is \\boxed{4}.",
  );
});

Deno.test("HfTokenizer.decode() round-trips every golden string to its NFC form", () => {
  for (const c of golden.cases) {
    assert.equal(tok.decode(tok.encode(c.text)), c.nfc, JSON.stringify(c.text));
  }
  // NFC composes e + U+0301 into é before tokenization, as the Rust normalizer does.
  assert.equal(tok.decode(tok.encode("cafe\u0301")), "caf\u00e9");
  assert.deepEqual(tok.encode("cafe\u0301"), tok.encode("caf\u00e9"));
});

Deno.test("HfTokenizer.decode() decodes cut UTF-8 sequences and single ids as tokenizers does", () => {
  for (const p of golden.partial) {
    p.prefix_decodes.forEach((want, k) => {
      assert.equal(tok.decode(p.ids.slice(0, k)), want, `${JSON.stringify(p.text)} prefix ${k}`);
    });
  }
  assert.ok(golden.partial[0]!.prefix_decodes.some((d) => d.endsWith("\uFFFD")));
  assert.equal(golden.single_id_decodes.length, golden.vocab_size);
  for (const { id, decoded } of golden.single_id_decodes) {
    assert.equal(tok.decode([id]), decoded, `decode([${id}])`);
  }
});

Deno.test("HfTokenizer.encode() of a rendered chat gives transformers' apply_chat_template ids", async () => {
  const conversations: Record<
    string,
    { messages: ChatMessage[]; add_generation_prompt: boolean; continue_final_message?: boolean }
  > = JSON.parse(Deno.readTextFileSync(RENDERED_PATH)).conversations;
  const template = await loadChatTemplate(DIR);
  assert.deepEqual(Object.keys(golden.chat_ids).sort(), Object.keys(conversations).sort());
  for (const [name, conv] of Object.entries(conversations)) {
    const text = renderChat(conv.messages, {
      template,
      addGenerationPrompt: conv.add_generation_prompt,
      continueFinalMessage: conv.continue_final_message ?? false,
    });
    assert.deepEqual(tok.encode(text), golden.chat_ids[name], name);
  }
});

Deno.test("HfTokenizer has the special-token, eos, pad and im_end ids of the config", () => {
  assert.equal(tok.vocabSize, golden.vocab_size);
  assert.equal(tok.vocabSize, 1005);
  for (const [token, id] of Object.entries(golden.added_tokens)) {
    assert.equal(tok.tokenToId(token), id, token);
    assert.equal(tok.idToToken(id), token);
  }
  assert.equal(tok.eosId, golden.eos_token_id);
  assert.equal(tok.eosId, tok.tokenToId("<|im_end|>"));
  assert.equal(tok.padId, golden.pad_token_id);
  assert.equal(tok.padId, tok.tokenToId("<|endoftext|>"));
  assert.equal(tok.imEndId, 1002);
  assert.equal(tok.imStartId, 1001);
  // <think> and </think> are added but not special: skipSpecialTokens keeps them.
  assert.deepEqual(tok.specialIds, [1000, 1001, 1002]);
  // <|im_end|> first, then eos, then generation_config's eos_token_id, without repeats.
  assert.deepEqual(tok.stopIds, [1002, 1000]);
  // Vocabulary entries are in byte-level form: " the" is "Ġthe".
  const the = tok.tokenToId("Ġthe");
  assert.equal(typeof the, "number");
  assert.deepEqual(tok.encode(" the"), [the]);
  assert.equal(tok.tokenToId("<|not a token|>"), undefined);
  assert.equal(tok.idToToken(1005), undefined);
  const asInterface: Tokenizer = tok;
  assert.equal(asInterface.eosId, 1002);
});

Deno.test("HfTokenizer reads merges written as pairs, as newer tokenizers versions save them", () => {
  const json = readJson("tokenizer.json");
  const model = json.model as { merges: string[] };
  const pairs = model.merges.map((m) => m.split(" "));
  const tok2 = new HfTokenizer({ ...json, model: { ...model, merges: pairs } }, {
    config: readJson("tokenizer_config.json"),
  });
  for (const c of golden.cases) assert.deepEqual(tok2.encode(c.text), c.ids);
});

Deno.test("HfTokenizer.decode() never cleans up tokenization spaces of a BPE model", () => {
  // transformers 5 ignores clean_up_tokenization_spaces=true for BPE (Llama-3 sets it); the
  // npm package would apply it and turn "a , b ." into "a, b.".
  const config = { ...readJson("tokenizer_config.json"), clean_up_tokenization_spaces: true };
  const tok2 = new HfTokenizer(readJson("tokenizer.json"), { config });
  const text = "Hello , world . I 'm here !";
  assert.equal(tok2.decode(tok2.encode(text)), text);
  // Without the field the package cleans up by default; the wrapper does not.
  const tok3 = new HfTokenizer(readJson("tokenizer.json"), { config: { eos_token: "<|im_end|>" } });
  assert.equal(tok3.decode(tok3.encode(text)), text);
});

Deno.test("HfTokenizer takes eos and pad from generation_config.json when the config has none", () => {
  const json = readJson("tokenizer.json");
  const config = { ...readJson("tokenizer_config.json"), eos_token: null, pad_token: null };
  const tok2 = new HfTokenizer(json, {
    config,
    generationConfig: { eos_token_id: [1000, 1002], pad_token_id: 1001 },
  });
  assert.equal(tok2.eosId, 1000);
  assert.equal(tok2.padId, 1001);
  assert.deepEqual(tok2.stopIds, [1002, 1000]);
  // No pad anywhere: pad with eos.
  const tok3 = new HfTokenizer(json, { config, generationConfig: { eos_token_id: 1000 } });
  assert.equal(tok3.padId, 1000);
  // DeepSeek-style AddedToken objects in the config.
  const tok4 = new HfTokenizer(json, {
    config: { eos_token: { __type: "AddedToken", content: "<|endoftext|>" } },
  });
  assert.equal(tok4.eosId, 1000);
  assert.equal(tok4.padId, 1000);
});

Deno.test("HfTokenizer reports a vocabulary without <|im_end|> as having no imEndId", () => {
  const json = readJson("tokenizer.json");
  const added = (json.added_tokens as { content: string }[]).filter((t) =>
    t.content !== "<|im_end|>"
  );
  const tok2 = new HfTokenizer({ ...json, added_tokens: added }, {
    config: { eos_token: "<|endoftext|>" },
  });
  assert.equal(tok2.imEndId, undefined);
  assert.deepEqual(tok2.stopIds, [1000]);
  assert.equal(tok2.vocabSize, 1005);
});

Deno.test("HfTokenizer.decode() rejects ids outside the vocabulary", () => {
  assert.throws(() => tok.decode([5, 1005]), {
    name: "RangeError",
    message:
      "Cannot decode ids: id at position 1 must be an integer id of the vocabulary in [0, 1005): current value is 1005",
  });
  assert.throws(() => tok.decode([-1]), RangeError);
  assert.throws(() => tok.decode([1.5]), RangeError);
  assert.equal(tok.decode([]), "");
});

Deno.test("HfTokenizer() names the field of a bad config", () => {
  const json = readJson("tokenizer.json");
  assert.throws(() => new HfTokenizer(json, { config: { eos_token: "<|nope|>" } }), {
    name: "RangeError",
    message:
      'Cannot load tokenizer "tokenizer_config.json": field "eos_token" names a token that is not in the vocabulary: current value is "<|nope|>"',
  });
  assert.throws(() => new HfTokenizer(json, { config: { eos_token: 7 } }), {
    name: "TypeError",
    message:
      'Cannot load tokenizer "tokenizer_config.json": field "eos_token" must be a string or an object with a string "content": current value is 7',
  });
  assert.throws(
    () => new HfTokenizer(json, { config: {}, generationConfig: { eos_token_id: [1000, 99999] } }),
    {
      name: "RangeError",
      message:
        'Cannot load tokenizer "generation_config.json": field "eos_token_id" holds an id that is not in the vocabulary of 1005: current value is 99999',
    },
  );
  assert.throws(() => new HfTokenizer(json, {}), /no end-of-sequence token/);
  assert.throws(() => new HfTokenizer([1, 2]), {
    name: "TypeError",
    message:
      'Cannot load tokenizer "tokenizer.json": expected a JSON object: current value is [1,2]',
  });
  assert.throws(() => new HfTokenizer({ model: {} }), /field "model" must be an object/);
});

Deno.test("loadHfTokenizer() names the file that is missing or not JSON", async () => {
  await withDir({}, async (dir) => {
    await assert.rejects(
      loadHfTokenizer(dir),
      (e: Error) =>
        e.message.startsWith(
          `Cannot load tokenizer "${dir}/tokenizer.json": the file cannot be read`,
        ),
    );
  });
  await withDir({ "tokenizer.json": "{not json" }, async (dir) => {
    await assert.rejects(loadHfTokenizer(dir), {
      name: "SyntaxError",
      message: new RegExp(
        `^Cannot load tokenizer "${dir}/tokenizer\\.json": the file is not valid JSON`,
      ),
    });
  });
  const tokenizerJson = Deno.readTextFileSync(`${DIR}/tokenizer.json`);
  await withDir({ "tokenizer.json": tokenizerJson, "tokenizer_config.json": "[]" }, async (dir) => {
    await assert.rejects(loadHfTokenizer(dir), {
      name: "TypeError",
      message:
        `Cannot load tokenizer "${dir}/tokenizer_config.json": expected a JSON object: current value is []`,
    });
  });
  await withDir(
    {
      "tokenizer.json": tokenizerJson,
      "tokenizer_config.json": '{"eos_token": "<|im_end|>", "pad_token": "<|x|>"}',
    },
    async (dir) => {
      await assert.rejects(loadHfTokenizer(dir), {
        name: "RangeError",
        message:
          `Cannot load tokenizer "${dir}/tokenizer_config.json": field "pad_token" names a token that is not in the vocabulary: current value is "<|x|>"`,
      });
    },
  );
  // tokenizer.json and generation_config.json alone are enough.
  await withDir(
    { "tokenizer.json": tokenizerJson, "generation_config.json": '{"eos_token_id": 1002}' },
    async (dir) => {
      const t = await loadHfTokenizer(`${dir}/`);
      assert.equal(t.eosId, 1002);
      assert.equal(t.padId, 1002);
    },
  );
});
