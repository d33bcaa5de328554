"""Golden references for mgrpo's Hugging Face model loader (model/hf.ts).

Builds tiny random Qwen2ForCausalLM and LlamaForCausalLM models with transformers, saves them
with save_pretrained into tests/fixtures/hf/<name>/, and writes tests/fixtures/hf/golden.json:
for three prompts (token-id lists of different lengths) the full logits [T, V] of each model
and the teacher-forced log-probs (log softmax at position t of id t+1), plus RoPE inverse
frequencies computed by transformers' own rope functions (default, linear, llama3).

Folders written:
  tiny-qwen2/          Qwen2, tied embeddings, f32
  tiny-qwen2-bf16/     the same weights saved as bf16 (golden: the bf16-rounded weights run in f32)
  tiny-qwen2-sharded/  the same f32 weights in several shards + model.safetensors.index.json
  tiny-llama/          Llama, untied, head_dim 32 != hidden/heads, llama3 rope scaling, no bias
  tiny-llama-bias/     Llama, 1 layer, tied, attention_bias (q/k/v/o bias), linear rope scaling

Weights are drawn from a fixed seed with larger-than-default spread (and random norms and
biases) so logits are of order 1 and a wrong detail shows up as a large difference.

Usage (the venv of tools/requirements-peer.txt; torch 2.15.0, transformers 5.23.0):
    /tmp/peer-venv/bin/python tools/hf_golden.py
"""

import copy
import json
import pathlib
import shutil

import safetensors
import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "hf"

# Three prompts of different lengths; ids are taken modulo each model's vocabulary.
PROMPTS = [
    [1, 17, 42, 99, 5],
    [3, 3, 64, 127, 0, 11, 58, 23, 90, 7, 120, 45, 2],
    [12, 34, 56, 78, 90, 112, 8, 30, 52, 74, 96, 118, 14, 36, 58, 80, 102, 124, 20, 42, 64, 86,
     108, 126],
]


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Normal weights (std 0.15, embeddings 0.3), norms 1 ± 0.2, biases std 0.1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.2 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.1 * noise)
            elif "embed_tokens" in name or name == "lm_head.weight":
                p.copy_(0.3 * noise)
            else:
                p.copy_(0.15 * noise)


def f32(x: float) -> float:
    """A float32 value written with 9 significant digits (round-trips a float32 exactly)."""
    return float(f"{x:.9g}")


def golden_of(model: torch.nn.Module, vocab: int) -> dict:
    model.eval()
    logits, logprobs, prompts = [], [], []
    with torch.no_grad():
        for p in PROMPTS:
            ids = [i % vocab for i in p]
            out = model(torch.tensor([ids])).logits[0].float()  # [T, V]
            lsm = torch.log_softmax(out, dim=-1)
            prompts.append(ids)
            logits.append([f32(v) for v in out.reshape(-1).tolist()])
            logprobs.append([f32(lsm[t, ids[t + 1]].item()) for t in range(len(ids) - 1)])
    return {"vocab_size": vocab, "prompts": prompts, "logits": logits, "logprobs": logprobs}


def save(model: torch.nn.Module, name: str, **kwargs) -> pathlib.Path:
    path = OUT / name
    if path.exists():
        shutil.rmtree(path)
    model.save_pretrained(path, **kwargs)
    return path


