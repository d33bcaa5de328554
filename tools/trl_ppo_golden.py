"""Golden values for mgrpo's PPO math (algorithms/ppo/) from TRL's own PPO code.

Writes tests/fixtures/trl_ppo_golden.json, read by tests/algorithms/ppo_trl_test.ts.

Where the numbers come from:

- masked_mean, masked_var, masked_whiten: imported from TRL 1.12.0,
  trl/experimental/ppo/ppo_trainer.py lines 237-269. TRL 1.12.0 is the last release with the
  experimental PPOTrainer (it is gone from 1.13.0 on), so this script needs trl==1.12.0.
- The per-token KL, the KL-penalised rewards, GAE, the advantage whitening, the clipped policy
  and value losses and their logged statistics live inside PPOTrainer.train and cannot be
  imported. Each block below is a string holding the exact lines of the installed
  trl/experimental/ppo/ppo_trainer.py (dedented, nothing else changed), cited by line numbers;
  verify_citations() checks every block against the installed file before anything runs, and
  the blocks are executed as they are with exec(), on the variables the training loop would
  have at that point. Only the model forward passes are replaced by fixed tensors.
- AdaptiveKLController: TRL 1.12.0 has no adaptive controller (its kl_coef is fixed), so the
  controller is imported from trl 0.11.4, the last release whose PPOTrainer used it
  (trl/trainer/utils.py lines 54-69, the Ziegler et al. 2019 controller; the class stayed there,
  unused, until 0.13.0). The old PPOTrainer
  calls update(stats["objective/kl"], batch_size) at trl/trainer/ppo_trainer.py lines
  880-884, objective/kl being the batch mean of the per-sequence summed KL, lines 1300-1302).
  trl 0.11.4 cannot share a virtual environment with trl 1.12.0, so the main run calls this
  same script with --kl-controller under a second interpreter ($TRL_KL_PYTHON).

What the fixture shows (tests/algorithms/ppo_trl_test.ts):

- TRL keeps the critic's value at the first pad position (padding_mask_p1, lines 767-769) and
  adds the score there (line 778) rather than at the last real token, so on a row shorter than
  T with gamma * lam < 1 its advantages differ from mgrpo's (score at the last token, V = 0
  after it). "score_at_last_token" records TRL's own GAE and whitening lines on mgrpo's
  convention, which mgrpo matches.
- policy/approxkl and val/ratio (lines 857 and 868) are plain means over all N x T entries,
  padding included; mgrpo's are masked means.
- masked_var's Bessel factor mask_sum / (mask_sum - 1) divides two int64 tensors, which torch
  does in float32 even for float64 values: whitened values carry up to ~3e-8 relative error.

Everything is computed in float64. The inputs of the loss cases are float32-representable, so
mgrpo's float32 tfjs losses see the same inputs.

Usage (CPU is enough; tested with trl 1.12.0 + torch 2.15.0 and trl 0.11.4 + torch 2.15.0 +
transformers 4.46.3):
    python -m venv /tmp/trlppo && /tmp/trlppo/bin/pip install trl==1.12.0 torch
    python -m venv /tmp/trlkl && /tmp/trlkl/bin/pip install trl==0.11.4 transformers==4.46.3 torch rich
    TRL_KL_PYTHON=/tmp/trlkl/bin/python /tmp/trlppo/bin/python tools/trl_ppo_golden.py
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap
from types import SimpleNamespace

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "trl_ppo_golden.json"
TRAINER = "trl/experimental/ppo/ppo_trainer.py"

# --- TRL 1.12.0 trl/experimental/ppo/ppo_trainer.py, verbatim (dedented) ---

# trl/experimental/ppo/ppo_trainer.py line 727, verbatim: the index of the last non-pad token.
SEQUENCE_LENGTH = (
    727,
    727,
    """\
