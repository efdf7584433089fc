"""Full-covariance GMM (the full UBM), evaluated only on Gaussian-selected components.

Per frame t only the top-n components of the diagonal UBM (``gselect``, Kaldi n = 20) are
scored: log π_c − ½(D log 2π + log|Σ_c|) − ½‖Q_c x_t − Q_c μ_c‖² with Σ_c⁻¹ = Q_cᵀ Q_c
(Q_c = L_c⁻¹, L_c the Cholesky factor of Σ_c). The (frame, component) pairs are grouped by
component so each group is one GEMM (frames × D) @ (D × D), and its second-order statistics one
GEMM on the same gathered frames (kept from the scoring pass, scaled by √γ): the work is BLAS, the
Python loop is over the C components per chunk of frames, never over frames.

Precision as in sidkd.gmm.diag: scores and per-chunk products in float32 by default (Kaldi's
BaseFloat), statistics summed in float64; ``dtype`` = float64 is the all-double path.

Posteriors are over the selected components only; ``min_post`` then drops posteriors below the
floor and renormalises the rest (if all fell below, the best one keeps probability 1).

File format ``sidkd-full-gmm`` version 1: ``weights`` (C,), ``means`` (C, D), ``covars`` (C, D, D).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sidkd import blas
from sidkd.errors import DataError
from sidkd.gmm.diag import LOG_2PI, DiagGmm, log_softmax_rows
from sidkd.gmm.stats import GmmStats
from sidkd.io.npz import load_npz, save_npz

__all__ = ["FrameGroups", "FullGmm", "FullGmmStats", "add_statistics", "estimate_full", "prune_posteriors",
           "floor_covariance"]

log = logging.getLogger(__name__)

FORMAT = "sidkd-full-gmm"
STATS_FORMAT = "sidkd-full-gmm-stats"

def prune_posteriors(post: np.ndarray, min_post: float) -> np.ndarray:
    """Zero posteriors below ``min_post`` in each row and renormalise (keep the max if none survive)."""
    if min_post <= 0:
        return post
    kept = np.where(post >= min_post, post, 0.0)
    total = kept.sum(axis=1, keepdims=True)
    empty = total[:, 0] <= 0
    if np.any(empty):
        best = post[empty].argmax(axis=1)
        kept[np.flatnonzero(empty), best] = 1.0
        total[empty] = 1.0
    return kept / total

class FrameGroups:
    """(frame, component) pairs of a gselect matrix grouped by component."""

    def __init__(self, gselect: np.ndarray, num_gauss: int):
        flat = gselect.ravel()
        if num_gauss <= np.iinfo(np.int16).max:
            flat = flat.astype(np.int16)  # numpy's stable sort of 16-bit keys is a radix sort
        self.order = np.argsort(flat, kind="stable")
        self.size = flat.size
        self.rows = self.order // gselect.shape[1]
        counts = np.bincount(flat, minlength=num_gauss)
        self.bounds = np.concatenate([[0], np.cumsum(counts)])

    def __iter__(self):
        for c in np.flatnonzero(np.diff(self.bounds)):
            lo, hi = self.bounds[c], self.bounds[c + 1]
            yield int(c), self.rows[lo:hi], self.order[lo:hi]

@dataclass
class FullGmm:
    weights: np.ndarray  # (C,)
    means: np.ndarray  # (C, D)
    covars: np.ndarray  # (C, D, D)

    def __post_init__(self):
        self.weights = np.asarray(self.weights, dtype=np.float64)
        self.means = np.asarray(self.means, dtype=np.float64)
        self.covars = np.asarray(self.covars, dtype=np.float64)
        c, d = self.means.shape
        if self.weights.shape != (c,) or self.covars.shape != (c, d, d):
            raise DataError(f"full GMM: inconsistent shapes {self.weights.shape} {self.means.shape} {self.covars.shape}")
        try:
            chol = np.linalg.cholesky(self.covars)
        except np.linalg.LinAlgError as exc:
            raise DataError("full GMM: a covariance is not positive definite") from exc
        eye = np.broadcast_to(np.eye(d), chol.shape)
        self.whiten = np.linalg.solve(chol, eye)  # Q_c = L_c⁻¹ (batched triangular solve)
        logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        with np.errstate(divide="ignore"):
            self.gconst = np.log(self.weights) - 0.5 * (d * LOG_2PI + logdet)

    @property
    def num_gauss(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @classmethod
    def from_diag(cls, diag: DiagGmm) -> FullGmm:
        covars = np.zeros((diag.num_gauss, diag.dim, diag.dim))
        idx = np.arange(diag.dim)
        covars[:, idx, idx] = diag.variances
        return cls(diag.weights.copy(), diag.means.copy(), covars)

    def _scoring_params(self, dtype) -> np.ndarray:
        """(C, D+1, D) [Q_cᵀ; −(Q_c μ_c)ᵀ] in ``dtype``, cached: [x, 1] @ it = Q_c (x − μ_c) in one GEMM."""
        dtype = np.dtype(dtype)
        cache = self.__dict__.setdefault("_params", {})
        if dtype not in cache:
            c, d = self.means.shape
            params = np.empty((c, d + 1, d))
            params[:, :d] = np.swapaxes(self.whiten, 1, 2)
            params[:, d] = -np.einsum("cij,cj->ci", self.whiten, self.means)
            cache[dtype] = params.astype(dtype)
        return cache[dtype]

    def _check_feats(self, feats: np.ndarray) -> None:
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            raise DataError(f"features have shape {feats.shape}, full GMM expects dim {self.dim}")

    def _score(self, x: np.ndarray, groups: FrameGroups, keep: bool) -> tuple[np.ndarray, list]:
        """Flat (T·n) scores in gselect order, and (if ``keep``) each group's gathered [x, 1] rows."""
        params = self._scoring_params(x.dtype)
        t, d = x.shape
        ones = np.empty((t, d + 1), dtype=x.dtype)  # [x, 1]: the mean offset rides in the GEMM
        ones[:, :d] = x
        ones[:, d] = 1.0
        out = np.empty(groups.size, dtype=x.dtype)
        blocks = []
        for c, rows, flat_pos in groups:
            xc = np.take(ones, rows, axis=0)
            z = blas.matmul(xc, params[c])
            out[flat_pos] = self.gconst[c] - 0.5 * np.einsum("ij,ij->i", z, z)
            if keep:
                blocks.append(xc)
        return out, blocks

    def selected_logliks(self, feats: np.ndarray, gselect: np.ndarray, groups: FrameGroups | None = None,
                         dtype=np.float32) -> np.ndarray:
        """(T, n) log π_c + log N(x_t; μ_c, Σ_c) for c = gselect[t, k], computed in ``dtype``."""
        x = np.asarray(feats, dtype=dtype)
        self._check_feats(x)
        groups = groups or FrameGroups(gselect, self.num_gauss)
        return self._score(x, groups, keep=False)[0].reshape(gselect.shape)

    def posteriors(self, feats: np.ndarray, gselect: np.ndarray, min_post: float = 0.0,
                   groups: FrameGroups | None = None, dtype=np.float32, keep: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, list]:
        """(post (T, n) over the selected components, frame log-likelihoods (T,) before pruning,
        the groups' gathered frames if ``keep`` (for :func:`add_second_order`), else [])."""
        x = np.asarray(feats, dtype=dtype)
        self._check_feats(x)
        groups = groups or FrameGroups(gselect, self.num_gauss)
        scores, blocks = self._score(x, groups, keep)
        post, frame_ll = log_softmax_rows(scores.reshape(gselect.shape))
        return prune_posteriors(post, min_post), frame_ll, blocks

    def accumulate(self, feats: np.ndarray, gselect: np.ndarray, stats: FullGmmStats, dtype=np.float32) -> float:
        """Add EM statistics of these frames (posteriors over the selection) to ``stats``."""
        x = np.asarray(feats, dtype=dtype)
        groups = FrameGroups(gselect, self.num_gauss)
        post, frame_ll, blocks = self.posteriors(x, gselect, groups=groups, dtype=dtype, keep=True)
        add_statistics(groups, post, blocks, stats.occupancy, stats.first, stats.second)
        loglik = float(frame_ll.sum(dtype=np.float64))
        stats.loglik += loglik
        stats.num_frames += x.shape[0]
        return loglik

    def save(self, path: str) -> None:
        save_npz(path, FORMAT, 1, {"weights": self.weights, "means": self.means, "covars": self.covars},
                 num_gauss=self.num_gauss, dim=self.dim)

    @classmethod
    def load(cls, path: str) -> FullGmm:
        _, a = load_npz(path, FORMAT)
        return cls(a["weights"], a["means"], a["covars"])

