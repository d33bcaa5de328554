"""Golden values for mgrpo's HfTokenizer and chat-template rendering on REAL vocabularies.

The tokenizers are Qwen3's (151,669 ids, byte-level BPE, NFC, digits one by one, merges as pairs)
and Llama 3's (128,256 ids, no normalizer, digits in groups of up to three, `ignore_merges`, merges
as "a b" strings), as tools/fetch_real_tokenizers.py extracted them into
tests/fixtures/tokenizers/{qwen3,llama3}/ (tokenizer.json gzipped). Each is loaded with
`transformers.AutoTokenizer.from_pretrained(<folder>)` from a temporary folder holding the
decompressed tokenizer.json and the tokenizer_config.json (whose chat template is used), after
checking the sha256 that source.json records.

It writes tests/fixtures/tokenizers/real_golden.json with, per tokenizer:
  cases  for each of TEXTS: the ids of `tokenizer(text, add_special_tokens=False)` (and with
         add_special_tokens=True), `decode(ids)` and `decode(ids, skip_special_tokens=True)`
  chats  for each of CHATS: `apply_chat_template(messages, tokenize=False,
         add_generation_prompt=..., **template_kwargs)` and the ids of tokenize=True
Every id sequence is also computed by the Rust `tokenizers` library directly and must agree.

Usage (tested with transformers 5.25.0, tokenizers 0.23.3, jinja2 3.1.6):
    python3 tools/fetch_real_tokenizers.py          # only to re-extract the vocabularies
    /tmp/trlvenv/bin/python tools/real_tokenizer_golden.py
"""

import gzip
import hashlib
import json
import pathlib
import shutil
import subprocess
import tempfile

import jinja2
import tokenizers
import transformers
from tokenizers import Tokenizer
from transformers import AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "tokenizers"
GOLDEN = FIXTURES / "real_golden.json"
FAMILIES = ["qwen3", "llama3"]

# Each string targets something a real vocabulary does that a tiny one cannot show.
TEXTS = [
    "",
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    " leading space and trailing space ",
    "multiple     spaces\t\ttabs\t and   mixed \t runs",
    "line1\nline2\n\n\nline5\n",
    "windows\r\nline\r\n\r\nend\r",
    "        eight leading spaces (code indentation)",
    "x^2 + 2x + 1 = 0, so x = -1.",
    "\\frac{a}{b} + \\sqrt{x^2+y^2} = \\boxed{42}",
    "$$\\int_0^\\infty e^{-x^2}\\,dx = \\frac{\\sqrt{\\pi}}{2}$$",
    "12345678901234567890",
    "3.14159 -42 +7 1,000,000 1e-9 0x1F 2025-06-01 12:30:45",
    "Natalia sold 48 clips in April and 24 in May: 48 + 24 = 72.",
    "I'm sure they'LL say we'VE DON'T can't won't it's",
    "Hello , world . I do n't know ' s",
    "Hello!!! ... ??? --- *** ((())) [[]] {{}} <<>>",
    "def f(x):\n    return x ** 2  # square\n\nprint(f(3))\n",
    "for (let i = 0; i < n; i++) { sum += a[i]; }",
    '{"key": "value", "list": [1, 2, 3], "nested": {"a": null}}',
    "https://example.com/path?query=1&x=y#frag user@example.org",
    "你好，世界！我们来计算一下这个数学问题。",
    "日本語のテキストです。カタカナとひらがな。",
    "한국어 텍스트입니다. 수학 문제를 풉니다.",
    "Привет, мир! Давайте решим задачу.",
    "مرحبا بالعالم. لنحل هذه المسألة.",
    "שלום עולם",
    "नमस्ते दुनिया, यह हिंदी है।",
    "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
    "Café, naïve, résumé, über, Ångström, São Paulo",
    "e\u0301 cafe\u0301 A\u030a n\u0303 (combining marks)",
    "nbsp\u00a0em\u2003ideographic\u3000zero\u200bwidth\u200djoiner\ufeffbom",
    "👍🏽 family: 👨‍👩‍👧‍👦 flags: 🇫🇷🇯🇵 🎉🙂",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 ①②③ ２０２５年",
    "\x00\x01\x1f\x7f control characters",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<think>\nLet me think step by step.\n</think>\n\nThe answer is \\boxed{4}.<|im_end|>",
    " <think> spaced </think> text<|endoftext|>more",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<|im_start <think <|unknown|> </think <|eot_id <|reserved_special_token_0|>",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!!!!!!!!!!!!!!!!!!!!",
]

SYSTEM = "You are a helpful assistant. Think step by step inside <think></think>, then answer."
QUESTION = "Natalia sold clips to 48 of her friends in April, and then she sold half as many in May. How many clips did she sell altogether?"
ANSWER = "<think>\nIn May she sold 48 / 2 = 24 clips.\n48 + 24 = 72.\n</think>\n\nShe sold $\\boxed{72}$ clips."
GUIDE = "Where might I have gone wrong this time? Let me double-check carefully."

