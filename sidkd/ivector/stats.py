"""Baum-Welch statistics for the i-vector extractor, from features and the two UBMs.

Per utterance: posteriors from the full UBM over the top-``num_gselect`` components of the
diagonal UBM (Kaldi: n = 20), pruned at ``min_post`` (Kaldi: 0.025) and renormalised, then
scaled by ``posterior_scale`` (Kaldi's default 1.0); γ_c = Σ_t γ_tc and f_c = Σ_t γ_tc x_t
(uncentred). Optionally the corpus sum S_c = Σ_t γ_tc x_t x_tᵀ (for the variance update).

The UBMs are fixed while the extractor trains, so these statistics are computed once and every
EM iteration reads them instead of the features. On disk one utterance is one float32 matrix
(C, 1 + D) in a Kaldi archive: column 0 is γ_c, columns 1..D are f_c.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from scipy import sparse

from sidkd.errors import DataError
from sidkd.gmm.chunks import iter_chunks
from sidkd.gmm.diag import DiagGmm
from sidkd.gmm.full import FrameGroups, FullGmm, add_statistics
from sidkd.io.npz import load_npz, save_npz

__all__ = ["iter_utterance_stats", "pack_stats", "unpack_stats", "iter_stats_batches", "save_second_order",
           "load_second_order"]


def pack_stats(gamma: np.ndarray, first: np.ndarray) -> np.ndarray:
    return np.concatenate([gamma[:, None], first], axis=1).astype(np.float32)


def unpack_stats(key: str, packed: np.ndarray, num_gauss: int, feat_dim: int) -> tuple[np.ndarray, np.ndarray]:
    if packed.shape != (num_gauss, feat_dim + 1):
        raise DataError(f"{key}: stats matrix has shape {packed.shape}, expected ({num_gauss}, {feat_dim + 1})")
    packed = packed.astype(np.float64)
    return packed[:, 0], packed[:, 1:]


def iter_utterance_stats(utterances: Iterable[tuple[str, np.ndarray]], diag: DiagGmm, full: FullGmm, *,
                         num_gselect: int = 20, min_post: float = 0.025, posterior_scale: float = 1.0,
                         second: np.ndarray | None = None, max_frames: int = 20000, dtype=np.float32
                         ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield (key, γ (C,), f (C, D)) per utterance; adds S_c into ``second`` (C, D, D) if given.
    Scores and per-chunk sums in ``dtype`` (float32: see sidkd.gmm.diag), S_c summed in ``second``'s."""
    if diag.num_gauss != full.num_gauss or diag.dim != full.dim:
        raise DataError(f"diag UBM ({diag.num_gauss}x{diag.dim}) and full UBM ({full.num_gauss}x{full.dim}) differ")
    for keys, lengths, x in iter_chunks(utterances, full.dim, max_frames=max_frames, dtype=dtype):
        gsel = diag.gselect(x, num_gselect, sort=False, dtype=dtype)
        groups = FrameGroups(gsel, full.num_gauss)
        post, _, blocks = full.posteriors(x, gsel, min_post, groups, dtype=dtype, keep=second is not None)
        if posterior_scale != 1.0:
            post *= posterior_scale
        if second is not None:
            add_statistics(groups, post, blocks, None, None, second)
        # γ and f of every utterance of the chunk at once: a sparse (utterances·C) × frames matrix
        # of the kept posteriors times the frames (nnz ≈ frames × a few, not frames × C).
        num_utts, c_count = len(keys), full.num_gauss
        utt_of_frame = np.repeat(np.arange(num_utts), lengths)
        row = (utt_of_frame[:, None] * c_count + gsel).ravel()
        col = np.repeat(np.arange(x.shape[0]), gsel.shape[1])
        data = post.ravel()
        kept = data > 0
        weights = sparse.csr_matrix((data[kept], (row[kept], col[kept])), shape=(num_utts * c_count, x.shape[0]))
        firsts = np.asarray(weights @ x).reshape(num_utts, c_count, -1)
        gammas = np.asarray(weights.sum(axis=1)).reshape(num_utts, c_count)
        for i, key in enumerate(keys):
            yield key, gammas[i], firsts[i]


def iter_stats_batches(items: Iterable[tuple[str, np.ndarray]], num_gauss: int, feat_dim: int, batch_size: int = 64
                       ) -> Iterator[tuple[list[str], np.ndarray, np.ndarray]]:
    """Group packed per-utterance stats into batches (keys, γ (B, C), f (B, C, D))."""
    keys: list[str] = []
    gammas, firsts = [], []
    for key, packed in items:
        gamma, first = unpack_stats(key, np.asarray(packed), num_gauss, feat_dim)
        if not (np.all(np.isfinite(gamma)) and np.all(np.isfinite(first))):
            raise DataError(f"{key}: stats contain NaN or inf")
        keys.append(key)
        gammas.append(gamma)
        firsts.append(first)
        if len(keys) == batch_size:
            yield keys, np.stack(gammas), np.stack(firsts)
            keys, gammas, firsts = [], [], []
    if keys:
        yield keys, np.stack(gammas), np.stack(firsts)


SECOND_ORDER_FORMAT = "sidkd-ivector-second-order"


def save_second_order(path: str, second: np.ndarray, num_utts: int) -> None:
    """Corpus (or split) sum S_c = Σ_t γ_tc x_t x_tᵀ, (C, D, D) float64, written beside the stats."""
    save_npz(path, SECOND_ORDER_FORMAT, 1, {"second": second, "num_utts": np.int64(num_utts)})


def load_second_order(path: str) -> np.ndarray:
    return load_npz(path, SECOND_ORDER_FORMAT)[1]["second"]
