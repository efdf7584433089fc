"""Distillation to the i-vector teacher (docs/math.md §4): L_kd = ‖P z_s − t‖² / R.

z_s is the student embedding, P a learned linear map (with bias) to the teacher's dimension R, t the
teacher i-vector of the same utterance after a fixed normalisation whose statistics come from the
training teacher vectors and are stored with the model (buffers, so they travel in state_dict):

- ``mean``:    t − μ
- ``length``:  (t − μ) scaled to norm √R (length normalisation; √R keeps ‖t‖²/R = 1 like whitening)
- ``whiten``:  W (t − μ) with W = Λ^{-1/2} Uᵀ from the eigendecomposition of the training covariance,
  so the targets have identity covariance and every direction of the teacher counts equally.
- ``none``:    t as given.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["TeacherNormalizer", "TeacherDistillation", "NORMALISATIONS", "joint_loss"]

NORMALISATIONS = ("none", "mean", "length", "whiten")
# Eigenvalues below this fraction of the largest are floored before Λ^{-1/2}.
EIGEN_FLOOR = 1e-6


class TeacherNormalizer(nn.Module):
    def __init__(self, dim: int, kind: str = "length"):
        super().__init__()
        if kind not in NORMALISATIONS:
            raise ValueError(f"unknown teacher normalisation {kind!r}; expected one of {NORMALISATIONS}")
        self.kind = kind
        self.dim = dim
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("transform", torch.eye(dim))

    @torch.no_grad()
    def fit(self, vectors: np.ndarray) -> None:
        """Statistics from the training teacher vectors (N, R)."""
        x = np.asarray(vectors, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected teacher vectors of shape (N, {self.dim}), got {x.shape}")
        mean = x.mean(axis=0) if self.kind != "none" else np.zeros(self.dim)
        transform = np.eye(self.dim)
        if self.kind == "whiten":
            centred = x - mean
            cov = centred.T @ centred / max(1, len(x) - 1)
            eigval, eigvec = np.linalg.eigh(cov)
            eigval = np.maximum(eigval, EIGEN_FLOOR * max(eigval.max(), 1e-30))
            transform = (eigvec / np.sqrt(eigval)).T
        self.mean.copy_(torch.from_numpy(mean))
        self.transform.copy_(torch.from_numpy(transform))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        if self.kind == "none":
            return t
        out = t - self.mean
        if self.kind == "whiten":
            out = out @ self.transform.T
        elif self.kind == "length":
            out = out * (self.dim**0.5 / torch.clamp(out.norm(dim=1, keepdim=True), min=1e-10))
        return out


class TeacherDistillation(nn.Module):
    """Projection P and normaliser; ``forward(z, t_raw)`` gives the batch mean of ‖P z − t‖²/R.

    ``skip_absent``: a teacher row of NaN is an absent target (sidkd.nnet.teacher_targets): the mean
    runs over the other rows only (0 when none has one). The absent rows stay in the computation with
    weight 0 rather than being indexed out, so the projection is in the graph of every batch (DDP) and
    no step waits for the mask on the host."""

    def __init__(self, embedding_dim: int, teacher_dim: int, normalisation: str = "length",
                 skip_absent: bool = False):
        super().__init__()
        self.projection = nn.Linear(embedding_dim, teacher_dim)
        self.normalizer = TeacherNormalizer(teacher_dim, normalisation)
        self.skip_absent = skip_absent

    def forward(self, z: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if not self.skip_absent:
            target = self.normalizer(teacher)
            diff = self.projection(z) - target
            return torch.sum(diff * diff, dim=1).mean() / target.shape[1]
        present = torch.isfinite(teacher).all(dim=1)
        target = self.normalizer(torch.where(present[:, None], teacher, torch.zeros_like(teacher)))
        diff = self.projection(z) - target
        per_row = torch.sum(diff * diff, dim=1) * present
        count = present.sum().clamp(min=1).to(torch.promote_types(per_row.dtype, torch.float32))
        # mean over all rows times N / present rows: exactly the plain mean when every row has a target
        return per_row.mean() * (len(present) / count) / target.shape[1]


def joint_loss(aam_loss: torch.Tensor, kd_loss: torch.Tensor, kd_weight: float) -> torch.Tensor:
    """L = L_AAM + λ·L_kd."""
    return aam_loss + kd_weight * kd_loss if kd_weight else aam_loss