def inv_freq_case(label: str, **cfg) -> dict:
    config = LlamaConfig(vocab_size=16, num_hidden_layers=1, **cfg)
    rope_type = config.rope_parameters.get("rope_type", "default")
    if rope_type == "default":
        head_dim = config.head_dim
        base = config.rope_parameters["rope_theta"]
        inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    else:
        inv, _ = ROPE_INIT_FUNCTIONS[rope_type](config, "cpu")
    return {
        "label": label,
        "head_dim": config.head_dim,
        "rope_theta": config.rope_parameters["rope_theta"],
        "max_position_embeddings": config.max_position_embeddings,
        "rope_scaling": None if rope_type == "default" else {
            k: v for k, v in config.rope_parameters.items() if k != "rope_theta"
        },
        "inv_freq": [float(v) for v in inv.tolist()],  # float32 values, exact
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    golden: dict = {
        "generated_by": "tools/hf_golden.py",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "safetensors": safetensors.__version__,
        },
        "models": {},
    }

    # --- Qwen2: tied embeddings, f32, then bf16 and sharded copies of the same weights ---
    torch.manual_seed(0)
    qcfg = Qwen2Config(
        vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2, attn_implementation="eager",
    )
    qwen = Qwen2ForCausalLM(qcfg).float()
    randomize(qwen, seed=1)
    save(qwen, "tiny-qwen2")
    golden["models"]["tiny-qwen2"] = golden_of(qwen, 128)
    save(qwen, "tiny-qwen2-sharded", max_shard_size="100KB")

    save(copy.deepcopy(qwen).to(torch.bfloat16), "tiny-qwen2-bf16")
    # Golden of the bf16 copy: the f32 model with every weight rounded to bf16 (not
    # `.float()` of the bf16 module, which would also round the RoPE inv_freq buffer).
    rounded = copy.deepcopy(qwen)
    with torch.no_grad():
        for p in rounded.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    golden["models"]["tiny-qwen2-bf16"] = golden_of(rounded, 128)

    # --- Llama: untied, head_dim != hidden/heads, llama3 rope scaling, no bias ---
    torch.manual_seed(0)
    lcfg = LlamaConfig(
        vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=128,
        rms_norm_eps=1e-5, tie_word_embeddings=False, attention_bias=False,
        rope_parameters={
            "rope_type": "llama3", "rope_theta": 10000.0, "factor": 4.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64,
        },
        bos_token_id=1, eos_token_id=2, attn_implementation="eager",
    )
    llama = LlamaForCausalLM(lcfg).float()
    randomize(llama, seed=2)
    save(llama, "tiny-llama")
    golden["models"]["tiny-llama"] = golden_of(llama, 128)

    # --- Llama with attention_bias (q/k/v/o bias), tied, linear rope scaling ---
    torch.manual_seed(0)
    bcfg = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
        rms_norm_eps=1e-6, tie_word_embeddings=True, attention_bias=True,
        rope_parameters={"rope_type": "linear", "rope_theta": 1000.0, "factor": 2.0},
        bos_token_id=1, eos_token_id=2, attn_implementation="eager",
    )
    llama_bias = LlamaForCausalLM(bcfg).float()
    randomize(llama_bias, seed=3)
    save(llama_bias, "tiny-llama-bias")
    golden["models"]["tiny-llama-bias"] = golden_of(llama_bias, 64)

    # --- RoPE inverse frequencies from transformers' own functions ---
    golden["inv_freq"] = [
        inv_freq_case("default theta 1e6, head_dim 64", hidden_size=256, num_attention_heads=4,
                      rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
        inv_freq_case("linear factor 2", hidden_size=32, num_attention_heads=2,
                      rope_parameters={"rope_type": "linear", "rope_theta": 1000.0, "factor": 2.0}),
        inv_freq_case("llama3 as in Llama-3.1-8B", hidden_size=4096, num_attention_heads=32,
                      max_position_embeddings=131072,
                      rope_parameters={
                          "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                          "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 8192,
                      }),
        inv_freq_case("llama3 of tiny-llama", hidden_size=64, num_attention_heads=4, head_dim=32,
                      max_position_embeddings=128,
                      rope_parameters={
                          "rope_type": "llama3", "rope_theta": 10000.0, "factor": 4.0,
                          "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 64,
                      }),
    ]

    (OUT / "golden.json").write_text(json.dumps(golden, indent=2) + "\n")
    for p in sorted(OUT.iterdir()):
        size = sum(f.stat().st_size for f in p.rglob("*")) if p.is_dir() else p.stat().st_size
        print(f"{p.name}: {size} bytes")


if __name__ == "__main__":
    main()
