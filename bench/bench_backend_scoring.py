"""Speed of vectorised PLDA trial scoring against a per-trial loop (same numbers, ratio reported).

Usage: PYTHONPATH=. OMP_NUM_THREADS=1 python bench/bench_backend_scoring.py [num_utts]
Scores all pairs of num_utts (default 800, as data/test: 319,600 trials) with a random 150-dim PLDA;
the loop is timed on a 5,000-trial sample and extrapolated.
"""

import sys
import time

import numpy as np

from sidkd.backend.plda import Plda
from sidkd.backend.scoring import PldaScorer, score_pairs
from sidkd.backend.vectors import VectorTable
from sidkd.metrics import equal_error_rate, min_dcf


def main():
    num = int(sys.argv[1]) if len(sys.argv) > 1 else 800
    rng = np.random.default_rng(0)
    dim = 150
    a = rng.normal(size=(dim, dim))
    plda = Plda.from_covariances(np.zeros(dim), a @ a.T / dim, np.eye(dim))
    table = VectorTable([f"u{i:04d}" for i in range(num)], rng.normal(size=(num, dim)), "random")
    pairs = [(i, j) for i in range(num) for j in range(i + 1, num)]
    enroll = [table.keys[i] for i, _ in pairs]
    test = [table.keys[j] for _, j in pairs]
    scorer = PldaScorer(plda, length_norm=True)
    start = time.perf_counter()
    scores = score_pairs(scorer, enroll, test, table, table)
    vectorised = time.perf_counter() - start
    sample = rng.choice(len(pairs), 5000, replace=False)
    start = time.perf_counter()
    for k in sample:
        e = scorer.test_side(scorer.prepare(table.matrix[[pairs[k][0]]]))
        t = scorer.test_side(scorer.prepare(table.matrix[[pairs[k][1]]]))
        loop_score = plda.llr_matrix(e, 1, t)[0, 0]
        assert abs(loop_score - scores[k]) < 1e-8
    loop = (time.perf_counter() - start) / sample.size * len(pairs)
    labels = rng.random(len(pairs)) < 0.03
    start = time.perf_counter()
    equal_error_rate(scores[labels], scores[~labels])
    min_dcf(scores[labels], scores[~labels], 0.01)
    metrics = time.perf_counter() - start
    print(f"{len(pairs)} trials: vectorised scoring {vectorised:.2f} s, per-trial loop (extrapolated) {loop:.1f} s, "
          f"ratio {loop / vectorised:.0f}x; EER + minDCF {metrics:.2f} s")


if __name__ == "__main__":
    main()
