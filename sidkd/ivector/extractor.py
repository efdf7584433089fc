"""Total-variability i-vector extractor in Kaldi's formulation (docs/math.md §2).

Model: x_t | (c, w) ~ N(M_c w, Σ_c), prior w ~ N(o·e₀, I). No separate mean: the first column
of M_c carries it (o is the "prior offset", 100 at init as in Kaldi). The i-vector is the
posterior mean ŵ with o subtracted from dimension 0.

Per utterance the statistics are γ_c = Σ_t γ_tc and uncentred f_c = Σ_t γ_tc x_t (UBM posteriors
after Gaussian selection and min-post pruning; see sidkd.ivector.stats). With U_c = M_cᵀ Σ_c⁻¹ M_c
(precomputed, R×R):

    P = I + Σ_c γ_c U_c,   b = o·e₀ + Σ_c M_cᵀ Σ_c⁻¹ f_c,   ŵ = P⁻¹ b,   Cov = P⁻¹.

For a batch of B utterances P is one (B×C)·(C×R(R+1)/2) GEMM on the packed upper triangles of
the symmetric U_c (half the work of the full R² form, as Kaldi's packed SpMatrix), unpacked by one
gather, and b one (B×CD)·(CD×R) GEMM. P is factored by a batched Cholesky (its log-determinant
feeds the objective) and inverted from the factor; the inverse is needed anyway for the A_c
accumulators, which are also kept packed and summed in place by one dgemm per batch (Y_c by
another). The factor is numpy's batched Cholesky, the inverse LAPACK's potri per utterance
(sidkd.blas says why not torch's). All of it is
float64: P's condition number reaches 1e4 and the A_c sums run over the whole corpus. Every
product goes through sidkd.blas, so bench/bench_ivector.py can tell BLAS time from the rest.

Objective printed per iteration: the log-likelihood of the frames given their alignments under
the current model, with w integrated out (exact, since w is Gaussian),

    Σ_u [½ bᵤᵀ ŵᵤ − ½ log|Pᵤ| − ½ o²] + Σ_c [γ_c(−½ D log 2π − ½ log|Σ_c|) − ½ tr(Σ_c⁻¹ S_c)],

S_c = Σ_t γ_tc x_t x_tᵀ summed over the corpus. EM cannot decrease it (the prior re-estimation
is part of the same M-step; the re-parametrisation after it leaves the likelihood unchanged).
The M-step's auxiliary-function gain Σ_c tr(Σ_c⁻¹(M_c Y_cᵀ − ½ M_c A_c M_cᵀ)) (new − old) is
logged too; it is ≥ 0.

File format ``sidkd-ivector-extractor`` version 1 (npz, sidkd.io.npz): ``M`` (C, D, R),
``covars`` (C, D, D) = Σ_c, ``prior_offset`` (scalar o).
Accumulator format ``sidkd-ivector-extractor-acc`` version 1: see :class:`IvectorAcc`
(A_c stored as packed upper triangles, row-major, ``numpy.triu_indices(R)`` order).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from sidkd import blas
from sidkd.errors import DataError
from sidkd.gmm.diag import LOG_2PI
from sidkd.gmm.full import FullGmm, floor_covariance
from sidkd.io.npz import load_npz, save_npz

__all__ = ["IvectorExtractor", "IvectorAcc", "estimate_extractor", "unpack_symmetric", "pack_symmetric"]

log = logging.getLogger(__name__)

FORMAT = "sidkd-ivector-extractor"
ACC_FORMAT = "sidkd-ivector-extractor-acc"


def triu_pairs(r: int) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays of the packed upper triangle of an R×R matrix (row-major)."""
    return np.triu_indices(r)


