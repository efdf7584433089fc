"""The student's input features, computed on the fly from audio.

Why from audio and not from a feats.scp: babble noise and reverberation are waveform operations,
exact only before the filterbank; and the random 2-s crop is a slice of samples. The log-mel
filterbank itself is sidkd.feat's Kaldi-compatible ``compute_fbank`` (one implementation of
fbank in the toolkit), followed by per-segment mean normalisation (CMN over the crop), done
identically in training and embedding extraction.

Options come from the ``features:`` yaml section: ``kind`` is ``fbank`` (default) or ``mfcc``
(sidkd.feat's ``compute_mfcc``); the section named by the kind (``fbank:`` / ``mfcc:``) holds
FbankOptions / MfccOptions fields (Kaldi names with underscores, e.g. ``num_mel_bins``); ``cmn``
switches the mean normalisation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FeatureFrontEnd", "fbank_backend", "frontend_from_config"]


def fbank_backend():
    """(FbankOptions, compute_fbank) of sidkd.feat; imported late so that loading a model for
    inspection does not need the feature code."""
    from sidkd.feat import FbankOptions, compute_fbank

    return FbankOptions, compute_fbank


def mfcc_backend():
    from sidkd.feat import MfccOptions, compute_mfcc

    return MfccOptions, compute_mfcc


class FeatureFrontEnd:
    """samples (float32, 16-bit scale) -> (frames, dims) float32 features."""

    def __init__(self, options: dict | None = None, cmn: bool = True, sample_rate: int = 16000, kind: str = "fbank"):
        if kind not in ("fbank", "mfcc"):
            raise ValueError(f"unknown feature kind {kind!r} (fbank or mfcc)")
        self.kind = kind
        self.options = dict(options or {})
        self.cmn = cmn
        self.sample_rate = sample_rate
        self._options = None
        self._compute = None
        self._dim = None

    @property
    def num_bins(self) -> int:
        """Feature dimension, found by computing the features of a short noise signal."""
        if self._dim is None:
            probe = np.random.default_rng(0).standard_normal(self.sample_rate // 2).astype(np.float32) * 100
            self._dim = int(self(probe).shape[1])
        return self._dim

    def _ready(self):
        if self._compute is None:
            options_class, self._compute = fbank_backend() if self.kind == "fbank" else mfcc_backend()
            self._options = options_class(**self.options)
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


def frontend_from_config(features: dict) -> FeatureFrontEnd:
    """The front end of a ``features:`` section (a configuration's, or a model.json's)."""
    kind = features["kind"]
    return FeatureFrontEnd(features.get(kind), cmn=bool(features["cmn"]), sample_rate=int(features["sample_rate"]),
                           kind=kind)
