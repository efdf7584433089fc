"""The student's input features, computed on the fly from audio.

Why from audio and not from a feats.scp: babble noise and reverberation are waveform operations,
exact only before the filterbank; and the random 2-s crop is a slice of samples. The log-mel
filterbank itself is sidkd.feat's Kaldi-compatible ``compute_fbank`` (one implementation of
fbank in the toolkit), followed by per-segment mean normalisation (CMN over the crop), done
identically in training and embedding extraction.

Options come from the ``features:`` yaml section: ``fbank`` holds FbankOptions fields
(Kaldi names with underscores, e.g. ``num_mel_bins``); ``cmn`` switches the mean normalisation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FeatureFrontEnd", "fbank_backend"]


def fbank_backend():
    """(FbankOptions, compute_fbank) of sidkd.feat; imported late so that loading a model for
    inspection does not need the feature code."""
    from sidkd.feat import FbankOptions, compute_fbank

    return FbankOptions, compute_fbank


class FeatureFrontEnd:
    """samples (float32, 16-bit scale) -> (frames, bins) float32 features."""

    def __init__(self, fbank: dict | None = None, cmn: bool = True, sample_rate: int = 16000):
        self.fbank = dict(fbank or {})
        self.cmn = cmn
        self.sample_rate = sample_rate
        self._options = None
        self._compute = None

    @property
    def num_bins(self) -> int:
        return int(self.fbank.get("num_mel_bins", 23))  # 23: Kaldi's default for compute-fbank-feats

    def _ready(self):
        if self._compute is None:
            options_class, self._compute = fbank_backend()
            self._options = options_class(**self.fbank)
        return self._compute, self._options

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        compute, options = self._ready()
        feats = np.asarray(compute(np.asarray(samples, dtype=np.float32), options), dtype=np.float32)
        if self.cmn and len(feats):
            feats = feats - feats.mean(axis=0, keepdims=True)
        return feats

    def __getstate__(self):  # for DataLoader workers: rebuild the backend there
        state = dict(self.__dict__)
        state["_options"] = state["_compute"] = None
        return state