# Conversations; `template_kwargs` go to the template as apply_chat_template's **kwargs.
CHATS = {
    "system_user": {
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
        "add_generation_prompt": True,
    },
    "user_only": {
        "messages": [{"role": "user", "content": QUESTION}],
        "add_generation_prompt": True,
    },
    "multi_turn": {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": ANSWER},
            {"role": "user", "content": GUIDE},
        ],
        "add_generation_prompt": True,
    },
    "ends_with_assistant": {
        "messages": [
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "<think>\n2+2=4\n</think>\n\n4"},
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": ANSWER},
        ],
        "add_generation_prompt": False,
    },
    "thinking_off": {
        "messages": [{"role": "user", "content": QUESTION}],
        "add_generation_prompt": True,
        "template_kwargs": {"enable_thinking": False},
    },
    "thinking_on": {
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
        "add_generation_prompt": True,
        "template_kwargs": {"enable_thinking": True},
    },
    # Spaces next to the newlines that Qwen3's template strips with strip('\n') / lstrip('\n').
    "reasoning_spaces": {
        "messages": [
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "<think>\n  two plus two  \n</think>\n\n  It is 4.  "},
        ],
        "add_generation_prompt": False,
    },
    # Characters Python's str.strip() and JavaScript's String.prototype.trim() disagree on, at the
    # edges of a message that Llama 3's template passes through `| trim`.
    "trim_edges": {
        "messages": [
            {"role": "system", "content": "\x1c\x1d\x1e\x1f\x85 Be brief. \u3000\u00a0\n"},
            {"role": "user", "content": "\ufeffHi\ufeff"},
        ],
        "add_generation_prompt": True,
    },
}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def materialize(family, into):
    """Writes the family's tokenizer.json (decompressed) and tokenizer_config.json into `into`."""
    source = json.loads((FIXTURES / family / "source.json").read_text(encoding="utf-8"))
    into.mkdir()
    for name, compressed in [("tokenizer.json", True), ("tokenizer_config.json", False)]:
        path = FIXTURES / family / (name + ".gz" if compressed else name)
        data = gzip.decompress(path.read_bytes()) if compressed else path.read_bytes()
        want = source["files"][f"package/models/{name}"]["sha256"]
        if sha256(data) != want:
            raise SystemExit(f"{path}: sha256 {sha256(data)} is not {want} of source.json; re-run tools/fetch_real_tokenizers.py")
        (into / name).write_bytes(data)
    return source


def golden(family, folder):
    hf = AutoTokenizer.from_pretrained(str(folder))
    raw = Tokenizer.from_file(str(folder / "tokenizer.json"))
    cases = []
    for text in TEXTS:
        ids = hf(text, add_special_tokens=False)["input_ids"]
        ids_special = hf(text, add_special_tokens=True)["input_ids"]
        if ids != raw.encode(text, add_special_tokens=False).ids:
            raise SystemExit(f"{family}: tokenizers and transformers disagree on {text!r}")
        decoded = hf.decode(ids)
        skipped = hf.decode(ids, skip_special_tokens=True)
        if decoded != raw.decode(ids, skip_special_tokens=False) or skipped != raw.decode(ids):
            raise SystemExit(f"{family}: tokenizers and transformers decode {text!r} differently")
        cases.append(
            {
                "text": text,
                "ids": ids,
                "ids_add_special_tokens": ids_special,
                "decoded": decoded,
                "decoded_skip_special": skipped,
            }
        )
    chats = {}
    for name, chat in CHATS.items():
        kwargs = chat.get("template_kwargs", {})
        text = hf.apply_chat_template(
            chat["messages"], tokenize=False, add_generation_prompt=chat["add_generation_prompt"], **kwargs
        )
        ids = hf.apply_chat_template(
            chat["messages"], tokenize=True, add_generation_prompt=chat["add_generation_prompt"], **kwargs
        )["input_ids"]
        if list(ids) != hf(text, add_special_tokens=False)["input_ids"]:
            raise SystemExit(f"{family}: apply_chat_template ids of {name} are not those of its text")
        chats[name] = {"text": text, "ids": list(ids)}
    return {
        "class": type(hf).__name__,
        "vocab_size": len(hf),
        "eos_token_id": hf.eos_token_id,
        "pad_token_id": hf.pad_token_id,
        "bos_token_id": hf.bos_token_id,
        "cases": cases,
        "chats": chats,
    }


def main():
    out = {
        "generator": (
            f"tools/real_tokenizer_golden.py (transformers {transformers.__version__}, "
            f"tokenizers {tokenizers.__version__}, jinja2 {jinja2.__version__})"
        ),
        "chats": CHATS,
        "tokenizers": {},
    }
    with tempfile.TemporaryDirectory(prefix="mgrpo-real-golden-") as tmp:
        for family in FAMILIES:
            source = materialize(family, pathlib.Path(tmp) / family)
            entry = golden(family, pathlib.Path(tmp) / family)
            out["tokenizers"][family] = {"package": f"{source['package']}@{source['version']}", **entry}
    GOLDEN.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    deno = shutil.which("deno")
    if deno is None:
        print(f"deno not found: run `deno fmt {GOLDEN.relative_to(ROOT)}`")
    else:
        subprocess.run([deno, "fmt", str(GOLDEN)], check=True, cwd=ROOT)
    print(f"wrote {GOLDEN.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
