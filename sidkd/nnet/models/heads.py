"""The trained networks: an embedder with the heads its losses need, in one module, so that DDP
sees one module and a checkpoint holds one state_dict (keys ``embedder.``, ``aam.``/``head.``, ``kd.``).
Only ``embedder.`` is kept for embedding (sidkd.nnet.embed.load_embedder)."""

from __future__ import annotations

import torch
from torch import nn

from sidkd.nnet.losses import AAMSoftmax, TeacherDistillation, long_short_kl

__all__ = ["StudentWithHeads", "TransferNet"]


class StudentWithHeads(nn.Module):
    """Embedder + AAM-softmax head (+ distillation head)."""

    def __init__(self, embedder: nn.Module, aam: AAMSoftmax, kd: nn.Module | None = None):
        super().__init__()
        self.embedder, self.aam, self.kd = embedder, aam, kd

    def forward(self, feats, labels, teacher=None):
        """(AAM loss, KD loss or 0, margin logits)."""
        z = self.embedder(feats)
        aam_loss, logits = self.aam(z, labels)
        kd_loss = self.kd(z, teacher) if self.kd is not None and teacher is not None else aam_loss.new_zeros(())
        return aam_loss, kd_loss, logits


class TransferNet(nn.Module):
    """Embedder + new head (+ distillation head, + fixed source head for the ``source`` long view)."""

    def __init__(self, embedder: nn.Module, head: AAMSoftmax, kd: TeacherDistillation | None = None,
                 source_head: AAMSoftmax | None = None):
        super().__init__()
        self.embedder, self.head, self.kd, self.source_head = embedder, head, kd, source_head
        if source_head is not None:
            source_head.weight.requires_grad_(False)

    def forward(self, short, labels, long=None, kl_short=None, temperature: float = 1.0, teacher=None,
                teacher_mask=None, kl_index=None):
        """(L_msce, L_kl or 0, L_mse or 0, margin logits). ``long``: the long views; their short
        counterparts are ``kl_short`` when given (the ``source`` view), else the items ``kl_index``
        of ``short`` (all of them when None)."""
        z = self.embedder(short)
        ce, logits = self.head(z, labels)
        zero = ce.new_zeros(())
        kl = zero
        if long is not None:
            kl_head = self.source_head if self.source_head is not None else self.head
            if kl_short is not None:
                z_short = self.embedder(kl_short)
            else:
                z_short = z if kl_index is None else z[kl_index]
            with torch.no_grad():
                logits_long = kl_head.logits(self.embedder(long))
            kl = long_short_kl(logits_long, kl_head.logits(z_short), temperature)
        mse = zero
        if self.kd is not None and teacher is not None and bool(teacher_mask.any()):
            mse = self.kd(z[teacher_mask], teacher[teacher_mask])
        return ce, kl, mse, logits
