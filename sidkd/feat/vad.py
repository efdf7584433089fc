"""Energy voice activity detection and frame selection, as Kaldi's compute-vad and
select-voiced-frames define them.

A frame is "loud" when its log energy (column 0 of an MFCC matrix made with use-energy) exceeds
vad-energy-threshold + vad-energy-mean-scale * (mean log energy of the utterance); the mean term
makes the threshold follow the recording level. A frame is voiced when at least
vad-proportion-threshold of the frames within vad-frames-context of it (the window clipped at the
utterance's ends) are loud. The decision is a float vector of 0/1, one entry per frame, as Kaldi
writes it to vad.scp.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sidkd.errors import DataError
from sidkd.feat.options import KaldiOptions, option

__all__ = ["VadOptions", "compute_vad", "select_voiced_frames"]


@dataclass
class VadOptions(KaldiOptions):
    """Kaldi's VadEnergyOptions (defaults are Kaldi's)."""

    vad_energy_threshold: float = option(5.0, "constant part of the log-energy threshold")
    vad_energy_mean_scale: float = option(0.5, "plus this times the utterance's mean log energy")
    vad_frames_context: int = option(0, "frames each side that vote on a frame")
    vad_proportion_threshold: float = option(0.6, "voiced if at least this fraction of the votes is loud")

    def check(self) -> None:
        if self.vad_frames_context < 0:
            raise DataError(f"--vad-frames-context must be >= 0, got {self.vad_frames_context}")
        if not 0.0 < self.vad_proportion_threshold < 1.0:
            raise DataError(f"--vad-proportion-threshold must be in (0, 1), got {self.vad_proportion_threshold}")


def compute_vad(feats: np.ndarray, opts: VadOptions | None = None) -> np.ndarray:
    """0/1 float32 vector over the frames of ``feats`` (column 0 = log energy)."""
    opts = opts or VadOptions()
    feats = np.asarray(feats)
    if feats.ndim != 2 or feats.shape[1] == 0:
        raise DataError(f"compute_vad needs a [frames, dim] matrix with dim >= 1, got shape {feats.shape}")
    num = feats.shape[0]
    if num == 0:
        return np.zeros(0, dtype=np.float32)
    log_energy = feats[:, 0].astype(np.float64)
    threshold = opts.vad_energy_threshold
    if opts.vad_energy_mean_scale != 0:
        threshold += opts.vad_energy_mean_scale * log_energy.mean()
    loud = np.concatenate([[0], np.cumsum(log_energy > threshold)])
    context = opts.vad_frames_context
    t = np.arange(num)
    first = np.maximum(t - context, 0)
    last = np.minimum(t + context, num - 1)
    votes_loud = loud[last + 1] - loud[first]
    votes = last - first + 1
    return (votes_loud >= votes * opts.vad_proportion_threshold).astype(np.float32)


def select_voiced_frames(feats: np.ndarray, vad: np.ndarray) -> np.ndarray:
    """The rows of ``feats`` whose VAD entry is non-zero; DataError if the lengths differ."""
    vad = np.asarray(vad).reshape(-1)
    if len(vad) != feats.shape[0]:
        raise DataError(f"VAD has {len(vad)} frames but the features have {feats.shape[0]}")
    return feats[vad != 0]
