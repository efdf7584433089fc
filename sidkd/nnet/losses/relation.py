"""Relation distillation: the student's batch similarities matched to the teacher's (the ``relation``
teacher target, sidkd.nnet.teacher_targets)."""

from __future__ import annotations

import torch
from torch import nn

from sidkd.errors import DataError

__all__ = ["RELATION_LOSSES", "RelationDistillation"]

RELATION_LOSSES = ("mse", "kl")


class RelationDistillation(nn.Module):
    """L_rel between the batch's cosine-similarity matrices, S_s = n(z) n(z)ᵀ of the student and
    S_t = n(t) n(t)ᵀ of the teacher vectors t (LDA space), over the pairs i ≠ j:
    mse: mean (S_s − S_t)²; kl: mean over rows i of KL(softmax(S_t,i·/τ) ‖ softmax(S_s,i·/τ)).
    No parameters: nothing maps the student into the teacher's space."""

    def __init__(self, loss: str = "mse", temperature: float = 0.1):
        super().__init__()
        if loss not in RELATION_LOSSES:
            raise DataError(f"unknown loss.kd.relation.loss {loss!r}; expected one of {RELATION_LOSSES}")
        if temperature <= 0:
            raise DataError(f"loss.kd.relation.temperature must be > 0, got {temperature}")
        self.loss, self.temperature = loss, float(temperature)

    def forward(self, z: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        n = z.shape[0]
        if n < 2:
            return z.new_zeros(())
        zs = nn.functional.normalize(z, dim=1)
        zt = nn.functional.normalize(teacher.to(z.dtype), dim=1)
        s_student, s_teacher = zs @ zs.T, zt @ zt.T
        off = ~torch.eye(n, dtype=torch.bool, device=z.device)
        if self.loss == "mse":
            return ((s_student - s_teacher)[off] ** 2).mean()
        # rows without the diagonal (a vector's similarity to itself is 1 on both sides)
        log_p_student = torch.log_softmax(s_student[off].view(n, n - 1) / self.temperature, dim=1)
        log_p_teacher = torch.log_softmax(s_teacher[off].view(n, n - 1) / self.temperature, dim=1)
        return (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(1).mean()
