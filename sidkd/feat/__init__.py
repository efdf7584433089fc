"""Kaldi-compatible acoustic features: MFCC, log-mel filterbank, energy VAD, sliding CMN, deltas."""

from sidkd.feat.cmvn import SlidingCmvnOptions, apply_cmvn_sliding
from sidkd.feat.deltas import DeltaOptions, add_deltas
from sidkd.feat.spectral import FbankOptions, MfccOptions, compute_fbank, compute_mfcc, num_frames
from sidkd.feat.vad import VadOptions, compute_vad, select_voiced_frames

__all__ = [
    "MfccOptions",
    "FbankOptions",
    "compute_mfcc",
    "compute_fbank",
    "num_frames",
    "VadOptions",
    "compute_vad",
    "select_voiced_frames",
    "SlidingCmvnOptions",
    "apply_cmvn_sliding",
    "DeltaOptions",
    "add_deltas",
]
