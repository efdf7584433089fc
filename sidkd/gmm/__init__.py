"""Gaussian mixture models for the UBMs: diagonal (init, EM, Gaussian selection) and full
covariance (initialised from the diagonal one, EM on Gaussian-selected components)."""

from sidkd.gmm.chunks import iter_chunks
from sidkd.gmm.diag import DiagGmm, DiagGmmStats, ReservoirSampler, estimate_diag, init_diag_gmm, top_n
from sidkd.gmm.full import FullGmm, FullGmmStats, estimate_full, floor_covariance, prune_posteriors

__all__ = [
    "DiagGmm", "DiagGmmStats", "ReservoirSampler", "estimate_diag", "init_diag_gmm", "top_n",
    "FullGmm", "FullGmmStats", "estimate_full", "floor_covariance", "prune_posteriors", "iter_chunks",
]
