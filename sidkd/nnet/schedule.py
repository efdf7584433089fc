"""Per-step learning-rate schedule: linear warm-up ("preheating") to the peak, then a decay to the
final rate, exponential or cosine. State is just the step count, so a checkpoint holds it exactly."""

from __future__ import annotations

import math

import torch

__all__ = ["WarmupDecayLR"]


class WarmupDecayLR:
    def __init__(self, optimizer: torch.optim.Optimizer, peak_lr: float, final_lr: float, warmup_steps: int,
                 total_steps: int, kind: str = "exponential"):
        if kind not in ("exponential", "cosine"):
            raise ValueError(f"unknown lr decay {kind!r} (expected exponential or cosine)")
        self.optimizer, self.peak_lr, self.final_lr = optimizer, peak_lr, final_lr
        self.warmup_steps, self.total_steps, self.kind = warmup_steps, max(total_steps, 1), kind
        self.step_count = 0
        self._apply()

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.peak_lr * (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        if self.kind == "exponential":
            return self.peak_lr * (self.final_lr / self.peak_lr) ** progress
        return self.final_lr + 0.5 * (self.peak_lr - self.final_lr) * (1.0 + math.cos(math.pi * progress))

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step_count)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def state_dict(self) -> dict:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step_count"])
        self._apply()