def add_statistics(groups: FrameGroups, post: np.ndarray, blocks: list, occupancy: np.ndarray | None,
                   first: np.ndarray | None, second: np.ndarray) -> None:
    """Per component c of ``groups``: N_c += Σγ, F_c += Σγx, S_c += Σγxxᵀ over its frames, all three
    from one Gram product of the gathered [x, 1] ``blocks`` of the scoring pass scaled by √γ:
    [√γx, √γ]ᵀ[√γx, √γ] = [[S, F], [Fᵀ, N]]. Frames pruned to γ = 0 are dropped first when they are
    many (with Kaldi's min-post most are). Sums go into the (float64) arrays given; None for
    occupancy/first skips them."""
    flat_post = post.ravel()
    d = second.shape[1]
    for (c, _, flat_pos), xc in zip(groups, blocks):
        p = flat_post[flat_pos]
        kept = p > 0
        num_kept = int(np.count_nonzero(kept))
        if num_kept == 0:
            continue
        if num_kept < 0.75 * p.size:
            p, xc = p[kept], xc[kept]
        scaled = xc * np.sqrt(p)[:, None]
        g = blas.gram(scaled)
        second[c] += g[:d, :d]
        if occupancy is not None:
            first[c] += g[:d, d]
            occupancy[c] += g[d, d]


