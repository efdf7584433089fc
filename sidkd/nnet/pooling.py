"""Temporal pooling of frame-level features (B, C, T) into one vector (B, 2C) per segment.

StatsPool: mean and standard deviation over time. AttentiveStatsPool (Okabe et al., 2018,
"Attentive statistics pooling for deep speaker embedding"): e_t = vᵀ f(W h_t + b) + k per frame and
channel, α = softmax over time, μ = Σ α_t h_t, σ = sqrt(Σ α_t h_t² − μ²) (docs/math.md §4). The attention
is channel-wise (one score per frame and channel), the variant ECAPA and wespeaker use; a scalar
score per frame is ``channel_wise=False`` (Okabe's original).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["StatsPool", "AttentiveStatsPool", "VARIANCE_FLOOR"]

# σ is sqrt(max(var, floor)): keeps the gradient of sqrt finite on constant channels.
VARIANCE_FLOOR = 1e-5


def _weighted_stats(h: torch.Tensor, weights: torch.Tensor, floor: float = VARIANCE_FLOOR) -> torch.Tensor:
    # the floor is an argument, not a global, so that TorchScript (sidkd.nnet.export) compiles this
    mean = torch.sum(h * weights, dim=-1)
    second = torch.sum(h * h * weights, dim=-1)
    std = torch.sqrt(torch.clamp(second - mean * mean, min=floor))
    return torch.cat([mean, std], dim=-1)


class StatsPool(nn.Module):
    """[mean; std] over the last (time) axis: (B, C, T) -> (B, 2C)."""

    def __init__(self, in_dim: int):
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = 2 * in_dim

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        weights = torch.full_like(h[:, :1, :], 1.0 / h.shape[-1])
        return _weighted_stats(h, weights)


class AttentiveStatsPool(nn.Module):
    """Attention-weighted [mean; std] over time: (B, C, T) -> (B, 2C)."""

    def __init__(self, in_dim: int, attention_dim: int = 128, channel_wise: bool = True):
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = 2 * in_dim
        # W h_t + b, then f = tanh, then vᵀ(.) + k: 1x1 convolutions act on each frame alone.
        self.hidden = nn.Conv1d(in_dim, attention_dim, kernel_size=1)
        self.score = nn.Conv1d(attention_dim, in_dim if channel_wise else 1, kernel_size=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        e = self.score(torch.tanh(self.hidden(h)))
        alpha = torch.softmax(e, dim=-1)
        return _weighted_stats(h, alpha)


def build_pooling(kind: str, in_dim: int, **kwargs) -> nn.Module:
    if kind == "stats":
        return StatsPool(in_dim)
    if kind == "attentive":
        return AttentiveStatsPool(in_dim, **kwargs)
    raise ValueError(f"unknown pooling {kind!r} (expected 'stats' or 'attentive')")
