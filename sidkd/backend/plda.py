"""Two-covariance PLDA (docs/math.md §3), trained by EM and scored as Kaldi's Plda.

Model: x = m + y + ε, y ~ N(0, B) (speaker), ε ~ N(0, W) (within speaker).
Training follows Kaldi's PldaEstimator: m is the mean of the speaker means, B = W = I at the start,
and each EM iteration, for a speaker with n vectors of mean x̄:
    C = (B⁻¹ + n W⁻¹)⁻¹,  ŷ = C n W⁻¹ (x̄ − m)
    B ← mean over speakers of (ŷ ŷᵀ + C)
    W ← (1/N) Σ_speakers Σ_i [(x_i − m − ŷ)(x_i − m − ŷ)ᵀ + C]
The stored model is m, A (A W Aᵀ = I, A B Aᵀ = diag(ψ), ψ descending) and B, W themselves.

Scoring works on u = A(x − m). An enrolment of n vectors is represented by the mean ū of their u's;
``normalize_length`` (Kaldi's ``--normalize-length``, Plda::TransformIvector) scales ū so that
Σ_i ū_i² / (ψ_i + 1/n) = dim, i.e. its squared norm is what the model expects for an average of n
vectors (covariance Ψ + I/n); a test vector is scaled with n = 1. The LLR (Plda::LogLikelihoodRatio):
    Σ_i log N(v_i; nψ_i ū_i / (nψ_i + 1), 1 + ψ_i / (nψ_i + 1)) − log N(v_i; 0, 1 + ψ_i).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sidkd.backend.lda import class_statistics
from sidkd.backend.model_io import load_model, save_model
from sidkd.backend.vectors import check_dims
from sidkd.errors import DataError

__all__ = ["Plda", "train_plda", "plda_log_likelihood"]

logger = logging.getLogger(__name__)
VERSION = 1


@dataclass
class Plda:
    mean: np.ndarray  # m
    transform: np.ndarray  # A
    psi: np.ndarray  # ψ, descending
    between_covar: np.ndarray  # B
    within_covar: np.ndarray  # W

    @property
    def dim(self) -> int:
        return self.mean.size

    def save(self, path: str) -> None:
        save_model(path, "plda", VERSION, mean=self.mean, transform=self.transform, psi=self.psi,
                   between_covar=self.between_covar, within_covar=self.within_covar)

    @classmethod
    def load(cls, path: str) -> Plda:
        a = load_model(path, "plda", VERSION)
        return cls(a["mean"], a["transform"], a["psi"], a["between_covar"], a["within_covar"])

    @classmethod
    def from_covariances(cls, mean: np.ndarray, between: np.ndarray, within: np.ndarray) -> Plda:
        """A whitening W by Cholesky, then rotating so B becomes diagonal (as Kaldi's GetOutput)."""
        chol_inv = np.linalg.inv(np.linalg.cholesky(within))
        projected = chol_inv @ between @ chol_inv.T
        values, vectors = np.linalg.eigh((projected + projected.T) / 2)
        order = np.argsort(values)[::-1]
        transform = vectors[:, order].T @ chol_inv
        return cls(mean, transform, values[order], between, within)

    def transform_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """u = A (x − m), one row per vector."""
        check_dims(self.dim, vectors.shape[1], "PLDA")
        return (vectors - self.mean) @ self.transform.T

    def normalize_length(self, transformed: np.ndarray, num_utts) -> np.ndarray:
        """Kaldi's normalize-length: scale so Σ u_i² / (ψ_i + 1/n) equals the dimension."""
        n = np.broadcast_to(np.asarray(num_utts, dtype=np.float64), (transformed.shape[0],))
        inv_covar = 1.0 / (self.psi[None, :] + 1.0 / n[:, None])
        dot = np.sum(transformed**2 * inv_covar, axis=1)
        factor = np.sqrt(self.dim / np.where(dot > 0, dot, 1.0))
        return transformed * factor[:, None]

    def llr_matrix(self, enrol: np.ndarray, num_utts, test: np.ndarray) -> np.ndarray:
        """LLR of every (enrolment row, test row): a few matrix products per distinct n."""
        n_all = np.broadcast_to(np.asarray(num_utts, dtype=np.float64), (enrol.shape[0],))
        psi = self.psi
        var_diff = 1.0 + psi
        test_sq = test**2
        out = np.empty((enrol.shape[0], test.shape[0]))
        for n in np.unique(n_all):
            rows = np.flatnonzero(n_all == n)
            gain = n * psi / (n * psi + 1.0)
            var_same = 1.0 + psi / (n * psi + 1.0)
            u = enrol[rows]
            constant = 0.5 * (np.sum(np.log(var_diff)) - np.sum(np.log(var_same)))
            enrol_term = constant - 0.5 * ((u * gain) ** 2 / var_same).sum(axis=1)
            test_term = -0.5 * test_sq @ (1.0 / var_same - 1.0 / var_diff)
            out[rows] = (u * (gain / var_same)) @ test.T + enrol_term[:, None] + test_term[None, :]
        return out


def plda_log_likelihood(counts, class_means, offset_scatter, mean, between, within) -> float:
    """Exact log p(data) under the model: per speaker x̄ ~ N(m, B + W/n), deviations from x̄ by W."""
    dim = mean.size
    total = 0.0
    for n in np.unique(counts):
        diffs = class_means[counts == n] - mean
        covar = between + within / n
        _, logdet = np.linalg.slogdet(covar)
        solved = np.linalg.solve(covar, diffs.T)
        total += -0.5 * (diffs.shape[0] * (logdet + dim * np.log(2 * np.pi)) + np.sum(diffs.T * solved))
        total += -0.5 * dim * np.log(n) * diffs.shape[0]
    num = counts.sum()
    _, logdet_w = np.linalg.slogdet(within)
    total += -0.5 * (num - counts.size) * (logdet_w + dim * np.log(2 * np.pi))
    total += -0.5 * np.trace(np.linalg.solve(within, offset_scatter))
    return float(total)


def train_plda(vectors: np.ndarray, labels, num_iters: int = 10, history: list | None = None) -> Plda:
    """EM on vectors with speaker labels; every speaker needs >= 2 vectors (caller filters).

    ``history``, if given, receives the log-likelihood per vector before each iteration and at the end.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    num, dim = vectors.shape
    inverse, counts, class_means = class_statistics(vectors, labels)
    if counts.min() < 2:
        raise DataError(f"PLDA training: {int(np.sum(counts < 2))} speakers have fewer than 2 vectors")
    num_spk = counts.size
    mean = class_means.mean(axis=0)
    deviations = vectors - class_means[inverse]
    offset_scatter = deviations.T @ deviations
    between, within = np.eye(dim), np.eye(dim)
    centred_means = class_means - mean
    distinct = np.unique(counts)
    for iteration in range(num_iters + 1):
        if history is not None or iteration in (0, num_iters):
            loglike = plda_log_likelihood(counts, class_means, offset_scatter, mean, between, within) / num
            if history is not None:
                history.append(loglike)
            logger.info("PLDA iteration %d: log-likelihood per vector %.4f", iteration, loglike)
        if iteration == num_iters:
            break
        between_inv, within_inv = np.linalg.inv(between), np.linalg.inv(within)
        between_stats = np.zeros((dim, dim))
        within_stats = offset_scatter.copy()
        for n in distinct:
            rows = counts == n
            posterior_covar = np.linalg.inv(between_inv + n * within_inv)
            posterior_covar = (posterior_covar + posterior_covar.T) / 2
            y_hat = centred_means[rows] @ (n * within_inv) @ posterior_covar  # rows of ŷ_sᵀ
            residual = centred_means[rows] - y_hat
            num_rows = int(rows.sum())
            between_stats += num_rows * posterior_covar + y_hat.T @ y_hat
            within_stats += n * (num_rows * posterior_covar + residual.T @ residual)
        between = between_stats / num_spk
        within = within_stats / num
    return Plda.from_covariances(mean, (between + between.T) / 2, (within + within.T) / 2)
