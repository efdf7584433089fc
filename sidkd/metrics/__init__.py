"""Verification metrics: EER, minDCF, actual DCF and DET curves (docs/math.md §5)."""

from sidkd.metrics.rates import (
    DetPoints,
    actual_dcf,
    det_points,
    equal_error_rate,
    min_dcf,
    split_scores,
)

__all__ = ["DetPoints", "det_points", "equal_error_rate", "min_dcf", "actual_dcf", "split_scores"]
