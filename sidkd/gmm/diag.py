"""Diagonal-covariance GMM (the diagonal UBM): likelihoods, EM statistics, estimation, init.

Frame log-likelihoods for all components are one GEMM: with precisions λ_c = 1/σ²_c,
log π_c + log N(x; μ_c, diag σ²_c) = [x², x, 1] @ [−½λ_c; λ_c μ_c; g_c] with
g_c = log π_c − ½ Σ_d (log 2πσ²_cd + λ_cd μ²_cd). The EM statistics are a second GEMM on the same
[x², x, 1] rows: with unnormalised posteriors e_tc = exp(ℓ_tc − max_c ℓ_tc) and row sums z_t,
eᵀ · ([x², x, 1] / z) = [S, F, N] for all components at once, so the normalisation touches the
T × (2D+1) right-hand side, not the T × C posteriors.

Precision: the likelihoods and the per-chunk products run in float32 by default (as Kaldi's
BaseFloat GMM code does; features are float32 on disk, and sgemm is twice dgemm's speed); the
statistics are summed across chunks and jobs in float64 (as Kaldi's AccumDiagGmm). ``dtype`` =
float64 gives the all-double path; tests/ivector/test_gmm.py bounds the difference.

File format ``sidkd-diag-gmm`` version 1 (npz, see sidkd.io.npz): arrays ``weights`` (C,),
``means`` (C, D), ``variances`` (C, D).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sidkd import blas
from sidkd.errors import DataError
from sidkd.gmm.stats import GmmStats
from sidkd.io.npz import load_npz, save_npz

__all__ = ["DiagGmm", "DiagGmmStats", "init_diag_gmm", "top_n", "log_softmax_rows", "ReservoirSampler"]

log = logging.getLogger(__name__)

FORMAT = "sidkd-diag-gmm"
STATS_FORMAT = "sidkd-diag-gmm-stats"
LOG_2PI = float(np.log(2.0 * np.pi))


def log_softmax_rows(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(posteriors, row log-sum-exp) of a (T, K) score matrix, numerically safe."""
    peak = scores.max(axis=1, keepdims=True)
    post = np.exp(scores - peak)
    total = post.sum(axis=1, keepdims=True)
    post /= total
    return post, (np.log(total) + peak)[:, 0]


def top_n(scores: np.ndarray, n: int, sort: bool = True) -> np.ndarray:
    """Indices (T, n) of the n largest scores per row (Gaussian selection), best first unless
    ``sort`` is false (then in column order).

    np.partition on the values finds each row's n-th largest score ~5x faster than argpartition
    finds its index; the mask ``scores >= that`` then has n entries per row except on exact ties,
    which fall back to argpartition for those rows.
    """
    t, k = scores.shape
    n = min(n, k)
    if n == k:
        idx = np.broadcast_to(np.arange(k), (t, k)).copy()
    else:
        kth = np.partition(scores, k - n, axis=1)[:, k - n:k - n + 1]
        mask = scores >= kth
        tied = np.flatnonzero(mask.sum(axis=1) != n)
        if len(tied):
            mask[tied] = False
            part = np.argpartition(scores[tied], k - n, axis=1)[:, k - n:]
            mask[tied[:, None], part] = True
        flat = np.flatnonzero(mask).reshape(t, n)  # row-major: row r's n hits in column order
        idx = flat - (np.arange(t) * k)[:, None]
    if sort:
        order = np.argsort(-np.take_along_axis(scores, idx, axis=1), axis=1, kind="stable")
        idx = np.take_along_axis(idx, order, axis=1)
    return idx


def expand_frames(x: np.ndarray, dtype=np.float32) -> np.ndarray:
    """(T, 2D+1) rows [x², x, 1] in ``dtype``: the left side of the diagonal-GMM GEMMs."""
    t, d = x.shape
    out = np.empty((t, 2 * d + 1), dtype=dtype)
    out[:, d:2 * d] = x
    np.multiply(out[:, d:2 * d], out[:, d:2 * d], out=out[:, :d])
    out[:, 2 * d] = 1.0
    return out


