"""Golden values for mgrpo's HfTokenizer and Hugging Face chat-template rendering.

No real Qwen2 tokenizer.json can be downloaded where mgrpo is developed, so this script builds a
small one that is configured exactly like Qwen2's (Qwen2 / Qwen2.5 / DeepSeek-R1-Distill-Qwen):
byte-level BPE with Qwen2's pre-tokenizer Split regex (digits one by one) followed by a ByteLevel
pre-tokenizer, the NFC normalizer, the ByteLevel decoder and post-processor, the special added
tokens <|endoftext|>, <|im_start|>, <|im_end|> and the non-special added tokens <think>, </think>.
The BPE merges are trained on the repository's benchmark problems plus a few multilingual lines,
with about 1000 entries in the vocabulary.

It writes:
  tests/fixtures/tokenizers/tiny-qwen2/{tokenizer.json,tokenizer_config.json,generation_config.json}
  tests/fixtures/tokenizers/golden.json      ids and decodes from `tokenizers` and transformers
  tests/fixtures/chat_templates/rendered.json transformers' apply_chat_template for the real
                                             templates in tests/fixtures/chat_templates/*.json

Every id sequence is produced twice, by `tokenizers.Tokenizer.from_file` and by
`transformers.AutoTokenizer.from_pretrained`, and the script stops if the two disagree.

Usage (tested with tokenizers 0.23.3, transformers 5.23.0, jinja2 3.1.6):
    python -m venv /tmp/peer-venv && /tmp/peer-venv/bin/pip install transformers tokenizers
    /tmp/peer-venv/bin/python tools/tokenizer_golden.py
"""

import json
import pathlib
import shutil
import subprocess
import unicodedata

import tokenizers
import transformers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer
from transformers import AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOK_DIR = ROOT / "tests" / "fixtures" / "tokenizers" / "tiny-qwen2"
GOLDEN = ROOT / "tests" / "fixtures" / "tokenizers" / "golden.json"
TEMPLATES = ROOT / "tests" / "fixtures" / "chat_templates"
RENDERED = TEMPLATES / "rendered.json"

# Qwen2's pre-tokenizer regex, as in transformers' Qwen2Tokenizer and every Qwen2 tokenizer.json.
QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
VOCAB_SIZE = 1000
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
NON_SPECIAL = ["<think>", "</think>"]

MULTILINGUAL = [
    "你好，世界！我们来计算一下这个数学问题。答案是四十二。",
    "日本語のテキストです。数学の問題を解きます。",
    "한국어 텍스트입니다. 수학 문제를 풉니다.",
    "Привет, мир! Давайте решим задачу.",
    "مرحبا بالعالم. لنحل هذه المسألة.",
    "שלום עולם. בואו נפתור את הבעיה.",
    "Café, naïve, résumé, über, Ångström, São Paulo, Zürich.",
    "Emoji: 👍 😀 🎉 🙂 👨‍👩‍👧‍👦 ✅",
]

# Strings chosen to exercise the pre-tokenizer regex, the byte-level alphabet, NFC, added tokens.
CASES = [
    "",
    "Hello world",
    "Hello, World! How are you?",
    " leading space",
    "   three leading spaces",
    "trailing spaces   ",
    "multiple   spaces\tand\ttabs\t\t",
    "line1\nline2\n\nline4\n",
    "windows\r\nline\r\n\r\nend",
    "\n\n\n",
    "   \n  \n",
    " \t \n\t",
    "12345678901234567890",
    "3.14159 and -42 and 1,000,000 and 1e-9",
    "x^2 + 2x + 1 = 0",
    "２０２５年",
    "①②③ ⅷ ٣٤٥ ४२",
    "你好，世界！",
    "日本語のテキスト",
    "한국어 텍스트",
    "Привет, мир!",
    "مرحبا بالعالم",
    "שלום עולם",
    "👍🏽 family: 👨‍👩‍👧‍👦 🎉🙂",
    "e\u0301 cafe\u0301 A\u030a n\u0303",
    "Ünïcödé\u00a0nbsp\u2003emspace\u3000ideographic",
    "a\u200bb\u200dc\ufeffd",
    "\x00\x01\x1f\x7f control",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛",
    "I'm sure they'LL say we'VE DON'T can't",
    "Hello!!! ... ??? --- *** ((()))",
    "$\\boxed{42}$ and \\frac{1}{2} and \\sqrt{x}",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more text<|endoftext|>",
    "<|im_end|><|im_end|><|im_start|>",
    " <|im_end|> spaced ",
    "<think>2+2=4</think>The answer is 4.",
    "<think>\nLet me think.\n</think>\n\nThe answer is \\boxed{4}.<|im_end|>",
    " <think> spaced </think> ",
    "<|im_start <think <|unknown|> </think",
    "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers' market "
    "daily for $2 per fresh duck egg. How much in dollars does she make every day?",
]