_PACK_INDEX: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def pack_index(r: int) -> tuple[np.ndarray, np.ndarray]:
    """(packed -> full, full -> packed) flat index maps of R×R symmetric matrices: full[i·R + j] =
    packed[unpack[i·R + j]]; packed[k] = full[pack[k]]. One np.take each way instead of fancy
    two-axis indexing (a plain gather, ~4x faster)."""
    if r not in _PACK_INDEX:
        rows, cols = triu_pairs(r)
        where = np.empty((r, r), dtype=np.intp)
        where[rows, cols] = np.arange(len(rows))
        where[cols, rows] = np.arange(len(rows))
        _PACK_INDEX[r] = (where.ravel(), rows * r + cols)
    return _PACK_INDEX[r]


def unpack_symmetric(packed: np.ndarray, r: int) -> np.ndarray:
    """(..., R(R+1)/2) packed upper triangles -> (..., R, R) symmetric matrices."""
    return np.take(packed, pack_index(r)[0], axis=-1).reshape(packed.shape[:-1] + (r, r))


def pack_symmetric(full: np.ndarray) -> np.ndarray:
    """(..., R, R) -> (..., R(R+1)/2) upper triangles, row-major."""
    r = full.shape[-1]
    return np.take(full.reshape(full.shape[:-2] + (r * r,)), pack_index(r)[1], axis=-1)


