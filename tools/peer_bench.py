"""Peer benchmark: Hugging Face transformers + TRL on the same model shapes as mgrpo's bench.

Measures, on CPU with 2 threads, (1) sampled generation with a KV cache and (2) one GRPO
training step as TRL computes it, for mgrpo's Qwen2-shaped model presets, so the README can
quote mgrpo's figures as a ratio against this peer on the same machine. Python is used only
here in tools/; the framework itself never runs it.

Usage:
    python3 -m venv /tmp/peer-venv
    /tmp/peer-venv/bin/pip install -r tools/requirements-peer.txt
    /tmp/peer-venv/bin/python tools/peer_bench.py --runs 3 --out docs/perf/peer.json
    # one preset only, or fewer timed repeats while trying things out:
    /tmp/peer-venv/bin/python tools/peer_bench.py --preset tiny --repeats 1

    Time on an idle machine: with one of the 2 cores busy elsewhere, torch at 2 threads is
    ~30x slower at batch 1. Repeats during which other processes used CPU are rerun, and
    `--runs N` keeps each figure's best median over N whole passes.

    (`pip install torch` from PyPI is the CUDA build and pulls ~4 GB of nvidia-* wheels. The
    benchmark runs on the CPU only, but `pip install --no-deps torch` does not work: `import
    torch` preloads libcudart/libcublas from those wheels and fails without them. Only PyPI
    is reachable from our machines, so the CPU-only wheel index is not an option.)

What is measured (each figure: 1 warm-up, then the median of --repeats timed repeats):

1. Generation: `model.generate(use_cache=True, do_sample=True, temperature=1.0, top_k=0,
   top_p=1.0, max_new_tokens=32, min_new_tokens=32)` from prompts of 60 random token ids
   (5..100) with no eos token, so every row makes exactly 32 tokens (checked).
   tokens/s = batch * 32 / seconds. Model in eval mode, float32, random init.

2. GRPO training step, loss_type "dapo", beta 0, epsilon 0.2: a batch of rows x 98 tokens
   (prompt 60 + completion 38, every completion token unmasked), timed from the forward pass
   to the end of the optimizer step: forward, per-token log-probs of the completion tokens,
   loss, backward, `clip_grad_norm_(1.0)`, AdamW step (fused=True: the optimizer
   `Trainer` picks by default for torch >= 2.8, `optim="adamw_torch_fused"`), zero_grad.

   The loss is TRL's own code, not a re-typing: `GRPOTrainer._compute_loss` is called on a
   trainer object made without `__init__` (which needs a dataset, a tokenizer and reward
   functions), given the attributes `__init__` would set from a real `GRPOConfig(loss_type=
   "dapo", beta=0.0)` and a single-process stand-in for the accelerate calls the loss makes
   (the same technique as tools/trl_grpo_golden.py). Two ways to get the log-probs are timed:

   - "trl" (the headline `train_step_s`): TRL's real path in this version. TRL >= 1.x no
     longer calls `selective_log_softmax` in GRPO; `GRPOTrainer.__init__` patches the model
     with `trl.trainer.utils.add_fused_lm_head(outputs=("log_probs", "entropy"))`, and
     `_get_per_token_logps_and_entropies` runs the model with `fused_lm_head=True`. The same
     patch and the same method are used here, unchanged.
   - "selective_log_softmax" (`train_step_s_selective_log_softmax`): the pre-1.x path, full
     logits for the completion positions, then `trl.trainer.utils.selective_log_softmax` and
     `entropy_from_logits`, as older GRPOTrainer versions did; the loss is still
     `_compute_loss`.

   `old_per_token_logps` come from one no-grad forward before timing (rather than the
   detached copy TRL uses when num_iterations == 1), so the ratio exp(logp - old_logp), the
   clamp and the min are all computed on real values; at TRL's default lr of 1e-6 the ratios
   stay inside the clip range. Advantages are drawn from N(0, 1) per row. The two variants
   give the same loss (checked by eye in the printed losses).

Output: a table on stdout, then one JSON line; `--out FILE` also writes that JSON to FILE.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time
import warnings
from collections import defaultdict
from contextlib import nullcontext
from types import MethodType, SimpleNamespace

import torch
import transformers
import trl
from transformers import Qwen2Config, Qwen2ForCausalLM
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import add_fused_lm_head, entropy_from_logits, selective_log_softmax

THREADS = 2
PROMPT_LEN = 60
GEN_TOKENS = 32
COMPLETION_LEN = 38
MIN_PROMPT_ID = 5
MAX_ATTEMPTS = 8

# mgrpo's model presets (model/model_config.ts TINY_MODEL_CONFIG, and the bench's large preset).
BASE_CONFIG = dict(
    vocab_size=101,
    max_position_embeddings=256,
    rope_theta=10000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    hidden_act="silu",
)
PRESETS = {
    "tiny": dict(
        model=dict(
            hidden_size=64,
            intermediate_size=192,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
        ),
        gen_batches=[1, 16, 64, 128],
        train_rows=64,
    ),
    "large": dict(
        model=dict(
            hidden_size=512,
            intermediate_size=1536,
            num_hidden_layers=8,
            num_attention_heads=8,
            num_key_value_heads=4,
        ),
        gen_batches=[1, 16],
        train_rows=8,
    ),
}


def build_model(preset: str, seed: int) -> Qwen2ForCausalLM:
    """A randomly initialised float32 Qwen2ForCausalLM of the preset's shape."""
    torch.manual_seed(seed)
    config = Qwen2Config(**BASE_CONFIG, **PRESETS[preset]["model"])
    model = Qwen2ForCausalLM(config).to(torch.float32)
    # Qwen2 always has q/k/v bias (attention_bias in mgrpo's config): check it is really there.
    attn = model.model.layers[0].self_attn
    assert attn.q_proj.bias is not None and attn.k_proj.bias is not None and attn.v_proj.bias is not None
    assert attn.o_proj.bias is None
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "tied embeddings"
    return model


