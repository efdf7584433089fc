"""Long/short relative entropy (docs/math.md §4): L = T²·KL(p_long ‖ p_short), p = softmax(logits/T).

The long view is the target: its logits are detached, so only the short branch learns. T² keeps the
gradient scale independent of the temperature (Hinton et al., 2015).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["long_short_kl"]


def long_short_kl(logits_long: torch.Tensor, logits_short: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Batch mean of T²·Σ_j p_long,j (log p_long,j − log p_short,j)."""
    log_p_long = F.log_softmax(logits_long.detach() / temperature, dim=1)
    log_p_short = F.log_softmax(logits_short / temperature, dim=1)
    kl = torch.sum(log_p_long.exp() * (log_p_long - log_p_short), dim=1)
    return temperature**2 * kl.mean()
