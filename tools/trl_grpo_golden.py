"""Golden values for mgrpo's grpoLoss() from the real TRL GRPOTrainer._compute_loss.

Writes tests/fixtures/trl_grpo_golden.json: fixed per-token log-probs, advantages and mask,
and for each case (loss_type, epsilon_high, beta, num_items_in_batch) the loss, its gradient
with respect to the policy log-probs, and the metrics TRL logs (kl, clip_ratio/*).

Nothing of the loss is reimplemented here: the trainer object is created without its
__init__ (no model, no dataset), given the handful of attributes _compute_loss reads, and its
model forward (_get_per_token_logps_and_entropies) returns the fixed log-probs. Everything
from the importance ratio to the reduction and the metrics is TRL's own code.

Usage (needs torch and trl from PyPI; tested with trl 1.16.0, torch 2.15.0):
    python -m venv /tmp/trlvenv && /tmp/trlvenv/bin/pip install trl==1.16.0 torch
    /tmp/trlvenv/bin/python tools/trl_grpo_golden.py
"""

import json
import math
import pathlib
from collections import defaultdict
from types import SimpleNamespace

import torch
import trl
from trl import GRPOTrainer

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "trl_grpo_golden.json"

# N = 3 completions, T = 4 tokens; ratios exp(logp - old) cover below, inside and above
# [1 - 0.2, 1 + 0.28], with positive, negative and zero advantages and an uneven mask.
RATIOS = [
    [0.5, 1.1, 1.25, 1.4],
    [0.7, 0.95, 1.25, 3.0],
    [1.3, 0.6, 1.0, 1.05],
]
OLD_LOGP = [
    [-1.0, -0.5, -2.0, -0.25],
    [-0.75, -1.5, -0.1, -3.0],
    [-2.5, -0.3, -1.2, -0.8],
]
REF_MINUS_LOGP = [
    [0.5, -0.5, 0.0, 0.2],
    [-0.3, 0.1, 0.4, -1.0],
    [0.25, -0.25, 0.6, 0.05],
]
ADVANTAGES = [1.0, -0.8, 0.0]
MASK = [
    [1, 1, 1, 1],
    [1, 1, 1, 0],
    [1, 1, 0, 0],
]
MAX_COMPLETION_LENGTH = 6

CASES = [
    {"loss_type": lt, "epsilon_high": eh, "beta": beta, "num_items_in_batch": None}
    for lt in ["grpo", "bnpo", "dr_grpo", "dapo"]
    for eh in [0.2, 0.28]
    for beta in [0.0, 0.04]
] + [{"loss_type": "dapo", "epsilon_high": 0.28, "beta": 0.04, "num_items_in_batch": 20}]


class SingleProcessAccelerator:
    """The accelerate calls _compute_loss makes, for one process."""

    num_processes = 1
    sync_gradients = True

    def reduce(self, tensor, reduction="sum"):
        return tensor

    def gather(self, tensor):
        return tensor

    def gather_for_metrics(self, tensor):
        return tensor


def make_trainer(case, logp):
    trainer = object.__new__(GRPOTrainer)
    trainer.args = SimpleNamespace(
        use_bias_correction_kl=False,
        delta=None,
        steps_per_generation=1,
    )
    trainer.model = SimpleNamespace(training=True)
    trainer.accelerator = SingleProcessAccelerator()
    trainer.current_gradient_accumulation_steps = 1
    trainer.loss_type = case["loss_type"]
    trainer.beta = case["beta"]
    trainer.epsilon_low = 0.2
    trainer.epsilon_high = case["epsilon_high"]
    trainer.importance_sampling_level = "token"
    trainer.top_entropy_quantile = 1.0
    trainer.off_policy_mask_threshold = None
    trainer.use_vllm = False
    trainer.vllm_importance_sampling_correction = False
    trainer.max_completion_length = MAX_COMPLETION_LENGTH
    trainer._entropy_bonus_enabled = False
    trainer.aux_loss_enabled = False
    trainer._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    # The model forward: fixed per-token log-probs, zero entropies, no aux loss.
    trainer._get_per_token_logps_and_entropies = lambda *args, **kwargs: (
        logp,
        torch.zeros_like(logp),
        None,
    )
    return trainer


def main():
    old = torch.tensor(OLD_LOGP, dtype=torch.float32)
    logp_values = old + torch.log(torch.tensor(RATIOS, dtype=torch.float32))
    ref = logp_values + torch.tensor(REF_MINUS_LOGP, dtype=torch.float32)
    mask = torch.tensor(MASK, dtype=torch.float32)
    n, t = mask.shape
    results = []
    for case in CASES:
        logp = logp_values.clone().requires_grad_(True)
        trainer = make_trainer(case, logp)
        inputs = {
            "prompt_ids": torch.zeros((n, 1), dtype=torch.long),
            "prompt_mask": torch.ones((n, 1), dtype=torch.long),
            "completion_ids": torch.zeros((n, t), dtype=torch.long),
            "completion_mask": mask.long(),
            "advantages": torch.tensor(ADVANTAGES, dtype=torch.float32),
            "old_per_token_logps": old,
            "ref_per_token_logps": ref,
            "num_items_in_batch": torch.tensor(
                float(mask.sum()) if case["num_items_in_batch"] is None else float(case["num_items_in_batch"])
            ),
        }
        loss = trainer._compute_loss(None, inputs)
        (grad,) = torch.autograd.grad(loss, logp)
        metrics = trainer._metrics["train"]
        results.append(
            {
                **case,
                "loss": loss.item(),
                "grad": grad.tolist(),
                "kl": metrics["kl"][0] if case["beta"] != 0.0 else 0.0,
                "clip_low_mean": metrics["clip_ratio/low_mean"][0],
                "clip_high_mean": metrics["clip_ratio/high_mean"][0],
                "clip_region_mean": metrics["clip_ratio/region_mean"][0],
            }
        )
    assert all(math.isfinite(r["loss"]) for r in results)
    golden = {
        "source": f"trl {trl.__version__} GRPOTrainer._compute_loss, torch {torch.__version__}",
        "epsilon": 0.2,
        "max_completion_length": MAX_COMPLETION_LENGTH,
        "logp": logp_values.tolist(),
        "old_logp": OLD_LOGP,
        "ref_logp": ref.tolist(),
        "advantages": ADVANTAGES,
        "mask": MASK,
        "cases": results,
    }
    OUT.write_text(json.dumps(golden, indent=2) + "\n")
    print(f"wrote {len(results)} cases to {OUT}")


if __name__ == "__main__":
    main()
