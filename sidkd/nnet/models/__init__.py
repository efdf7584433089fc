"""Speaker-embedding networks. ``build_model(config)`` makes one from the ``model:`` yaml section."""

from __future__ import annotations

from sidkd.nnet.models.resnet import ResNetSpeaker

__all__ = ["ResNetSpeaker", "build_model"]

_MODELS = {"resnet": ResNetSpeaker}


def build_model(config: dict, feat_dim: int):
    config = dict(config)
    kind = config.pop("type", "resnet")
    if kind not in _MODELS:
        raise ValueError(f"unknown model type {kind!r}; known: {sorted(_MODELS)}")
    return _MODELS[kind](feat_dim=feat_dim, **config)