sequence_length = first_true_indices(postprocessed_response == processing_class.pad_token_id) - 1
""",
)

# trl/experimental/ppo/ppo_trainer.py lines 763-779, verbatim: the padding masks, the per-token
# KL (k1 or k3), and the rewards: -kl_coef * kl per token plus the score at actual_end.
REWARDS = (
    763,
    779,
    """\
response_idxs = torch.arange(responses.shape[1], device=responses.device).repeat(responses.shape[0], 1)
padding_mask = response_idxs > sequence_lengths.unsqueeze(1)
logprobs = torch.masked_fill(logprobs, padding_mask, INVALID_LOGPROB)
ref_logprobs = torch.masked_fill(ref_logprobs, padding_mask, INVALID_LOGPROB)
sequence_lengths_p1 = sequence_lengths + 1
padding_mask_p1 = response_idxs > (sequence_lengths_p1.unsqueeze(1))
values = torch.masked_fill(values, padding_mask_p1, 0)

# 4. compute rewards
# Formula used by http://joschu.net/blog/kl-approx.html for the k1 and k3 estimators
logr = ref_logprobs - logprobs
kl = -logr if args.kl_estimator == "k1" else (logr.exp() - 1) - logr  # Else statement is k3
non_score_reward = -args.kl_coef * kl
rewards = non_score_reward.clone()
actual_start = torch.arange(rewards.size(0), device=rewards.device)
actual_end = torch.where(sequence_lengths_p1 < rewards.size(1), sequence_lengths_p1, sequence_lengths)
rewards[actual_start, actual_end] += scores
""",
)

# trl/experimental/ppo/ppo_trainer.py lines 781-784, verbatim (whiten_rewards is False here:
# mgrpo has no whiten_rewards option; the block runs for fidelity and does nothing).
WHITEN_REWARDS = (
    781,
    784,
    """\
# 5. whiten rewards
if args.whiten_rewards:
    rewards = masked_whiten(rewards, mask=~padding_mask_p1, shift_mean=False)
    rewards = torch.masked_fill(rewards, padding_mask_p1, 0)
""",
)

# trl/experimental/ppo/ppo_trainer.py lines 786-796, verbatim: GAE over the padded rows.
GAE = (
    786,
    796,
    """\
# 6. compute advantages and returns
lastgaelam = 0
advantages_reversed = []
gen_length = responses.shape[1]
for t in reversed(range(gen_length)):
    nextvalues = values[:, t + 1] if t < gen_length - 1 else 0.0
    delta = rewards[:, t] + args.gamma * nextvalues - values[:, t]
    lastgaelam = delta + args.gamma * args.lam * lastgaelam
    advantages_reversed.append(lastgaelam)
advantages = torch.stack(advantages_reversed[::-1], axis=1)
returns = advantages + values
""",
)

# trl/experimental/ppo/ppo_trainer.py lines 797-798, verbatim: advantage whitening.
WHITEN_ADVANTAGES = (
    797,
    798,
    """\
advantages = masked_whiten(advantages, ~padding_mask)
advantages = torch.masked_fill(advantages, padding_mask, 0)
""",
)

# trl/experimental/ppo/ppo_trainer.py lines 813-818, verbatim: the micro-batch (here: all rows).
MICRO_BATCH = (
    813,
    818,
    """\
mb_advantage = advantages[micro_batch_inds]
mb_responses = responses[micro_batch_inds]
mb_query_responses = query_responses[micro_batch_inds]
mb_logprobs = logprobs[micro_batch_inds]
mb_return = returns[micro_batch_inds]
mb_values = values[micro_batch_inds]
""",
)

# trl/experimental/ppo/ppo_trainer.py lines 824-847, verbatim: the clipped value loss
# (0.5 * masked_mean(max(...)) over ~padding_mask_p1), the clipped policy loss (masked_mean over
# ~padding_mask) and loss = pg_loss + vf_coef * vf_loss. new_logprobs and vpred_temp stand in for
# the forward pass of lines 820-823.
LOSS = (
    824,
    847,
    """\