@dataclass
class DiagGmm:
    weights: np.ndarray  # (C,)
    means: np.ndarray  # (C, D)
    variances: np.ndarray  # (C, D)

    def __post_init__(self):
        self.weights = np.asarray(self.weights, dtype=np.float64)
        self.means = np.asarray(self.means, dtype=np.float64)
        self.variances = np.asarray(self.variances, dtype=np.float64)
        c, d = self.means.shape
        if self.weights.shape != (c,) or self.variances.shape != (c, d):
            raise DataError(f"diag GMM: inconsistent shapes {self.weights.shape} {self.means.shape} {self.variances.shape}")
        if np.any(self.variances <= 0):
            raise DataError("diag GMM: non-positive variance")
        self._params = None

    @property
    def num_gauss(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def _loglik_params(self, dtype) -> np.ndarray:
        """(2D+1, C) [−½λ; λμ; g] in ``dtype`` (cached per dtype)."""
        dtype = np.dtype(dtype)
        if self._params is None:
            self._params = {}
        if dtype not in self._params:
            prec = 1.0 / self.variances
            with np.errstate(divide="ignore"):
                log_w = np.log(self.weights)
            gconst = log_w - 0.5 * np.sum(LOG_2PI + np.log(self.variances) + prec * self.means**2, axis=1)
            params = np.concatenate([-0.5 * prec.T, (prec * self.means).T, gconst[None, :]])
            self._params[dtype] = np.ascontiguousarray(params, dtype=dtype)
        return self._params[dtype]

    def _check_feats(self, feats: np.ndarray) -> None:
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            raise DataError(f"features have shape {feats.shape}, diag GMM expects dim {self.dim}")

    def component_logliks(self, feats: np.ndarray, dtype=np.float32) -> np.ndarray:
        """(T, C) log π_c + log N(x_t; μ_c, σ²_c), computed in ``dtype``."""
        feats = np.asarray(feats)
        self._check_feats(feats)
        return blas.matmul(expand_frames(feats, dtype), self._loglik_params(dtype))

    def gselect(self, feats: np.ndarray, n: int, sort: bool = True, dtype=np.float32) -> np.ndarray:
        """Top-n component indices per frame (T, n) by the diagonal likelihood (best first if ``sort``)."""
        return top_n(self.component_logliks(feats, dtype), n, sort=sort)

    def accumulate(self, feats: np.ndarray, stats: DiagGmmStats, dtype=np.float32) -> float:
        """Add EM statistics of these frames to ``stats``; returns their total log-likelihood."""
        feats = np.asarray(feats)
        self._check_feats(feats)
        d = self.dim
        rhs = expand_frames(feats, dtype)
        post = blas.matmul(rhs, self._loglik_params(dtype))
        peak = post.max(axis=1, keepdims=True)
        post -= peak
        np.exp(post, out=post)
        total = post.sum(axis=1, keepdims=True)
        rhs /= total  # scale the (T, 2D+1) side, not the (T, C) posteriors
        sums = blas.matmul(post.T, rhs)  # (C, 2D+1) = [S, F, N]
        stats.second += sums[:, :d]
        stats.first += sums[:, d:2 * d]
        stats.occupancy += sums[:, 2 * d]
        stats.num_frames += feats.shape[0]
        loglik = float(np.log(total, dtype=np.float64).sum() + peak.sum(dtype=np.float64))
        stats.loglik += loglik
        return loglik

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: str) -> None:
        save_npz(path, FORMAT, 1, {"weights": self.weights, "means": self.means, "variances": self.variances},
                 num_gauss=self.num_gauss, dim=self.dim)

    @classmethod
    def load(cls, path: str) -> DiagGmm:
        _, arrays = load_npz(path, FORMAT)
        return cls(arrays["weights"], arrays["means"], arrays["variances"])


class DiagGmmStats(GmmStats):
    """EM accumulators: occupancy N_c, first order F_c = Σγx, diagonal second order S_c = Σγx²."""

    FORMAT = STATS_FORMAT

    @classmethod
    def zeros(cls, num_gauss: int, dim: int) -> DiagGmmStats:
        return cls(np.zeros(num_gauss), np.zeros((num_gauss, dim)), np.zeros((num_gauss, dim)))



def split_component(gmm_arrays: tuple[np.ndarray, np.ndarray, np.ndarray], src: int, dst: int,
                    rng: np.random.Generator, perturb: float = 0.2) -> None:
    """Make component ``dst`` a copy of ``src`` nudged ±perturb·σ along a random direction.

    Both halves share src's weight; EM then pulls them apart. (In place on (w, μ, σ²).)
    """
    weights, means, variances = gmm_arrays
    step = perturb * np.sqrt(variances[src]) * rng.standard_normal(means.shape[1])
    weights[src] *= 0.5
    weights[dst] = weights[src]
    variances[dst] = variances[src]
    means[dst] = means[src] - step
    means[src] = means[src] + step