def busy_seconds() -> float:
    """CPU seconds all processes on this machine have spent busy since boot (from /proc/stat)."""
    fields = [int(x) for x in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds this process has used."""
    t = os.times()
    return t.user + t.system


NOISE = {"discarded": 0, "kept_noisy": 0}


def median_of(label: str, fn, repeats: int) -> tuple[float, list[float]]:
    """Run fn once to warm up, then `repeats` timed times; print each; return (median, all).

    The machine is shared: a repeat during which other processes used more than a little CPU
    (busy time in /proc/stat minus this process's own) is discarded and run again, up to
    MAX_ATTEMPTS times; after that the quietest attempt is kept and counted as noisy.
    """
    fn()
    times = []
    for i in range(repeats):
        attempts = []
        for _ in range(MAX_ATTEMPTS):
            busy0, own0 = busy_seconds(), own_seconds()
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            foreign = (busy_seconds() - busy0) - (own_seconds() - own0)
            attempts.append((foreign, dt))
            if foreign <= 0.03 + 0.05 * dt:
                break
            NOISE["discarded"] += 1
            print(f"    {label} repeat {i + 1}: {dt:.4f} s discarded, other processes used {foreign:.2f} CPU s", flush=True)
            time.sleep(2.0)
        foreign, dt = min(attempts)
        if foreign > 0.03 + 0.05 * dt:
            NOISE["kept_noisy"] += 1
        times.append(dt)
        print(f"    {label} repeat {i + 1}: {dt:.4f} s (other processes {max(foreign, 0.0):.2f} CPU s)", flush=True)
    return statistics.median(times), times


def bench_generate(model: Qwen2ForCausalLM, batch: int, repeats: int, seed: int) -> tuple[float, list[float]]:
    """Median seconds for one `generate` call of `batch` rows x 32 sampled tokens."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    prompts = torch.randint(MIN_PROMPT_ID, model.config.vocab_size, (batch, PROMPT_LEN), generator=g)
    attention_mask = torch.ones_like(prompts)
    kwargs = dict(
        attention_mask=attention_mask,
        use_cache=True,
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        max_new_tokens=GEN_TOKENS,
        min_new_tokens=GEN_TOKENS,
        pad_token_id=0,
        eos_token_id=None,
    )

    def run() -> None:
        out = model.generate(prompts, **kwargs)
        if out.shape != (batch, PROMPT_LEN + GEN_TOKENS):
            raise RuntimeError(f"Cannot time generation: expected shape {(batch, PROMPT_LEN + GEN_TOKENS)}: got {tuple(out.shape)}")

    return median_of(f"generate batch={batch}", run, repeats)


class SingleProcessAccelerator:
    """The accelerate calls GRPOTrainer._compute_loss and its forward make, for one CPU process."""

    num_processes = 1
    sync_gradients = True
    is_main_process = True  # read by trl.extras.profiling.profiling_decorator (report_to is empty)

    def autocast(self):
        return nullcontext()

    def reduce(self, tensor, reduction="sum"):
        return tensor

    def gather(self, tensor):
        return tensor

    def gather_for_metrics(self, tensor):
        return tensor


def make_trainer(model: Qwen2ForCausalLM, args: GRPOConfig) -> GRPOTrainer:
    """A GRPOTrainer without __init__, holding what _compute_loss reads, set as __init__ sets it."""
    trainer = object.__new__(GRPOTrainer)
    trainer.args = args
    trainer.model = model
    trainer.accelerator = SingleProcessAccelerator()
    trainer.current_gradient_accumulation_steps = args.gradient_accumulation_steps
    trainer.max_completion_length = args.max_completion_length
    trainer.temperature = args.temperature
    trainer.use_vllm = args.use_vllm
    trainer.vllm_importance_sampling_correction = args.vllm_importance_sampling_correction
    trainer.loss_type = args.loss_type
    text_config = model.config.get_text_config()
    coef = args.router_aux_loss_coef
    trainer.router_aux_loss_coef = getattr(text_config, "router_aux_loss_coef", 0.0) if coef is None else coef
    trainer.aux_loss_enabled = hasattr(text_config, "output_router_logits") and trainer.router_aux_loss_coef != 0.0
    trainer.importance_sampling_level = args.importance_sampling_level
    trainer.off_policy_mask_threshold = args.off_policy_mask_threshold
    trainer.top_entropy_quantile = args.top_entropy_quantile
    trainer.entropy_coef = args.entropy_coef
    trainer.use_adaptive_entropy = args.use_adaptive_entropy
    trainer._entropy_bonus_enabled = trainer.entropy_coef != 0.0 or trainer.use_adaptive_entropy
    trainer.epsilon_low = args.epsilon
    trainer.epsilon_high = args.epsilon_high if args.epsilon_high is not None else args.epsilon
    trainer.beta = args.beta
    trainer._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    return trainer


def selective_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, compute_entropy=False, **_):
    """The pre-1.x GRPOTrainer forward: full logits, then selective_log_softmax and entropy_from_logits."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=logits_to_keep + 1).logits
    logits = logits[:, :-1, :]  # the last position predicts past the sequence
    logits = logits[:, -logits_to_keep:, :] / self.temperature
    logps = selective_log_softmax(logits, input_ids[:, -logits_to_keep:])
    entropies = entropy_from_logits(logits) if compute_entropy else None
    return logps, entropies, None


def bench_train(preset: str, rows: int, variant: str, repeats: int, seed: int) -> tuple[float, list[float], float]:
    """Median seconds for one GRPO step (forward, loss, backward, clip, AdamW) on rows x 98 tokens."""
    model = build_model(preset, seed)
    args = GRPOConfig(
        output_dir="/tmp/peer-bench-unused",
        loss_type="dapo",
        beta=0.0,
        epsilon=0.2,
        max_completion_length=COMPLETION_LEN,
        per_device_train_batch_size=rows,
        num_generations=rows,
        max_grad_norm=1.0,
        report_to=[],
        use_cpu=True,
    )
    assert args.temperature == 1.0 and args.epsilon_high is None and args.num_iterations == 1
    if variant == "trl":
        # Exactly what GRPOTrainer.__init__ does to the policy.
        add_fused_lm_head(
            model,
            temperature=args.temperature,
            cast_lm_head_to_fp32=args.cast_lm_head_to_fp32,
            outputs=("log_probs", "entropy"),
        )
    trainer = make_trainer(model, args)
    if variant == "selective_log_softmax":
        trainer._get_per_token_logps_and_entropies = MethodType(selective_logps_and_entropies, trainer)

    g = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    prompt_ids = torch.randint(MIN_PROMPT_ID, vocab, (rows, PROMPT_LEN), generator=g)
    completion_ids = torch.randint(MIN_PROMPT_ID, vocab, (rows, COMPLETION_LEN), generator=g)
    completion_mask = torch.ones_like(completion_ids)
    inputs = {
        "prompt_ids": prompt_ids,
        "prompt_mask": torch.ones_like(prompt_ids),
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "advantages": torch.randn(rows, generator=g),
        "num_items_in_batch": completion_mask.sum().float(),
    }
    model.train()
    with torch.no_grad():
        old_logps, _, _ = trainer._get_per_token_logps_and_entropies(
            model,
            torch.cat([prompt_ids, completion_ids], dim=1),
            torch.cat([inputs["prompt_mask"], completion_mask], dim=1),
            COMPLETION_LEN,
        )
    inputs["old_per_token_logps"] = old_logps.detach()

    # Trainer's defaults: optim="adamw_torch_fused" (torch >= 2.8), weight_decay 0, betas and eps.
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        weight_decay=args.weight_decay,
        fused=True,
    )
    losses = []

    def step() -> None:
        loss = trainer._compute_loss(model, inputs)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        model.zero_grad()
        losses.append(loss.item())

    med, times = median_of(f"train[{variant}] rows={rows}", step, repeats)
    if not all(torch.isfinite(torch.tensor(losses))):
        raise RuntimeError(f"Cannot time training: loss is not finite: current value is {losses}")
    clip_high = trainer._metrics["train"]["clip_ratio/region_mean"]
    print(f"    losses {[round(x, 5) for x in losses]}  clip_ratio/region_mean last {clip_high[-1]:.4f}", flush=True)
    return med, times, losses[-1]


def run_preset(preset: str, repeats: int, seed: int) -> dict:
    spec = PRESETS[preset]
    model = build_model(preset, seed)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"== preset {preset}: {n_params:,} parameters, attn_implementation={model.config._attn_implementation}", flush=True)
    result: dict = {
        "params": n_params,
        "model": {**BASE_CONFIG, **spec["model"]},
        "generate_tokens_per_s": {},
        "generate_s": {},
    }
    for batch in spec["gen_batches"]:
        med, times = bench_generate(model, batch, repeats, seed)
        tps = batch * GEN_TOKENS / med
        result["generate_tokens_per_s"][str(batch)] = round(tps, 1)
        result["generate_s"][str(batch)] = [round(t, 4) for t in times]
        print(f"  generate batch={batch:4d}: median {med:.4f} s  -> {tps:,.1f} tokens/s", flush=True)
    del model

    rows = spec["train_rows"]
    tokens = rows * (PROMPT_LEN + COMPLETION_LEN)
    result["train_rows"] = rows
    result["train_seq_len"] = PROMPT_LEN + COMPLETION_LEN
    for variant, key in [("trl", ""), ("selective_log_softmax", "_selective_log_softmax")]:
        med, times, _ = bench_train(preset, rows, variant, repeats, seed)
        result[f"train_step_s{key}"] = round(med, 4)
        result[f"train_tokens_per_s{key}"] = round(tokens / med, 1)
        result[f"train_step_all_s{key}"] = [round(t, 4) for t in times]
        print(f"  train[{variant}] {rows}x{PROMPT_LEN + COMPLETION_LEN}: median {med:.4f} s/step -> {tokens / med:,.1f} tokens/s", flush=True)
    return result


def merge_best(runs: list[dict]) -> dict:
    """Per figure, the best run's median (highest tokens/s, lowest s/step); all runs kept in `runs`."""
    best = json.loads(json.dumps(runs[0]))
    for r in runs[1:]:
        for batch, tps in r["generate_tokens_per_s"].items():
            if tps > best["generate_tokens_per_s"][batch]:
                best["generate_tokens_per_s"][batch] = tps
                best["generate_s"][batch] = r["generate_s"][batch]
        for key in ["", "_selective_log_softmax"]:
            if r[f"train_step_s{key}"] < best[f"train_step_s{key}"]:
                for k in ["train_step_s", "train_tokens_per_s", "train_step_all_s"]:
                    best[f"{k}{key}"] = r[f"{k}{key}"]
    return best


def cpu_name() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=["tiny", "large", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per figure (after 1 warm-up)")
    parser.add_argument("--runs", type=int, default=1, help="whole passes; each figure keeps its best run's median")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", default="", help="free text stored in the JSON's note field")
    parser.add_argument("--out", type=pathlib.Path, help="also write the JSON here")
    opts = parser.parse_args()

    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(THREADS)
    threads = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}, "
        f"python {platform.python_version()}, torch.get_num_threads()={threads}, cpu: {cpu_name()}, "
        f"os.cpu_count()={os.cpu_count()}",
        flush=True,
    )
    if threads != THREADS:
        sys.exit(f"Cannot benchmark: torch.get_num_threads() must be {THREADS}: current value is {threads}")

    presets = ["tiny", "large"] if opts.preset == "all" else [opts.preset]
    load_before = os.getloadavg()
    results: dict[str, dict] = {}
    for preset in presets:
        runs = []
        for run in range(opts.runs):
            if opts.runs > 1:
                print(f"-- run {run + 1}/{opts.runs}, loadavg {os.getloadavg()}", flush=True)
            runs.append(run_preset(preset, opts.repeats, opts.seed))
        results[preset] = merge_best(runs)
        if opts.runs > 1:
            keep = ("generate_tokens_per_s", "train_step_s", "train_step_s_selective_log_softmax")
            results[preset]["runs"] = [{k: r[k] for k in keep} for r in runs]
    load_after = os.getloadavg()

    print()
    print(f"{'preset':<7} {'figure':<44} {'value':>14}")
    for preset, r in results.items():
        for batch, tps in r["generate_tokens_per_s"].items():
            print(f"{preset:<7} {f'generate tokens/s, batch {batch}':<44} {tps:>14,.1f}")
        shape = f"{r['train_rows']}x{r['train_seq_len']}"
        print(f"{preset:<7} {f'GRPO step s ({shape}, TRL fused head)':<44} {r['train_step_s']:>14.4f}")
        print(f"{preset:<7} {f'GRPO train tokens/s ({shape}, TRL fused head)':<44} {r['train_tokens_per_s']:>14,.1f}")
        print(f"{preset:<7} {f'GRPO step s ({shape}, selective_log_softmax)':<44} {r['train_step_s_selective_log_softmax']:>14.4f}")

    out = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "python": platform.python_version(),
        "threads": threads,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "repeats": opts.repeats,
        "runs": opts.runs,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "method": (
            "median of repeats after 1 warm-up; generate: use_cache, do_sample, temperature 1, top_k 0, "
            "top_p 1, 32 new tokens from 60-token prompts, tokens/s = batch*32/s; train: TRL "
            "GRPOTrainer._compute_loss (loss_type dapo, beta 0, epsilon 0.2) + backward + clip_grad_norm 1.0 "
            "+ fused AdamW, train_step_s uses TRL's fused LM head (add_fused_lm_head), "
            "train_step_s_selective_log_softmax uses full logits + selective_log_softmax"
        ),
        "presets": results,
    }
    out["noise"] = {
        "discarded_repeats": NOISE["discarded"],
        "kept_noisy_repeats": NOISE["kept_noisy"],
        "rule": "a repeat during which other processes used > 0.03 s + 5% of its wall time in CPU is rerun",
    }
    if opts.note:
        out["note"] = opts.note
    line = json.dumps(out, separators=(",", ":"))
    print(line)
    if opts.out:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {opts.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