class FullGmmStats(GmmStats):
    """EM accumulators with full second order S_c = Σγxxᵀ (C, D, D)."""

    FORMAT = STATS_FORMAT

    @classmethod
    def zeros(cls, num_gauss: int, dim: int) -> FullGmmStats:
        return cls(np.zeros(num_gauss), np.zeros((num_gauss, dim)), np.zeros((num_gauss, dim, dim)))

def floor_covariance(cov: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Smallest change making cov ⪰ floor (both SPD): in the basis where floor is I, clip
    eigenvalues below 1 up to 1. Works on one matrix or a stack."""
    lf = np.linalg.cholesky(floor)
    lf_inv = np.linalg.inv(lf)
    t = lf_inv @ cov @ np.swapaxes(lf_inv, -1, -2)
    t = 0.5 * (t + np.swapaxes(t, -1, -2))
    vals, vecs = np.linalg.eigh(t)
    vals = np.maximum(vals, 1.0)
    t = (vecs * vals[..., None, :]) @ np.swapaxes(vecs, -1, -2)
    out = lf @ t @ np.swapaxes(lf, -1, -2)
    return 0.5 * (out + np.swapaxes(out, -1, -2))

def estimate_full(prev: FullGmm, stats: FullGmmStats, *, min_variance: float = 1e-3, max_condition: float = 1e4,
                  min_count: float = 10.0) -> FullGmm:
    """M-step: π = N/ΣN, μ = F/N, Σ = S/N − μμᵀ with eigenvalues floored at
    max(min_variance, λ_max / max_condition). A component with N_c < ``min_count`` keeps its
    previous mean and covariance (its weight still follows N_c, floored so it stays > 0): the
    component count and order must not change, the diagonal UBM's gselect indexes them."""
    n = stats.occupancy
    total = n.sum()
    if total <= 0:
        raise DataError("full GMM estimation: no data accumulated")
    ok = n >= min_count
    safe = np.maximum(n, 1e-300)
    means = prev.means.copy()
    covars = prev.covars.copy()
    means[ok] = stats.first[ok] / safe[ok, None]
    cov = stats.second[ok] / safe[ok, None, None] - np.einsum("ci,cj->cij", means[ok], means[ok])
    cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
    vals, vecs = np.linalg.eigh(cov)
    limit = np.maximum(min_variance, vals[:, -1:] / max_condition)
    vals = np.maximum(vals, limit)
    covars[ok] = (vecs * vals[:, None, :]) @ np.swapaxes(vecs, 1, 2)
    weights = np.maximum(n / total, 1e-10)
    weights /= weights.sum()
    if not np.all(ok):
        log.warning("%d Gaussian(s) with count < %g kept their previous parameters", int((~ok).sum()), min_count)
    return FullGmm(weights, means, covars)