class IvectorExtractor:
    def __init__(self, M: np.ndarray, covars: np.ndarray, prior_offset: float):
        self.M = np.asarray(M, dtype=np.float64)
        self.covars = np.asarray(covars, dtype=np.float64)
        self.prior_offset = float(prior_offset)
        c, d, r = self.M.shape
        if self.covars.shape != (c, d, d):
            raise DataError(f"i-vector extractor: M {self.M.shape} and covars {self.covars.shape} disagree")
        try:
            chol = np.linalg.cholesky(self.covars)
        except np.linalg.LinAlgError as exc:
            raise DataError("i-vector extractor: a covariance is not positive definite") from exc
        self.logdet_covars = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        eye = np.broadcast_to(np.eye(d), self.covars.shape)
        self.inv_covars = np.linalg.solve(self.covars, eye)
        self.inv_covars = 0.5 * (self.inv_covars + np.swapaxes(self.inv_covars, 1, 2))
        self.inv_covars_M = blas.matmul(self.inv_covars, self.M)  # Σ_c⁻¹ M_c (C, D, R)
        self.U = blas.matmul(np.swapaxes(self.M, 1, 2), self.inv_covars_M)  # M_cᵀ Σ_c⁻¹ M_c (C, R, R)
        self.U += np.swapaxes(self.U, 1, 2)
        self.U *= 0.5
        self.U_packed = pack_symmetric(self.U)  # (C, R(R+1)/2)

    @property
    def num_gauss(self) -> int:
        return self.M.shape[0]

    @property
    def feat_dim(self) -> int:
        return self.M.shape[1]

    @property
    def ivector_dim(self) -> int:
        return self.M.shape[2]

    @classmethod
    def init_from_ubm(cls, ubm: FullGmm, ivector_dim: int, prior_offset: float = 100.0, seed: int = 0) -> IvectorExtractor:
        """M_c[:, 0] = μ_c / o (so the prior mean reproduces the UBM means); the other columns
        are L_c G_c with L_c the Cholesky factor of Σ_c and G_c standard normal, i.e. random
        directions with the scale of the UBM's own variability. Σ_c starts as the UBM's."""
        if ivector_dim < 2:
            raise DataError(f"--ivector-dim must be at least 2, got {ivector_dim}")
        rng = np.random.default_rng(seed)
        c, d = ubm.means.shape
        M = np.empty((c, d, ivector_dim))
        M[:, :, 0] = ubm.means / prior_offset
        chol = np.linalg.cholesky(ubm.covars)
        M[:, :, 1:] = chol @ rng.standard_normal((c, d, ivector_dim - 1))
        return cls(M, ubm.covars.copy(), prior_offset)

    # -- posterior ------------------------------------------------------------------------------
    def check_stats(self, gamma: np.ndarray, first: np.ndarray) -> None:
        c, d = self.num_gauss, self.feat_dim
        if gamma.ndim != 2 or gamma.shape[1] != c or first.shape != (gamma.shape[0], c, d):
            raise DataError(f"i-vector stats of shape {gamma.shape}/{first.shape} do not fit an extractor with "
                            f"{c} Gaussians of dim {d}")

    def posterior(self, gamma: np.ndarray, first: np.ndarray, need_cov: bool = True
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None]:
        """For a batch: (means ŵ (B, R), covariances P⁻¹ (B, R, R), linear terms b (B, R), log|P| (B,)).

        With ``need_cov=False`` only the means are computed (a Cholesky solve; cov, logdet None).
        """
        self.check_stats(gamma, first)
        b_count, r = gamma.shape[0], self.ivector_dim
        precision = unpack_symmetric(blas.matmul(gamma, self.U_packed), r)
        precision.reshape(b_count, r * r)[:, :: r + 1] += 1.0
        linear = blas.matmul(first.reshape(b_count, -1), self.inv_covars_M.reshape(-1, r))
        linear[:, 0] += self.prior_offset
        try:
            chol = blas.cholesky(precision)
        except ValueError:
            raise DataError("i-vector posterior precision is not positive definite (NaN/inf in the stats or model?)"
                            ) from None
        if not need_cov:
            return blas.cholesky_solve(chol, linear), None, linear, None
        logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        cov = blas.cholesky_inverse(chol)
        mean = blas.matmul(cov, linear[:, :, None])[:, :, 0]
        return mean, cov, linear, logdet

    def extract(self, gamma: np.ndarray, first: np.ndarray) -> np.ndarray:
        """i-vectors (B, R): posterior means with the prior offset subtracted from dim 0 (Kaldi)."""
        mean = self.posterior(np.asarray(gamma, dtype=np.float64), np.asarray(first, dtype=np.float64),
                              need_cov=False)[0].copy()
        mean[:, 0] -= self.prior_offset
        return mean

    def accumulate(self, gamma: np.ndarray, first: np.ndarray, acc: IvectorAcc) -> None:
        """E-step for a batch of utterances, added into ``acc``."""
        gamma = np.ascontiguousarray(gamma, dtype=np.float64)
        first = np.ascontiguousarray(first, dtype=np.float64)
        mean, cov, linear, logdet = self.posterior(gamma, first)
        b_count, r = mean.shape
        acc.sum_wwt += cov.sum(axis=0)
        cov += mean[:, :, None] * mean[:, None, :]  # E[w wᵀ] per utterance, in place
        acc.gamma += gamma.sum(axis=0)
        blas.matmul_acc(acc.Y.reshape(-1, r), first.reshape(b_count, -1).T, mean)
        blas.matmul_acc(acc.A_packed, gamma.T, pack_symmetric(cov))
        acc.sum_w += mean.sum(axis=0)
        acc.sum_wwt += mean.T @ mean
        acc.num_utts += b_count
        acc.utt_objective += float(0.5 * np.einsum("bi,bi->", linear, mean) - 0.5 * logdet.sum()
                                   - 0.5 * b_count * self.prior_offset**2)

    def log_likelihood(self, acc: IvectorAcc) -> float | None:
        """The objective above for the model these accumulators were gathered with (None without S_c)."""
        if acc.second is None:
            return None
        d = self.feat_dim
        trace = np.einsum("cij,cji->c", self.inv_covars, acc.second)
        per_gauss = acc.gamma * (-0.5 * d * LOG_2PI - 0.5 * self.logdet_covars) - 0.5 * trace
        return acc.utt_objective + float(per_gauss.sum())

    def save(self, path: str) -> None:
        save_npz(path, FORMAT, 1, {"M": self.M, "covars": self.covars, "prior_offset": np.float64(self.prior_offset)},
                 num_gauss=self.num_gauss, feat_dim=self.feat_dim, ivector_dim=self.ivector_dim)

    @classmethod
    def load(cls, path: str) -> IvectorExtractor:
        _, a = load_npz(path, FORMAT)
        return cls(a["M"], a["covars"], float(a["prior_offset"]))


