"""Speaker-embedding networks (``build_model(config)`` makes one from the ``model:`` yaml section) and
the trained networks with their heads (heads.py)."""

from __future__ import annotations

from sidkd.nnet.models.heads import StudentWithHeads, TransferNet
from sidkd.nnet.models.resnet import ResNetSpeaker, embedder_blocks, set_frozen

__all__ = ["ResNetSpeaker", "StudentWithHeads", "TransferNet", "build_model", "embedder_blocks", "set_frozen"]

_MODELS = {"resnet": ResNetSpeaker}


def build_model(config: dict, feat_dim: int):
    config = dict(config)
    kind = config.pop("type")
    if kind not in _MODELS:
        raise ValueError(f"unknown model type {kind!r}; known: {sorted(_MODELS)}")
    return _MODELS[kind](feat_dim=feat_dim, **config)
