"""Length normalisation and per-speaker i-vector means (Kaldi's extract_ivectors.sh outputs)."""

from __future__ import annotations

import numpy as np

__all__ = ["length_normalize", "speaker_mean"]


def length_normalize(vectors: np.ndarray, norm: float | None = None) -> np.ndarray:
    """Scale each row to length ``norm`` (default √dim, as Kaldi's ivector-normalize-length)."""
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    target = np.sqrt(vectors.shape[1]) if norm is None else norm
    lengths = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors * (target / np.maximum(lengths, 1e-30))


def speaker_mean(vectors: np.ndarray) -> np.ndarray:
    """Kaldi's speaker i-vector: length-normalise each utterance, average, length-normalise again."""
    return length_normalize(length_normalize(vectors).mean(axis=0))[0]
