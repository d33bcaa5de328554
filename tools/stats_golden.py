"""Golden values for algorithms/mgrpo/self_correction.ts from the reference implementations.

McNemar's exact test: statsmodels.stats.contingency_tables.mcnemar(table, exact=True), the
two-sided binomial test on the discordant pairs (b right→wrong, c wrong→right).
Permutation test: scipy.stats.permutation_test with permutation_type="independent",
alternative="two-sided", n_resamples=inf (exact enumeration), statistic = mean(a) - mean(b).

Usage: python tools/stats_golden.py > tests/fixtures/stats_golden.json
(pip install scipy statsmodels numpy)
"""
import json
import math

import numpy as np
import scipy
import statsmodels
from scipy.stats import permutation_test
from statsmodels.stats.contingency_tables import mcnemar

MCNEMAR_CASES = [(0, 0), (0, 5), (1, 3), (5, 30), (12, 14), (30, 5), (0, 1), (100, 140), (3, 0),
                 (250, 310), (7, 48)]
PERMUTATION_CASES = [
    ([5, 6, 7], [1, 2, 3]),
    ([0.62, 0.58, 0.71, 0.66, 0.60], [0.55, 0.61, 0.52, 0.57, 0.50]),
    ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
    ([0.7, 0.2, 0.9, 0.4], [0.3, 0.8, 0.1]),
]


def mean_diff(a, b, axis):
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def main():
    mc = []
    for b, c in MCNEMAR_CASES:
        # [[both right, right->wrong], [wrong->right, both wrong]]
        p = float(mcnemar([[10, b], [c, 10]], exact=True).pvalue)
        mc.append({"b": b, "c": c, "p": min(1.0, p)})
    perm = []
    for a, b in PERMUTATION_CASES:
        res = permutation_test((np.array(a), np.array(b)), mean_diff, permutation_type="independent",
                               alternative="two-sided", n_resamples=math.inf, vectorized=True)
        perm.append({"a": a, "b": b, "p": float(res.pvalue)})
    print(json.dumps({
        "generator": f"tools/stats_golden.py (scipy {scipy.__version__}, statsmodels {statsmodels.__version__})",
        "mcnemar": mc,
        "permutation": perm,
    }, indent=1))


if __name__ == "__main__":
    main()
