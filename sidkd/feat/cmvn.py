"""Sliding-window cepstral mean (and variance) normalisation, as Kaldi's apply-cmvn-sliding.

Frame t is normalised with the statistics of a window of frames [start, end):
- center=true: cmn-window frames centred on t (start = t - cmn-window // 2); a window that sticks
  out of the utterance is shifted back inside it, so near the edges the first or last cmn-window
  frames are used, and an utterance shorter than the window uses all its frames.
- center=false: frames t - cmn-window .. t (Kaldi's window, cmn-window + 1 frames); near the
  start, where those do not exist, the first max(t + 1, min-cmn-window) frames (so at least
  min-cmn-window frames when the utterance has them, looking ahead if needed).
The window's mean is subtracted; with norm-vars the result is divided by the window's standard
deviation (variance floored at 1e-10; a one-frame window gives zeros, as in Kaldi).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sidkd.errors import DataError
from sidkd.feat.options import KaldiOptions, option

__all__ = ["SlidingCmvnOptions", "apply_cmvn_sliding", "sliding_windows"]


@dataclass
class SlidingCmvnOptions(KaldiOptions):
    """Kaldi's SlidingWindowCmnOptions (defaults are Kaldi's; the voxceleb recipe uses
    cmn-window 300, center true)."""

    cmn_window: int = option(600, "window length in frames")
    min_cmn_window: int = option(100, "with center=false: the least window used near the start")
    center: bool = option(False, "centre the window on the frame (else it ends at the frame)")
    norm_vars: bool = option(False, "also divide by the window's standard deviation")

    def check(self) -> None:
        if self.cmn_window < 1 or self.min_cmn_window < 1:
            raise DataError(f"--cmn-window and --min-cmn-window must be >= 1 ({self.cmn_window}, {self.min_cmn_window})")


def sliding_windows(num_frames: int, opts: SlidingCmvnOptions) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) per frame: the half-open frame range whose statistics normalise it."""
    t = np.arange(num_frames)
    if opts.center:
        start = t - opts.cmn_window // 2
        end = start + opts.cmn_window
    else:
        start = t - opts.cmn_window
        end = t + 1
    before = start < 0
    end = np.where(before, end - start, end)
    start = np.where(before, 0, start)
    if not opts.center:
        end = np.where(end > t, np.maximum(t + 1, opts.min_cmn_window), end)
    after = end > num_frames
    start = np.where(after, np.maximum(start - (end - num_frames), 0), start)
    end = np.where(after, num_frames, end)
    return start, end


def apply_cmvn_sliding(feats: np.ndarray, opts: SlidingCmvnOptions | None = None) -> np.ndarray:
    """Normalised features, same shape, float32 (statistics accumulated in float64)."""
    opts = opts or SlidingCmvnOptions()
    feats = np.asarray(feats)
    if feats.ndim != 2:
        raise DataError(f"apply_cmvn_sliding needs a [frames, dim] matrix, got shape {feats.shape}")
    num = feats.shape[0]
    if num == 0:
        return feats.astype(np.float32)
    x = feats.astype(np.float64)
    start, end = sliding_windows(num, opts)
    count = (end - start)[:, None].astype(np.float64)
    # Window sums from prefix sums, taken relative to the utterance mean to keep them exact enough.
    centre = x.mean(axis=0)
    xc = x - centre
    zero = np.zeros((1, x.shape[1]))
    prefix = np.concatenate([zero, np.cumsum(xc, axis=0)])
    mean = (prefix[end] - prefix[start]) / count
    out = xc - mean
    if opts.norm_vars:
        prefix_sq = np.concatenate([zero, np.cumsum(xc * xc, axis=0)])
        variance = (prefix_sq[end] - prefix_sq[start]) / count - mean * mean
        scale = 1.0 / np.sqrt(np.maximum(variance, 1e-10))
        out = np.where(count > 1, out * scale, 0.0)
    return out.astype(np.float32)