# Strings whose ids are decoded prefix by prefix (streaming): prefixes may cut a UTF-8 sequence.
PARTIAL = ["你好，世界！", "👨‍👩‍👧‍👦 ok", "e\u0301t\u00e9"]


def corpus_lines():
    lines = []
    for name in ["gsm8k_test.jsonl", "math500_test.jsonl"]:
        path = ROOT / "data" / "benchmarks" / name
        with path.open(encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= 400:
                    break
                row = json.loads(line)
                lines.append(row["problem"])
                lines.append(row.get("solution") or "")
    return lines + MULTILINGUAL * 20


def build_tokenizer():
    tok = Tokenizer(
        BPE(
            dropout=None,
            unk_token=None,
            continuing_subword_prefix="",
            end_of_word_suffix="",
            fuse_unk=False,
            byte_fallback=False,
        )
    )
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    # As in Qwen2: the added tokens come after the BPE vocabulary, not normalized.
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in NON_SPECIAL])
    return tok


def write_tokenizer(tok):
    TOK_DIR.mkdir(parents=True, exist_ok=True)
    tok.save(str(TOK_DIR / "tokenizer.json"))
    # The Python bindings serialise a few defaults differently from Qwen2's own tokenizer.json
    # (decoder flags, null instead of "" affixes); write them as Qwen2 has them. The goldens below
    # are computed from the file as written.
    data = json.loads((TOK_DIR / "tokenizer.json").read_text(encoding="utf-8"))
    data["decoder"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    data["model"]["continuing_subword_prefix"] = ""
    data["model"]["end_of_word_suffix"] = ""
    # Qwen2's file lists merges as "a b" strings (the older format); newer `tokenizers` write pairs.
    data["model"]["merges"] = [" ".join(pair) for pair in data["model"]["merges"]]
    (TOK_DIR / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    ids = {t: tok.token_to_id(t) for t in SPECIAL + NON_SPECIAL}
    qwen_template = json.loads((TEMPLATES / "qwen2.5-0.5b-instruct.json").read_text(encoding="utf-8"))
    config = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(ids[t]): {
                "content": t,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": t in SPECIAL,
            }
            for t in SPECIAL + NON_SPECIAL
        },
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": qwen_template["chat_template"],
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    (TOK_DIR / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n")
    generation = {
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
        "pad_token_id": ids["<|endoftext|>"],
    }
    (TOK_DIR / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
    return ids


def golden(ids_of):
    tok = Tokenizer.from_file(str(TOK_DIR / "tokenizer.json"))
    hf = AutoTokenizer.from_pretrained(str(TOK_DIR))
    cases = []
    for text in CASES:
        ids = tok.encode(text).ids
        hf_ids = hf.encode(text)
        if ids != hf_ids:
            raise SystemExit(f"tokenizers and transformers disagree on {text!r}: {ids} vs {hf_ids}")
        decoded = tok.decode(ids, skip_special_tokens=False)
        skipped = tok.decode(ids, skip_special_tokens=True)
        if decoded != hf.decode(ids) or skipped != hf.decode(ids, skip_special_tokens=True):
            raise SystemExit(f"tokenizers and transformers decode {text!r} differently")
        cases.append(
            {
                "text": text,
                "ids": ids,
                "tokens": tok.encode(text).tokens,
                "decoded": decoded,
                "decoded_skip_special": skipped,
                "nfc": unicodedata.normalize("NFC", text),
            }
        )
    partial = []
    for text in PARTIAL:
        ids = tok.encode(text).ids
        partial.append(
            {
                "text": text,
                "ids": ids,
                "prefix_decodes": [tok.decode(ids[:k], skip_special_tokens=False) for k in range(len(ids) + 1)],
            }
        )
    single = [{"id": i, "decoded": tok.decode([i], skip_special_tokens=False)} for i in range(tok.get_vocab_size(with_added_tokens=True))]
    # Prompt ids end to end: the tiny tokenizer's own (Qwen2.5) template, tokenized by transformers.
    chat_ids = {}
    for name, conv in CONVERSATIONS.items():
        encoding = hf.apply_chat_template(
            conv["messages"],
            tokenize=True,
            add_generation_prompt=conv["add_generation_prompt"],
            continue_final_message=conv.get("continue_final_message", False),
        )
        chat_ids[name] = list(encoding["input_ids"])
    return {
        "generator": f"tools/tokenizer_golden.py (tokenizers {tokenizers.__version__}, transformers {transformers.__version__})",
        "chat_ids": chat_ids,
        "vocab_size": tok.get_vocab_size(with_added_tokens=True),
        "added_tokens": ids_of,
        "eos_token_id": hf.eos_token_id,
        "pad_token_id": hf.pad_token_id,
        "cases": cases,
        "partial": partial,
        "single_id_decodes": single,
    }


SYSTEM = (
    "You are a helpful AI assistant. A conversation between User and Assistant.\n"
    "The User asks a mathematical question, and the Assistant solves it step-by-step.\n"
    "The Assistant must first output a detailed step-by-step reasoning process enclosed within\n"
    "<think></think> tags. After the </think> tag, the Assistant must provide the final answer\n"
    "based on the reasoning.\n"
)
QUESTION = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether?"
ANSWER = "<think>\nIn May she sold 48 / 2 = 24 clips, so 48 + 24 = 72.\n</think>\nThe answer is $\\boxed{72}$."
GUIDE = "Where might I have gone wrong this time? Let me double-check carefully."

CONVERSATIONS = {
    "layer1": {
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
        "add_generation_prompt": True,
    },
    "layer1_no_system": {
        "messages": [{"role": "user", "content": QUESTION}],
        "add_generation_prompt": True,
    },
    "layer2": {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": ANSWER},
            {"role": "user", "content": GUIDE},
        ],
        "add_generation_prompt": True,
    },
    "layer2_no_generation_prompt": {
        "messages": [
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": ANSWER},
            {"role": "user", "content": GUIDE},
        ],
        "add_generation_prompt": False,
    },
    "continue_final_message": {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": "<think>\nIn May she sold 24 clips. Wait, let me double-check that."},
        ],
        "add_generation_prompt": False,
        "continue_final_message": True,
    },
}


def special_token_content(value):
    return value["content"] if isinstance(value, dict) else value


def rendered():
    hf = AutoTokenizer.from_pretrained(str(TOK_DIR))
    print("special tokens of the tiny tokenizer:", hf.special_tokens_map)
    out = {"generator": f"tools/tokenizer_golden.py (transformers {transformers.__version__})", "templates": {}}
    for path in sorted(TEMPLATES.glob("*.json")):
        if path.name == "rendered.json":
            continue
        fixture = json.loads(path.read_text(encoding="utf-8"))
        # What apply_chat_template passes besides the messages: the named special tokens that are set.
        special = {
            key: special_token_content(fixture[key])
            for key in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]
            if fixture.get(key) is not None
        }
        results = {}
        for name, conv in CONVERSATIONS.items():
            results[name] = hf.apply_chat_template(
                conv["messages"],
                chat_template=fixture["chat_template"],
                tokenize=False,
                add_generation_prompt=conv["add_generation_prompt"],
                continue_final_message=conv.get("continue_final_message", False),
                **special,
            )
        out["templates"][path.stem] = {"special_tokens": special, "rendered": results}
    out["conversations"] = CONVERSATIONS
    return out


def dump(value):
    return json.dumps(value, ensure_ascii=False, indent=2) + "\n"


def deno_fmt(paths):
    """Formats the written JSON as `deno fmt` (and so `deno task check`) wants it, if deno is here."""
    deno = shutil.which("deno")
    if deno is None:
        print("deno not found: run `deno fmt tests/fixtures/tokenizers tests/fixtures/chat_templates`")
        return
    subprocess.run([deno, "fmt", *map(str, paths)], check=True, cwd=ROOT)


def main():
    tok = build_tokenizer()
    ids = write_tokenizer(tok)
    GOLDEN.write_text(dump(golden(ids)), encoding="utf-8")
    RENDERED.write_text(dump(rendered()), encoding="utf-8")
    deno_fmt([TOK_DIR, GOLDEN, RENDERED])
    print(f"wrote {TOK_DIR}, {GOLDEN}, {RENDERED}")


if __name__ == "__main__":
    main()
