"""Writes a Hugging Face model folder with a real model's configuration and random weights.

The hub is not reachable from the machines this project is developed on, so the slow test
(`deno task test:slow`) runs on a folder with Qwen2.5-0.5B's exact configuration and random
weights. Run by hand (the venv of tools/requirements-peer.txt):

    python tools/make_random_hf_model.py --out runs/qwen2.5-0.5b-random

It saves with transformers' own `save_pretrained` (bf16), so the folder is what a user gets
from the hub apart from the weights' values, and copies the byte-level BPE tokenizer fixture
of tests/fixtures/tokenizers/tiny-qwen2 (Qwen2's exact tokenizer configuration, 1,005 ids).
"""

import argparse
import shutil
from pathlib import Path

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

# config.json of Qwen/Qwen2.5-0.5B-Instruct.
QWEN25_05B = dict(
    vocab_size=151936,
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    hidden_act="silu",
    use_sliding_window=False,
    # The tokenizer fixture's <|im_end|> and <|endoftext|>: Qwen's real ids (151645, 151643)
    # are beyond its 1,005 tokens.
    eos_token_id=1002,
    pad_token_id=1000,
)

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "runs/qwen2.5-0.5b-random"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    config = Qwen2Config(**QWEN25_05B)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    out = Path(args.out)
    model.save_pretrained(out)
    tokenizer = ROOT / "tests/fixtures/tokenizers/tiny-qwen2"
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer / name, out / name)
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters -> {out}")


if __name__ == "__main__":
    main()
