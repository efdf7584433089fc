"""Adaptive symmetric score normalisation (AS-norm, docs/math.md §3).

For a trial (e, t) with score s: the top-N cohort scores of e (e scored against every cohort vector)
give μ_e, σ_e, those of t give μ_t, σ_t, and the normalised score is
½[(s − μ_e)/σ_e + (s − μ_t)/σ_t]. σ is the population standard deviation (ddof 0) of the N scores.
The cohort scores come from a callback, so any scorer can be normalised.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sidkd.errors import DataError

__all__ = ["top_n_stats", "as_norm", "scorer_cohort_stats", "evenly_spaced"]

_BLOCK_ROWS = 2048


def top_n_stats(cohort_scores: Callable[[np.ndarray], np.ndarray], num_rows: int, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the ``top_n`` highest cohort scores of each row.

    ``cohort_scores(rows)`` returns the (len(rows), cohort size) score matrix of those rows; it is
    called in blocks of rows so the full matrix never needs to exist.
    """
    if top_n < 1:
        raise DataError(f"AS-norm top-N must be >= 1, got {top_n}")
    means, stds = np.empty(num_rows), np.empty(num_rows)
    for start in range(0, num_rows, _BLOCK_ROWS):
        rows = np.arange(start, min(num_rows, start + _BLOCK_ROWS))
        matrix = np.asarray(cohort_scores(rows), dtype=np.float64)
        n = min(top_n, matrix.shape[1])
        top = -np.partition(-matrix, n - 1, axis=1)[:, :n]
        means[rows], stds[rows] = top.mean(axis=1), top.std(axis=1)
    return means, stds


def evenly_spaced(num: int, size: int) -> np.ndarray:
    """``size`` of the indices 0..num-1, evenly spaced (floor(k num / size)); all when size >= num."""
    if size >= num:
        return np.arange(num)
    return (np.arange(size) * num) // size


def as_norm(scores, enrol_mean, enrol_std, test_mean, test_std) -> np.ndarray:
    def spread(std, mean):
        # a cohort whose top scores are all equal (tiny, separable sets) has std 0: a floor relative
        # to the scores' size keeps the normalised score finite (a floor at the float minimum gave
        # inf and, on both sides, inf - inf = NaN) and its order unchanged
        return np.maximum(std, 1e-9 * (1.0 + np.abs(mean)))

    return 0.5 * ((scores - enrol_mean) / spread(enrol_std, enrol_mean) + (scores - test_mean) / spread(test_std, test_mean))


def scorer_cohort_stats(scorer, enrolled, test_prepared: np.ndarray, cohort_prepared: np.ndarray, top_n: int):
    """Cohort statistics for each enrolment row and each test row with a scorer from
    sidkd.backend.scoring: enrolments against the cohort as tests, and each test utterance as a
    one-utterance enrolment against the same cohort."""
    from sidkd.backend.scoring import Enrolled

    cohort = scorer.test_side(cohort_prepared)
    as_enrol = scorer.enrol(test_prepared, [np.array([i]) for i in range(test_prepared.shape[0])])

    def rows_of(model):
        return lambda rows: scorer.score(Enrolled(model.vectors[rows], model.num_utts[rows]), cohort)

    enrol_stats = top_n_stats(rows_of(enrolled), enrolled.vectors.shape[0], top_n)
    test_stats = top_n_stats(rows_of(as_enrol), as_enrol.vectors.shape[0], top_n)
    return enrol_stats, test_stats