new_logprobs = torch.masked_fill(
    new_logprobs, padding_mask[micro_batch_inds], INVALID_LOGPROB
)
vpred = vpred_temp[:, context_length - 1 : -1].squeeze(-1)
vpred = torch.masked_fill(vpred, padding_mask_p1[micro_batch_inds], 0)
vpredclipped = torch.clamp(
    vpred,
    mb_values - args.cliprange_value,
    mb_values + args.cliprange_value,
)
vf_losses1 = torch.square(vpred - mb_return)
vf_losses2 = torch.square(vpredclipped - mb_return)
vf_loss_max = torch.max(vf_losses1, vf_losses2)
vf_loss = 0.5 * masked_mean(vf_loss_max, ~padding_mask_p1[micro_batch_inds])
vf_clipfrac = masked_mean(
    (vf_losses2 > vf_losses1).float(), ~padding_mask_p1[micro_batch_inds]
)
logprobs_diff = new_logprobs - mb_logprobs
ratio = torch.exp(logprobs_diff)
pg_losses = -mb_advantage * ratio
pg_losses2 = -mb_advantage * torch.clamp(ratio, 1.0 - args.cliprange, 1.0 + args.cliprange)
pg_loss_max = torch.max(pg_losses, pg_losses2)
pg_loss = masked_mean(pg_loss_max, ~padding_mask[micro_batch_inds])
loss = pg_loss + args.vf_coef * vf_loss
""",
)

# trl/experimental/ppo/ppo_trainer.py lines 851-868, verbatim: the logged statistics
# (policy/clipfrac masked; policy/approxkl and val/ratio as plain means over ALL N x T entries).
LOSS_STATS = (
    851,
    868,
    """\
with torch.no_grad():
    pg_clipfrac = masked_mean(
        (pg_losses2 > pg_losses).float(), ~padding_mask[micro_batch_inds]
    )
    prob_dist = torch.nn.functional.softmax(logits, dim=-1)
    entropy = torch.logsumexp(logits, dim=-1) - torch.sum(prob_dist * logits, dim=-1)
    approxkl = 0.5 * (logprobs_diff**2).mean()
    approxkl_stats[ppo_epoch_idx, minibatch_idx, gradient_accumulation_idx] = approxkl
    pg_clipfrac_stats[ppo_epoch_idx, minibatch_idx, gradient_accumulation_idx] = (
        pg_clipfrac
    )
    pg_loss_stats[ppo_epoch_idx, minibatch_idx, gradient_accumulation_idx] = pg_loss
    vf_loss_stats[ppo_epoch_idx, minibatch_idx, gradient_accumulation_idx] = vf_loss
    vf_clipfrac_stats[ppo_epoch_idx, minibatch_idx, gradient_accumulation_idx] = (
        vf_clipfrac
    )
    entropy_stats[ppo_epoch_idx, minibatch_idx, gradient_accumulation_idx] = entropy.mean()
    ratio_stats[ppo_epoch_idx, minibatch_idx, gradient_accumulation_idx] = ratio.mean()
""",
)

# trl/experimental/ppo/ppo_trainer.py line 882, verbatim: objective/kl, the batch mean of the
# per-sequence summed KL (the quantity TRL 0.11's adaptive controller steered).
MEAN_KL = (
    882,
    882,
    """\
