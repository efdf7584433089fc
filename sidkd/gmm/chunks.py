"""Stream utterances as chunks of concatenated frames (bounded memory, big GEMMs)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import numpy as np

from sidkd.errors import DataError
from sidkd.io.ark import check_finite

__all__ = ["iter_chunks"]

log = logging.getLogger(__name__)


def iter_chunks(utterances: Iterable[tuple[str, np.ndarray]], dim: int, max_frames: int = 20000,
                subsample: int = 1, dtype=np.float32) -> Iterator[tuple[list[str], np.ndarray, np.ndarray]]:
    """Yield (keys, lengths, frames) with at most ~``max_frames`` rows (one utterance may exceed it).

    ``subsample`` keeps every n-th frame of each utterance (Kaldi's subsample-feats). Utterances
    with no frames are skipped with a warning; a wrong dimension or non-finite value is an error
    naming the key. Frames come as ``dtype`` (float32: what the archives hold and what the EM
    code computes in).
    """
    keys: list[str] = []
    parts: list[np.ndarray] = []
    count = 0
    for key, feats in utterances:
        feats = np.asarray(feats)
        if feats.ndim != 2 or feats.shape[1] != dim:
            raise DataError(f"{key}: features have shape {feats.shape}, expected (frames, {dim})")
        if subsample > 1:
            feats = feats[::subsample]
        if feats.shape[0] == 0:
            log.warning("%s: no frames, skipped", key)
            continue
        check_finite(key, feats)
        keys.append(key)
        parts.append(feats)
        count += feats.shape[0]
        if count >= max_frames:
            yield keys, np.array([p.shape[0] for p in parts]), np.concatenate(parts).astype(dtype, copy=False)
            keys, parts, count = [], [], 0
    if parts:
        yield keys, np.array([p.shape[0] for p in parts]), np.concatenate(parts).astype(dtype, copy=False)