@dataclass
class IvectorAcc:
    """E-step sums over utterances: γ_c, Y_c = Σ f_c ŵᵀ, A_c = Σ γ_c E[wwᵀ] (packed upper
    triangles, (C, R(R+1)/2)), Σŵ, ΣE[wwᵀ], count, the per-utterance part of the objective, and
    (optional, constant across iterations) the corpus second-order stats S_c = Σ_t γ_tc x_t x_tᵀ
    needed for the variance update and the objective."""

    gamma: np.ndarray
    Y: np.ndarray
    A_packed: np.ndarray
    sum_w: np.ndarray
    sum_wwt: np.ndarray
    num_utts: int = 0
    utt_objective: float = 0.0
    second: np.ndarray | None = field(default=None)

    @classmethod
    def zeros(cls, num_gauss: int, feat_dim: int, ivector_dim: int) -> IvectorAcc:
        r = ivector_dim
        return cls(np.zeros(num_gauss), np.zeros((num_gauss, feat_dim, r)), np.zeros((num_gauss, r * (r + 1) // 2)),
                   np.zeros(r), np.zeros((r, r)))

    @property
    def ivector_dim(self) -> int:
        return self.Y.shape[2]

    def A(self) -> np.ndarray:
        """A_c as full (C, R, R) matrices."""
        return unpack_symmetric(self.A_packed, self.ivector_dim)

    def __iadd__(self, other: IvectorAcc) -> IvectorAcc:
        if other.A_packed.shape != self.A_packed.shape or other.Y.shape != self.Y.shape:
            raise DataError(f"i-vector accumulators of different shapes: {other.Y.shape} vs {self.Y.shape}")
        self.gamma += other.gamma
        self.Y += other.Y
        self.A_packed += other.A_packed
        self.sum_w += other.sum_w
        self.sum_wwt += other.sum_wwt
        self.num_utts += other.num_utts
        self.utt_objective += other.utt_objective
        if (self.second is None) != (other.second is None):
            raise DataError("i-vector accumulators: some have second-order stats and some do not")
        if self.second is not None:
            self.second = self.second + other.second
        return self

    def save(self, path: str) -> None:
        arrays = {"gamma": self.gamma, "Y": self.Y, "A_packed": self.A_packed, "sum_w": self.sum_w,
                  "sum_wwt": self.sum_wwt, "num_utts": np.int64(self.num_utts),
                  "utt_objective": np.float64(self.utt_objective)}
        if self.second is not None:
            arrays["second"] = self.second
        save_npz(path, ACC_FORMAT, 1, arrays)

    @classmethod
    def load(cls, path: str) -> IvectorAcc:
        _, a = load_npz(path, ACC_FORMAT)
        return cls(a["gamma"], a["Y"], a["A_packed"], a["sum_w"], a["sum_wwt"], int(a["num_utts"]),
                   float(a["utt_objective"]), a.get("second"))


def _aux(M: np.ndarray, inv_covars: np.ndarray, Y: np.ndarray, A: np.ndarray) -> float:
    """Σ_c tr(Σ_c⁻¹ (M_c Y_cᵀ − ½ M_c A_c M_cᵀ))."""
    # tr(Σ⁻¹ M Yᵀ) − ½ tr(Σ⁻¹ M A Mᵀ) = Σ_ij [(Σ⁻¹ M) ∘ (Y − ½ M A)]_ij: two batched GEMMs
    inner = Y - 0.5 * blas.matmul(M, A)
    return float(np.einsum("cij,cij->", blas.matmul(inv_covars, M), inner))


def estimate_extractor(model: IvectorExtractor, acc: IvectorAcc, *, update_variances: bool = True,
                       variance_floor_factor: float = 0.1, gaussian_min_count: float = 100.0,
                       update_prior: bool = True, eigen_floor: float = 1e-8) -> tuple[IvectorExtractor, dict]:
    """M-step. Returns (new model, info) with info = {objective, aux_gain, prior_offset, ...}.

    - M_c = Y_c A_c⁻¹ (a batched SPD solve; Gaussians with no count keep their M_c).
    - Variances (if ``update_variances`` and S_c was accumulated): Σ_c = (S_c − M_c Y_cᵀ)/γ_c,
      symmetrised, floored (in the matrix sense) at ``variance_floor_factor`` × the count-weighted
      average Σ; Gaussians with γ_c < ``gaussian_min_count`` keep theirs (Kaldi's defaults 0.1, 100).
    - Prior (minimum divergence): m̄ = Σŵ/N, K = ΣE[wwᵀ]/N − m̄m̄ᵀ; T = K^(−½) (eigenvalues floored
      at ``eigen_floor`` × the largest), Householder H with H T m̄ = ‖T m̄‖ e₀; M_c ← M_c (H T)⁻¹,
      o ← ‖T m̄‖. The likelihood is unchanged by this re-parametrisation; the prior is standard again.
    """
    if acc.num_utts <= 0:
        raise DataError("i-vector extractor estimation: no utterances accumulated")
    info: dict = {"num_utts": acc.num_utts, "frames": float(acc.gamma.sum())}
    info["objective"] = model.log_likelihood(acc)
    c, d, r = model.M.shape
    ok = acc.gamma > 0
    A = acc.A()
    M = model.M.copy()
    # A_c is SPD (a count-weighted sum of E[wwᵀ] ⪰ posterior covariances), so solve directly.
    M[ok] = np.swapaxes(blas.spd_solve(A[ok], np.swapaxes(acc.Y[ok], 1, 2)), 1, 2)
    info["aux_gain"] = _aux(M, model.inv_covars, acc.Y, A) - _aux(model.M, model.inv_covars, acc.Y, A)
    covars = model.covars
    if update_variances and acc.second is not None:
        covars = covars.copy()
        update = acc.gamma >= gaussian_min_count
        new = (acc.second - blas.matmul(M, np.swapaxes(acc.Y, 1, 2))) / np.maximum(acc.gamma, 1e-300)[:, None, None]
        new = 0.5 * (new + np.swapaxes(new, 1, 2))
        if np.any(update):
            average = np.einsum("c,cij->ij", acc.gamma[update], new[update]) / acc.gamma[update].sum()
            covars[update] = floor_covariance(new[update], variance_floor_factor * average)
        info["variances_updated"] = int(update.sum())
    offset = model.prior_offset
    if update_prior:
        mean = acc.sum_w / acc.num_utts
        K = acc.sum_wwt / acc.num_utts - np.outer(mean, mean)
        vals, vecs = np.linalg.eigh(0.5 * (K + K.T))
        vals = np.maximum(vals, eigen_floor * vals.max())
        whiten = (vecs / np.sqrt(vals)) @ vecs.T  # K^(-1/2)
        unwhiten = (vecs * np.sqrt(vals)) @ vecs.T  # K^(1/2)
        moved = whiten @ mean
        offset = float(np.linalg.norm(moved))
        house = np.eye(r)
        v = moved.copy()
        v[0] -= offset
        if np.linalg.norm(v) > 1e-12 * max(offset, 1.0):
            house -= 2.0 * np.outer(v, v) / (v @ v)
        # w' = H T w, so M w = M (H T)⁻¹ w' = M T⁻¹ H w' (H is its own inverse).
        M = M @ (unwhiten @ house)
    info["prior_offset"] = offset
    return IvectorExtractor(M, covars, offset), info