mean_kl = kl.sum(1).mean()
""",
)

BLOCKS = [SEQUENCE_LENGTH, REWARDS, WHITEN_REWARDS, GAE, WHITEN_ADVANTAGES, MICRO_BATCH, LOSS, LOSS_STATS, MEAN_KL]


def verify_citations(trainer_path):
    """Fails unless every block is, dedented, the cited lines of the installed trainer."""
    lines = pathlib.Path(trainer_path).read_text().splitlines(keepends=True)
    for start, end, code in BLOCKS:
        installed = textwrap.dedent("".join(lines[start - 1 : end]))
        if installed != code:
            raise SystemExit(f"{TRAINER} lines {start}-{end} differ from the block in this script:\n{installed}")


def run(block, namespace):
    exec(block[2], namespace)  # noqa: S102 -- TRL's own lines, checked by verify_citations()
    return namespace


# --- cases ---

PAD = 0
T = 6
# Per-position log-probs, reference log-probs and values for 4 rows of T tokens. The entries past
# a row's length play the padding a model still computes something for: TRL must mask them.
LOGPROBS = [
    [-0.5, -1.25, -0.1, -2.0, -0.75, -0.3],
    [-1.5, -0.2, -0.9, -0.05, -0.6, -1.1],
    [-0.35, -2.5, -0.4, -0.8, -1.7, -0.25],
    [-0.9, -0.45, -1.3, -0.15, -0.55, -2.2],
]
REF_LOGPROBS = [
    [-0.8, -1.0, -0.3, -1.4, -0.75, -0.9],
    [-1.1, -0.6, -0.5, -0.45, -1.3, -0.4],
    [-0.2, -1.9, -1.1, -0.3, -0.9, -0.6],
    [-1.6, -0.25, -1.0, -0.7, -0.35, -1.5],
]
VALUES = [
    [0.1, 0.3, -0.2, 0.5, 0.4, 0.7],
    [-0.3, 0.2, 0.6, -0.45, 0.9, 0.15],
    [0.8, -0.5, 0.35, 0.25, -0.6, 0.5],
    [0.05, 0.4, -0.1, 0.65, 0.2, -0.35],
]
SCORES = [1.0, -0.5, 2.0, 0.25]

# lengths: real tokens per row (all T = no padding). TRL agrees with mgrpo on padded rows only
# when gamma * lam == 1 (see the test's KNOWN DISAGREEMENT).
PIPELINE_CASES = [
    {
        "name": "full rows, k1, gamma 0.9, lam 0.8",
        "lengths": [6, 6, 6, 6],
        "kl_estimator": "k1",
        "kl_coef": 0.05,
        "gamma": 0.9,
        "lam": 0.8,
    },
    {
        "name": "full rows, k3, gamma 0.95, lam 0.9",
        "lengths": [6, 6, 6, 6],
        "kl_estimator": "k3",
        "kl_coef": 0.2,
        "gamma": 0.95,
        "lam": 0.9,
    },
    {
        "name": "padded rows, k3, gamma 1, lam 1",
        "lengths": [6, 4, 2, 5],
        "kl_estimator": "k3",
        "kl_coef": 0.1,
        "gamma": 1.0,
        "lam": 1.0,
    },
    {
        "name": "padded rows, k1, gamma 1, lam 0.95 (TRL defaults)",
        "lengths": [6, 4, 2, 5],
        "kl_estimator": "k1",
        "kl_coef": 0.05,
        "gamma": 1.0,
        "lam": 0.95,
    },
    {
        "name": "padded rows, k3, gamma 0.95, lam 0.9",
        "lengths": [6, 4, 1, 5],
        "kl_estimator": "k3",
        "kl_coef": 0.2,
        "gamma": 0.95,
        "lam": 0.9,
    },
]

# GAE alone (lines 786-796) on rewards and values that are 0 past each row's last token.
GAE_REWARDS = [
    [0.1, -0.2, 0.05, 0.0, 0.3, 1.0],
    [-0.05, 0.15, 0.2, -0.4, 0.0, 0.0],
    [0.7, 0.0, 0.0, 0.0, 0.0, 0.0],
]
GAE_VALUES = [
    [0.2, 0.4, -0.1, 0.6, 0.5, 0.3],
    [0.3, -0.25, 0.1, 0.45, 0.0, 0.0],
    [-0.15, 0.0, 0.0, 0.0, 0.0, 0.0],
]
GAE_LENGTHS = [6, 4, 1]
GAE_PARAMS = [(1.0, 1.0), (1.0, 0.95), (0.9, 0.8), (0.99, 1.0), (0.5, 0.0)]

# masked_mean / masked_whiten on uneven masks, one with holes in the middle of rows.
MASKED_VALUES = [
    [1.5, -0.25, 3.0, 0.75, -2.0],
    [0.5, 2.25, -1.0, 9.0, -7.0],
    [-0.5, 4.0, 100.0, -100.0, 0.125],
]
# Note: masked_var computes its Bessel factor mask_sum / (mask_sum - 1) from two int64 tensors,
# which torch divides in float32 (its default dtype) even when the values are float64: exact for
# 9 / 8 (the first two masks), rounded to float32 for 12 / 11 (the third).
MASKS = [
    [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]],
    [[1, 0, 1, 1, 0], [0, 1, 1, 0, 1], [1, 1, 0, 0, 1]],
    [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0], [0, 1, 1, 1, 0]],
]

# Loss cases: N = 3 rows of T = 5 tokens with 5, 3 and 2 real tokens. Ratios exp(new - old) below,
# inside and above both clip ranges with both signs of advantage; new values below and above
# old +- cliprange_value with returns on either side.
LOSS_LENGTHS = [5, 3, 2]
RATIOS = [
    [0.5, 0.85, 1.0, 1.15, 3.0],
    [0.75, 1.05, 1.6, 1.0, 1.0],
    [1.25, 0.95, 1.0, 1.0, 1.0],
]
OLD_LOGPROBS = [
    [-1.0, -0.5, -2.0, -0.25, -1.5],
    [-0.75, -1.5, -0.1, -3.0, -0.6],
    [-2.5, -0.3, -1.2, -0.8, -0.4],
]
ADVANTAGES = [
    [-0.8, -0.5, 0.3, 0.8, 1.2],
    [0.7, -0.4, -1.5, 0.0, 0.0],
    [0.9, 0.6, 0.0, 0.0, 0.0],
]
OLD_VALUES = [
    [0.5, 0.1, -0.3, 0.2, 0.0],
    [0.4, -0.2, 0.6, 0.3, 0.0],
    [-0.1, 0.25, 0.45, 0.0, 0.0],
]
VALUE_DELTAS = [
    [-0.7, 0.8, 0.05, -0.35, 0.15],
    [0.6, -0.1, -0.9, 0.25, 0.0],
    [0.35, -0.55, 0.1, 0.0, 0.0],
]
RETURNS = [
    [-0.5, 1.5, 0.0, 0.4, -0.3],
    [0.5, -0.9, -0.15, 1.1, 0.0],
    [0.05, 0.3, 0.9, 0.0, 0.0],
]
LOSS_CASES = [
    {"cliprange": 0.2, "cliprange_value": 0.2, "vf_coef": 0.1},
    {"cliprange": 0.1, "cliprange_value": 0.5, "vf_coef": 0.5},
    {"cliprange": 0.3, "cliprange_value": 0.3, "vf_coef": 0.1},
]

# AdaptiveKLController(init_kl_coef, target, horizon) and the updates (current KL, n_steps):
# error clipped above, below, inside both ways, zero, and a negative KL (k1 can go negative).
KL_CONTROLLER_CASES = [
    {
        "init_kl_coef": 0.2,
        "target": 6.0,
        "horizon": 10000.0,
        "updates": [[12.0, 256], [1.5, 256], [6.6, 64], [5.4, 512], [6.0, 100], [0.0, 32], [-3.0, 16]],
    },
    {
        "init_kl_coef": 0.05,
        "target": 0.5,
        "horizon": 2000.0,
        "updates": [[0.55, 1000], [0.45, 1000], [2.0, 1500], [0.1, 500], [0.5, 2000]],
    },
]


def f32(rows):
    """Rounds to float32 and back, so float32 readers see exactly these values."""
    import torch

    return torch.tensor(rows, dtype=torch.float32).double().tolist()


def responses_for(lengths, t):
    import torch

    return torch.tensor([[7 + j if j < n else PAD for j in range(t)] for n in lengths])


def trl_namespace(torch, trainer, args):
    return {
        "torch": torch,
        "args": args,
        "INVALID_LOGPROB": trainer.INVALID_LOGPROB,
        "masked_mean": trainer.masked_mean,
        "masked_whiten": trainer.masked_whiten,
        "first_true_indices": trainer.first_true_indices,
        "processing_class": SimpleNamespace(pad_token_id=PAD),
    }


def pipeline_case(torch, trainer, case):
    """Lines 727 and 763-798 on fixed log-probs, values and scores, plus the variant with the
    score at the last real token and V = 0 past it (mgrpo's convention) through lines 786-798."""
    args = SimpleNamespace(
        kl_estimator=case["kl_estimator"],
        kl_coef=case["kl_coef"],
        gamma=case["gamma"],
        lam=case["lam"],
        whiten_rewards=False,
    )
    dt = torch.float64
    ns = trl_namespace(torch, trainer, args)
    ns["postprocessed_response"] = responses_for(case["lengths"], T)
    run(SEQUENCE_LENGTH, ns)
    ns.update(
        responses=ns["postprocessed_response"],
        sequence_lengths=ns["sequence_length"],
        logprobs=torch.tensor(LOGPROBS, dtype=dt),
        ref_logprobs=torch.tensor(REF_LOGPROBS, dtype=dt),
        values=torch.tensor(VALUES, dtype=dt),
        scores=torch.tensor(SCORES, dtype=dt),
    )
    run(REWARDS, ns)
    run(WHITEN_REWARDS, ns)
    run(GAE, ns)
    raw_advantages = ns["advantages"]
    run(WHITEN_ADVANTAGES, ns)
    run(MEAN_KL, ns)
    out = {
        **case,
        "sequence_lengths": ns["sequence_lengths"].tolist(),
        "padding_mask": ns["padding_mask"].int().tolist(),
        "padding_mask_p1": ns["padding_mask_p1"].int().tolist(),
        "kl": ns["kl"].tolist(),
        "rewards": ns["rewards"].tolist(),
        "raw_advantages": raw_advantages.tolist(),
        "returns": ns["returns"].tolist(),
        "advantages": ns["advantages"].tolist(),
        "mean_kl": ns["mean_kl"].item(),
    }

    # The variant: TRL's GAE and whitening lines on rewards with the score at the last real
    # token (sequence_lengths, not sequence_lengths_p1) and values zeroed past the last token.
    rewards = ns["non_score_reward"].clone()
    rewards[torch.arange(rewards.size(0)), ns["sequence_lengths"]] += ns["scores"]
    variant = trl_namespace(torch, trainer, args)
    variant.update(
        responses=ns["responses"],
        rewards=rewards,
        values=torch.masked_fill(torch.tensor(VALUES, dtype=dt), ns["padding_mask"], 0),
        padding_mask=ns["padding_mask"],
    )
    run(GAE, variant)
    variant_raw = variant["advantages"]
    run(WHITEN_ADVANTAGES, variant)
    out["score_at_last_token"] = {
        "rewards": rewards.tolist(),
        "raw_advantages": variant_raw.tolist(),
        "returns": variant["returns"].tolist(),
        "advantages": variant["advantages"].tolist(),
    }
    return out


def gae_cases(torch, trainer):
    out = []
    for gamma, lam in GAE_PARAMS:
        ns = trl_namespace(torch, trainer, SimpleNamespace(gamma=gamma, lam=lam))
        ns.update(
            responses=responses_for(GAE_LENGTHS, T),
            rewards=torch.tensor(GAE_REWARDS, dtype=torch.float64),
            values=torch.tensor(GAE_VALUES, dtype=torch.float64),
        )
        run(GAE, ns)
        out.append(
            {"gamma": gamma, "lam": lam, "advantages": ns["advantages"].tolist(), "returns": ns["returns"].tolist()}
        )
    return out


def masked_cases(torch, trainer):
    x = torch.tensor(MASKED_VALUES, dtype=torch.float64)
    out = []
    for mask_rows in MASKS:
        mask = torch.tensor(mask_rows, dtype=torch.bool)
        for shift_mean in [True, False]:
            out.append(
                {
                    "mask": mask_rows,
                    "shift_mean": shift_mean,
                    "masked_mean": trainer.masked_mean(x, mask).item(),
                    "masked_var": trainer.masked_var(x, mask).item(),
                    "masked_whiten": trainer.masked_whiten(x, mask, shift_mean=shift_mean).tolist(),
                }
            )
    return out


def loss_case(torch, trainer, case, inputs):
    """Lines 813-818, 824-847 and 851-868 on one micro-batch holding every row."""
    import numpy as np

    n, t = len(RATIOS), len(RATIOS[0])
    args = SimpleNamespace(kl_estimator="k1", kl_coef=0.0, **case)
    ns = trl_namespace(torch, trainer, args)
    ns["responses"] = responses_for(LOSS_LENGTHS, t)
    ns["sequence_lengths"] = torch.tensor([k - 1 for k in LOSS_LENGTHS])
    # padding_mask and padding_mask_p1 as lines 763-764 and 767-768 make them: the REWARDS block
    # run on zero inputs (its rewards are not used).
    zeros = torch.zeros(n, t, dtype=torch.float64)
    ns.update(logprobs=zeros, ref_logprobs=zeros, values=zeros, scores=torch.zeros(n, dtype=torch.float64))
    run(REWARDS, ns)
    padding_mask, padding_mask_p1 = ns["padding_mask"], ns["padding_mask_p1"]
    old = torch.masked_fill(
        torch.tensor(inputs["old_logprobs"], dtype=torch.float64), padding_mask, trainer.INVALID_LOGPROB
    )  # line 765
    new_leaf = torch.tensor(inputs["new_logprobs"], dtype=torch.float64, requires_grad=True)
    vpred_leaf = torch.tensor(inputs["vpred"], dtype=torch.float64, requires_grad=True)
    context_length = 1
    ns.update(
        micro_batch_inds=np.arange(n),
        advantages=torch.tensor(inputs["advantages"], dtype=torch.float64),
        query_responses=torch.zeros(n, context_length + t, dtype=torch.long),
        logprobs=old,
        returns=torch.tensor(inputs["returns"], dtype=torch.float64),
        values=torch.tensor(inputs["old_values"], dtype=torch.float64),
        new_logprobs=new_leaf,
        # forward()'s value output [N, context_length + T, 1]: line 827 keeps positions
        # context_length - 1 .. -1, i.e. the T values of the response.
        vpred_temp=torch.cat([vpred_leaf, torch.zeros(n, 1, dtype=torch.float64)], 1).unsqueeze(-1),
        context_length=context_length,
        logits=torch.zeros(n, t, 3, dtype=torch.float64),
        ppo_epoch_idx=0,
        minibatch_idx=0,
        gradient_accumulation_idx=0,
        **{
            k: torch.zeros(1, 1, 1, dtype=torch.float64)
            for k in [
                "approxkl_stats",
                "pg_clipfrac_stats",
                "pg_loss_stats",
                "vf_loss_stats",
                "vf_clipfrac_stats",
                "entropy_stats",
                "ratio_stats",
            ]
        },
    )
    run(MICRO_BATCH, ns)
    run(LOSS, ns)
    grad_logprobs, grad_values = torch.autograd.grad(ns["loss"], [new_leaf, vpred_leaf])
    run(LOSS_STATS, ns)
    # Guard against ties that float32 could break the other way.
    mask = ~padding_mask
    ratio = ns["ratio"][mask]
    for bound in [1 - case["cliprange"], 1 + case["cliprange"]]:
        assert (ratio - bound).abs().min() > 1e-3, "ratio too close to a clip bound"
    mask_p1 = ~padding_mask_p1
    deltas = (ns["vpred"] - ns["mb_values"])[mask_p1].abs()
    assert (deltas - case["cliprange_value"]).abs().min() > 1e-3, "value too close to a clip bound"
    gap = (ns["vf_losses1"] - ns["vf_losses2"])[mask_p1].abs()
    assert ((gap == 0) | (gap > 1e-4)).all(), "value losses too close"
    return {
        **case,
        "pg_loss": ns["pg_loss"].item(),
        "vf_loss": ns["vf_loss"].item(),
        "loss": ns["loss"].item(),
        "grad_logprobs": grad_logprobs.tolist(),
        "grad_values": grad_values.tolist(),
        "pg_clipfrac": ns["pg_clipfrac_stats"].item(),
        "vf_clipfrac": ns["vf_clipfrac_stats"].item(),
        "approxkl": ns["approxkl_stats"].item(),
        "ratio_mean": ns["ratio_stats"].item(),
        "padding_mask": padding_mask.int().tolist(),
        "padding_mask_p1": padding_mask_p1.int().tolist(),
    }


def kl_controller_main():
    """Runs under trl 0.11.4: prints the controller's value after each update, as JSON."""
    import torch
    import trl
    from trl.trainer.utils import AdaptiveKLController

    results = []
    for case in KL_CONTROLLER_CASES:
        ctl = AdaptiveKLController(case["init_kl_coef"], case["target"], case["horizon"])
        values = []
        for current, n_steps in case["updates"]:
            ctl.update(current, n_steps)
            values.append(float(ctl.value))
        results.append({**case, "values": values})
    print(
        json.dumps(
            {
                "source": f"trl {trl.__version__} trl/trainer/utils.py AdaptiveKLController lines 54-69, "
                f"torch {torch.__version__}",
                "cases": results,
            }
        )
    )


def main():
    import torch
    import trl
    import trl.experimental.ppo.ppo_trainer as trainer

    if trl.__version__ != "1.12.0":
        print(f"warning: written for trl 1.12.0, found {trl.__version__}", file=sys.stderr)
    verify_citations(trainer.__file__)

    kl_python = os.environ.get("TRL_KL_PYTHON", "/tmp/trlkl/bin/python")
    kl = json.loads(
        subprocess.run([kl_python, __file__, "--kl-controller"], check=True, capture_output=True, text=True).stdout
    )

    old = f32(OLD_LOGPROBS)
    new = f32((torch.tensor(old, dtype=torch.float64) + torch.log(torch.tensor(RATIOS, dtype=torch.float64))).tolist())
    old_values = f32(OLD_VALUES)
    loss_inputs = {
        "lengths": LOSS_LENGTHS,
        "old_logprobs": old,
        "new_logprobs": new,
        "advantages": f32(ADVANTAGES),
        "old_values": old_values,
        "vpred": f32(
            (torch.tensor(old_values, dtype=torch.float64) + torch.tensor(VALUE_DELTAS, dtype=torch.float64)).tolist()
        ),
        "returns": f32(RETURNS),
    }
    golden = {
        "source": f"trl {trl.__version__} {TRAINER} (masked_* imported; PPOTrainer.train lines 727, 763-798, "
        f"813-818, 824-847, 851-868, 882 run verbatim), torch {torch.__version__}",
        "kl_controller_source": kl["source"],
        "invalid_logprob": trainer.INVALID_LOGPROB,
        "masked": {"values": MASKED_VALUES, "cases": masked_cases(torch, trainer)},
        "gae": {
            "rewards": GAE_REWARDS,
            "values": GAE_VALUES,
            "lengths": GAE_LENGTHS,
            "cases": gae_cases(torch, trainer),
        },
        "pipeline": {
            "logprobs": LOGPROBS,
            "ref_logprobs": REF_LOGPROBS,
            "values": VALUES,
            "scores": SCORES,
            "cases": [pipeline_case(torch, trainer, c) for c in PIPELINE_CASES],
        },
        "loss": {**loss_inputs, "cases": [loss_case(torch, trainer, c, loss_inputs) for c in LOSS_CASES]},
        "kl_controller": kl["cases"],
    }
    OUT.write_text(json.dumps(golden, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--kl-controller"]:
        kl_controller_main()
    else:
        main()
