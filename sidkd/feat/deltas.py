"""Delta features, as Kaldi's add-deltas (DeltaFeatures).

The order-1 filter is the regression window j / sum(j^2), j = -w..w; the order-k filter is the
order-(k-1) filter convolved with it again, so delta-deltas span 2kw+1 frames of the input.
Every order filters the input itself, with frames beyond the ends replaced by the first/last frame.
Output: [input, delta, delta-delta, ...] side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sidkd.errors import DataError
from sidkd.feat.options import KaldiOptions, option

__all__ = ["DeltaOptions", "add_deltas", "delta_filters"]


@dataclass
class DeltaOptions(KaldiOptions):
    """Kaldi's DeltaFeaturesOptions."""

    delta_order: int = option(2, "highest order of deltas (2 = deltas and delta-deltas)")
    delta_window: int = option(2, "regression window half-width in frames")

    def check(self) -> None:
        if self.delta_order < 0 or self.delta_window < 1:
            raise DataError(f"need --delta-order >= 0 and --delta-window >= 1, got {self.delta_order}, {self.delta_window}")


def delta_filters(order: int, window: int) -> list[np.ndarray]:
    """Filter taps for orders 0..order; filter k has 2*k*window + 1 taps, centred."""
    regression = np.arange(-window, window + 1, dtype=np.float64)
    regression /= np.sum(regression**2)
    filters = [np.ones(1)]
    for _ in range(order):
        filters.append(np.convolve(filters[-1], regression))
    return filters


def add_deltas(feats: np.ndarray, order: int = 2, window: int = 2) -> np.ndarray:
    """[frames, dim * (order + 1)] float32."""
    DeltaOptions(order, window).check()
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2:
        raise DataError(f"add_deltas needs a [frames, dim] matrix, got shape {feats.shape}")
    num, dim = feats.shape
    out = np.empty((num, dim * (order + 1)), dtype=np.float32)
    if num == 0:
        return out
    reach = order * window
    padded = np.pad(feats, ((reach, reach), (0, 0)), mode="edge")
    for k, taps in enumerate(delta_filters(order, window)):
        half = len(taps) // 2
        acc = np.zeros((num, dim))
        # One vectorised pass per tap (at most 2*order*window+1 of them), not per frame.
        for j, tap in enumerate(taps):
            if tap != 0:
                offset = reach - half + j
                acc += tap * padded[offset : offset + num]
        out[:, k * dim : (k + 1) * dim] = acc
    return out
