"""Miss and false-alarm rates over all thresholds, and the numbers derived from them.

Conventions (docs/math.md §5): a trial is accepted when its score is >= the threshold, so
P_miss(θ) = #(target < θ) / N_target and P_fa(θ) = #(nontarget >= θ) / N_nontarget. The candidate
thresholds are the distinct scores plus +inf; trials with equal scores therefore move together
(one step of the curve), never one by one in some arbitrary sort order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sidkd.errors import DataError

__all__ = ["DetPoints", "det_points", "equal_error_rate", "min_dcf", "actual_dcf", "split_scores"]


@dataclass(frozen=True)
class DetPoints:
    """Operating points, threshold ascending: ``p_miss`` rises from 0 to 1, ``p_fa`` falls 1 to 0.

    ``thresholds[k]`` is the k-th distinct score; the last point (threshold +inf) rejects all.
    """

    thresholds: np.ndarray
    p_miss: np.ndarray
    p_fa: np.ndarray


def _check(target: np.ndarray, nontarget: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    target = np.asarray(target, dtype=np.float64).ravel()
    nontarget = np.asarray(nontarget, dtype=np.float64).ravel()
    if target.size == 0:
        raise DataError("no target trials: EER and DCF are undefined")
    if nontarget.size == 0:
        raise DataError("no nontarget trials: EER and DCF are undefined")
    if not (np.all(np.isfinite(target)) and np.all(np.isfinite(nontarget))):
        raise DataError("scores contain NaN or inf")
    return target, nontarget


def det_points(target, nontarget) -> DetPoints:
    """All operating points of a system, O(N log N) with one sort."""
    target, nontarget = _check(target, nontarget)
    scores = np.concatenate([target, nontarget])
    is_target = np.concatenate([np.ones(target.size, bool), np.zeros(nontarget.size, bool)])
    thresholds, inverse = np.unique(scores, return_inverse=True)
    n_levels = thresholds.size
    target_count = np.bincount(inverse[is_target], minlength=n_levels)
    nontarget_count = np.bincount(inverse[~is_target], minlength=n_levels)
    # Integer counts below each threshold (exclusive), then one extra point for θ = +inf.
    target_below = np.concatenate([[0], np.cumsum(target_count)])
    nontarget_below = np.concatenate([[0], np.cumsum(nontarget_count)])
    p_miss = target_below / target.size
    p_fa = (nontarget.size - nontarget_below) / nontarget.size
    return DetPoints(np.concatenate([thresholds, [np.inf]]), p_miss, p_fa)


def equal_error_rate(target, nontarget) -> tuple[float, float]:
    """(EER as a fraction, threshold): where P_miss and P_fa cross.

    Between the last point with P_miss < P_fa and the first with P_miss >= P_fa the curve is taken
    as the straight segment joining them, and the EER is where that segment meets P_miss = P_fa.
    The threshold returned is the one of the first point at or past the crossing.
    """
    points = det_points(target, nontarget)
    gap = points.p_fa - points.p_miss  # > 0 before the crossing, <= 0 at and after it
    k = int(np.argmax(gap <= 0))  # gap[-1] = -1, so a crossing always exists; gap[0] = 1
    before, after = gap[k - 1], gap[k]
    fraction = before / (before - after)
    eer = points.p_miss[k - 1] + fraction * (points.p_miss[k] - points.p_miss[k - 1])
    return float(eer), float(points.thresholds[k])


def _normaliser(p_target: float, c_miss: float, c_fa: float) -> float:
    if not 0.0 < p_target < 1.0:
        raise DataError(f"p_target must be in (0, 1), got {p_target}")
    if c_miss <= 0 or c_fa <= 0:
        raise DataError(f"costs must be positive, got c_miss={c_miss} c_fa={c_fa}")
    return min(c_miss * p_target, c_fa * (1.0 - p_target))


def min_dcf(target, nontarget, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0) -> tuple[float, float]:
    """(normalised minimum detection cost, threshold reaching it) over all thresholds."""
    norm = _normaliser(p_target, c_miss, c_fa)
    points = det_points(target, nontarget)
    cost = (c_miss * p_target * points.p_miss + c_fa * (1.0 - p_target) * points.p_fa) / norm
    k = int(np.argmin(cost))
    return float(cost[k]), float(points.thresholds[k])


def actual_dcf(target, nontarget, threshold: float, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Normalised detection cost when accepting every trial with score >= ``threshold``."""
    norm = _normaliser(p_target, c_miss, c_fa)
    target, nontarget = _check(target, nontarget)
    p_miss = np.count_nonzero(target < threshold) / target.size
    p_fa = np.count_nonzero(nontarget >= threshold) / nontarget.size
    return float((c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa) / norm)


def split_scores(scores: np.ndarray, is_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    is_target = np.asarray(is_target, dtype=bool)
    return scores[is_target], scores[~is_target]
