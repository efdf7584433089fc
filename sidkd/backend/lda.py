"""LDA as Kaldi's ivector-compute-lda.

Statistics over vectors x (centred on their own mean, as the program does): total covariance
Σ_t = (1/N) Σ_i x_i x_iᵀ and within-class covariance Σ_w = Σ_t − (1/N) Σ_s n_s x̄_s x̄_sᵀ.
The matrix to normalise is M = f·Σ_t + (1 − f)·Σ_w (f = total-covariance factor). T whitens M
(eigenvalues floored at covariance_floor × the largest), the eigenvectors U of T Σ_t Tᵀ sorted by
eigenvalue descending give the output rows L = U[:, :dim]ᵀ T.

Normalisation of the output: L M Lᵀ = I and L Σ_t Lᵀ is diagonal (descending). With f = 0 the
within-class covariance of the output is the identity, and its rows are the generalised eigenvectors
of Σ_b v = λ Σ_w v (Σ_b = Σ_t − Σ_w) with vᵀ Σ_w v = 1, the top ``dim`` of them.

The stored transform is affine, y = L x + offset with offset = −L·mean(training x), so it centres
its input on the training mean as Kaldi's transform.mat (dim × (in_dim+1)) does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sidkd.backend.model_io import load_model, save_model
from sidkd.backend.vectors import check_dims
from sidkd.errors import DataError

__all__ = ["Lda", "compute_lda", "class_statistics"]

logger = logging.getLogger(__name__)
VERSION = 1


@dataclass
class Lda:
    matrix: np.ndarray  # (out_dim, in_dim)
    offset: np.ndarray  # (out_dim,)
    eigenvalues: np.ndarray  # of T Σ_t Tᵀ, all of them, descending (diagnostics)

    @property
    def in_dim(self) -> int:
        return self.matrix.shape[1]

    @property
    def out_dim(self) -> int:
        return self.matrix.shape[0]

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        check_dims(self.in_dim, vectors.shape[1], "LDA")
        return vectors @ self.matrix.T + self.offset

    def save(self, path: str) -> None:
        save_model(path, "lda", VERSION, matrix=self.matrix, offset=self.offset, eigenvalues=self.eigenvalues)

    @classmethod
    def load(cls, path: str) -> Lda:
        arrays = load_model(path, "lda", VERSION)
        return cls(arrays["matrix"], arrays["offset"], arrays["eigenvalues"])


def class_statistics(vectors: np.ndarray, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class index per row, count per class, mean per class) with classes in first-seen order."""
    _, first, inverse, counts = np.unique(np.asarray(labels), return_index=True, return_inverse=True, return_counts=True)
    order = np.argsort(first)  # renumber classes by first appearance, for stable output
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    inverse = rank[inverse.ravel()]
    counts = counts[order]
    sums = np.zeros((counts.size, vectors.shape[1]))
    np.add.at(sums, inverse, vectors)
    return inverse, counts, sums / counts[:, None]


def _normalizing_transform(covariance: np.ndarray, floor: float) -> np.ndarray:
    values, vectors = np.linalg.eigh(covariance)
    values, vectors = values[::-1], vectors[:, ::-1]
    floor_value = floor * values[0]
    num_floored = int(np.count_nonzero(values < floor_value))
    if num_floored:
        logger.warning("floored %d eigenvalues of the covariance to normalise", num_floored)
    values = np.maximum(values, floor_value)
    return (vectors / np.sqrt(values)).T


def compute_lda(vectors: np.ndarray, labels, dim: int, total_covariance_factor: float = 0.0, covariance_floor: float = 1e-6) -> Lda:
    vectors = np.asarray(vectors, dtype=np.float64)
    num, in_dim = vectors.shape
    if not 0 < dim <= in_dim:
        raise DataError(f"LDA dimension {dim} must be in 1..{in_dim} (the input dimension)")
    if not 0.0 <= total_covariance_factor <= 1.0:
        raise DataError(f"total-covariance-factor must be in [0, 1], got {total_covariance_factor}")
    mean = vectors.mean(axis=0)
    centred = vectors - mean
    _, counts, class_means = class_statistics(centred, labels)
    if num - counts.size <= 0:
        raise DataError(f"LDA needs more utterances than speakers ({num} utterances, {counts.size} speakers)")
    if dim >= counts.size:
        logger.warning("LDA dimension %d >= number of speakers %d: some output dims carry no speaker information", dim, counts.size)
    total = centred.T @ centred / num
    between = (class_means * counts[:, None]).T @ class_means / num
    within = total - between
    to_normalize = total_covariance_factor * total + (1.0 - total_covariance_factor) * within
    transform = _normalizing_transform(to_normalize, covariance_floor)
    projected_total = transform @ total @ transform.T
    values, vectors_u = np.linalg.eigh((projected_total + projected_total.T) / 2)
    values, vectors_u = values[::-1], vectors_u[:, ::-1]
    matrix = vectors_u[:, :dim].T @ transform
    logger.info("LDA %d -> %d on %d vectors of %d speakers; top eigenvalues %s",
                in_dim, dim, num, counts.size, np.array2string(values[:5], precision=3))
    return Lda(matrix, -matrix @ mean, values)
