"""Kaldi-compatible acoustic features: MFCC, log-mel filterbank, energy VAD, sliding CMN, deltas."""

from sidkd.feat.spectral import FbankOptions, MfccOptions, compute_fbank, compute_mfcc, num_frames

__all__ = ["MfccOptions", "FbankOptions", "compute_mfcc", "compute_fbank", "num_frames"]
