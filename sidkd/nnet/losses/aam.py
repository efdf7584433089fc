"""Additive angular margin softmax (ArcFace) with K sub-centres per class (docs/math.md §4).

For unit embedding z and unit weights w_{j,k}: cos θ_j = max_k w_{j,k}ᵀ z (K = 1: plain AAM).
Logits: s·cos(θ_y + m) for the true class y, s·cos θ_j for the others; loss = cross-entropy.
Where θ_y + m would pass π, cos(θ + m) stops decreasing in θ; there the target logit is
s·(cos θ_y − m·sin m) instead, which stays monotone (the usual ArcFace fallback).

With margin 0 this is the cosine-softmax over best sub-centres, i.e. the multi-subspace
cross-entropy of the transfer stage.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AAMSoftmax", "margin_at"]


def margin_at(step: int, final_margin: float, warmup_start: int, warmup_end: int) -> float:
    """Margin schedule: 0 before ``warmup_start`` steps, linear up to ``final_margin`` at
    ``warmup_end``, constant afterwards (margins from the start stall early AAM training)."""
    if step >= warmup_end:
        return final_margin
    if step < warmup_start:
        return 0.0
    return final_margin * (step - warmup_start) / max(1, warmup_end - warmup_start)


class AAMSoftmax(nn.Module):
    def __init__(self, embedding_dim: int, num_classes: int, margin: float = 0.2, scale: float = 32.0,
                 sub_centers: int = 1):
        super().__init__()
        if sub_centers < 1:
            raise ValueError(f"sub_centers must be >= 1, got {sub_centers}")
        self.num_classes = num_classes
        self.sub_centers = sub_centers
        self.scale = scale
        self.margin = margin
        # Row j*K + k is sub-centre k of class j.
        self.weight = nn.Parameter(torch.empty(num_classes * sub_centers, embedding_dim))
        nn.init.xavier_normal_(self.weight)

    def set_margin(self, margin: float) -> None:
        self.margin = float(margin)

    def cosine(self, z: torch.Tensor) -> torch.Tensor:
        """cos θ_j = max_k cos(w_{j,k}, z): (B, E) -> (B, C)."""
        cos = F.linear(F.normalize(z, dim=1), F.normalize(self.weight, dim=1))
        if self.sub_centers > 1:
            cos = cos.view(-1, self.num_classes, self.sub_centers).amax(dim=2)
        return cos

    def logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Scaled logits; with labels, the true class carries the angular margin."""
        cos = self.cosine(z)
        if labels is None or self.margin == 0.0:
            return self.scale * cos
        m = self.margin
        cos_y = cos.gather(1, labels[:, None])
        sin_y = torch.sqrt(torch.clamp(1.0 - cos_y * cos_y, min=0.0))
        shifted = cos_y * math.cos(m) - sin_y * math.sin(m)
        # θ_y + m > π  <=>  cos θ_y < cos(π − m)
        fallback = cos_y - m * math.sin(m)
        target = torch.where(cos_y > math.cos(math.pi - m), shifted, fallback)
        cos = cos.scatter(1, labels[:, None], target)
        return self.scale * cos

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean cross-entropy, margin logits) — the logits serve for accuracy."""
        logits = self.logits(z, labels)
        return F.cross_entropy(logits, labels), logits