def estimate_diag(prev: DiagGmm, stats: DiagGmmStats, *, min_variance: float = 1e-3,
                  min_count: float = 3.0, rng: np.random.Generator | None = None) -> tuple[DiagGmm, int]:
    """M-step: π = N/ΣN, μ = F/N, σ² = S/N − μ², floored at ``min_variance``.

    A starved component (N_c < ``min_count``) is re-seeded by splitting the heaviest component,
    so the model keeps its size (indices stay aligned with the full UBM made from it). Returns
    (new model, number re-seeded).
    """
    rng = rng or np.random.default_rng(0)
    n = stats.occupancy
    if n.sum() <= 0:
        raise DataError("diag GMM estimation: no data accumulated")
    safe = np.maximum(n, 1e-300)[:, None]
    means = stats.first / safe
    variances = np.maximum(stats.second / safe - means**2, min_variance)
    weights = n / n.sum()
    starved = np.flatnonzero(n < min_count)
    # Components with too little data keep nothing sensible: copy them from the heaviest ones.
    for dst in starved:
        src = int(np.argmax(np.where(np.isin(np.arange(len(n)), starved), -np.inf, weights)))
        split_component((weights, means, variances), src, int(dst), rng)
    if len(starved):
        log.warning("re-seeded %d starved Gaussian(s) (count < %g) by splitting the heaviest", len(starved), min_count)
    return DiagGmm(weights, means, variances), len(starved)


class ReservoirSampler:
    """A uniform random subset of at most ``capacity`` rows from a stream of matrices.

    Algorithm R vectorised: the i-th row seen (0-based) replaces slot j ~ U{0..i} when j < capacity.
    Duplicated slots in one block resolve to the later row, as in the sequential algorithm.
    """

    def __init__(self, capacity: int, dim: int, seed: int = 0):
        self.buffer = np.empty((capacity, dim), dtype=np.float32)
        self.capacity = capacity
        self.seen = 0
        self.rng = np.random.default_rng(seed)

    def add(self, rows: np.ndarray) -> None:
        m = rows.shape[0]
        if rows.shape[1] != self.buffer.shape[1]:
            raise DataError(f"feature dim {rows.shape[1]} differs from earlier {self.buffer.shape[1]}")
        fill = min(max(self.capacity - self.seen, 0), m)
        if fill:
            self.buffer[self.seen:self.seen + fill] = rows[:fill]
        if fill < m:
            positions = np.arange(self.seen + fill, self.seen + m)
            slots = (self.rng.random(m - fill) * (positions + 1)).astype(np.int64)
            keep = slots < self.capacity
            self.buffer[slots[keep]] = rows[fill:][keep]
        self.seen += m

    def frames(self) -> np.ndarray:
        return self.buffer[: min(self.seen, self.capacity)]


def _em_pass(gmm: DiagGmm, frames: np.ndarray, chunk: int = 20000) -> DiagGmmStats:
    stats = DiagGmmStats.zeros(gmm.num_gauss, gmm.dim)
    for start in range(0, frames.shape[0], chunk):
        gmm.accumulate(frames[start:start + chunk], stats)
    return stats


def init_diag_gmm(frames: np.ndarray, num_gauss: int, num_iters: int = 20, *, min_variance: float = 1e-3,
                  seed: int = 0) -> DiagGmm:
    """Initialise by mixing up: one Gaussian on all frames, then split the heaviest components.

    Why mixing up rather than k-means++: it is what Kaldi's reference UBM does (so our UBM lands
    near it), it is deterministic given the seed, and each split starts from a converged smaller
    model, so no component starts on an outlier frame (k-means++ seeding favours far-away frames,
    which with MFCC means noise bursts). The number of Gaussians grows geometrically from 1 to
    ``num_gauss`` over the first half of ``num_iters`` EM passes on the in-memory frame subset;
    the second half refines the full-size model.
    """
    frames = np.asarray(frames)
    if frames.ndim != 2 or frames.shape[0] < 2 * num_gauss:
        raise DataError(f"diag GMM init: need at least {2 * num_gauss} frames, got {frames.shape[0]}")
    rng = np.random.default_rng(seed)
    x = np.asarray(frames, dtype=np.float32)
    mean = x.mean(axis=0, dtype=np.float64)
    var = np.maximum(x.var(axis=0, dtype=np.float64), min_variance)
    weights = np.zeros(num_gauss)
    means = np.zeros((num_gauss, x.shape[1]))
    variances = np.ones((num_gauss, x.shape[1]))
    weights[0], means[0], variances[0] = 1.0, mean, var
    current = 1
    grow_iters = max(1, num_iters // 2)
    gmm = None
    for it in range(num_iters):
        target = min(num_gauss, max(current, int(round(num_gauss ** ((it + 1) / grow_iters)))))
        while current < target:
            heavy = np.argsort(-weights[:current])[: target - current]
            for src in heavy:
                split_component((weights, means, variances), int(src), current, rng)
                current += 1
        gmm = DiagGmm(weights[:current].copy(), means[:current].copy(), variances[:current].copy())
        stats = _em_pass(gmm, x)
        log.info("init iter %d: %d Gaussians, avg log-likelihood per frame %.4f", it, current,
                 stats.loglik / max(stats.num_frames, 1))
        gmm, _ = estimate_diag(gmm, stats, min_variance=min_variance, rng=rng)
        weights[:current], means[:current], variances[:current] = gmm.weights, gmm.means, gmm.variances
    assert gmm is not None and current == num_gauss
    return gmm
