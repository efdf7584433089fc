"""Speaker embeddings of whole utterances with a trained student.

An utterance longer than ``chunk_seconds`` is cut into n = ceil(duration / chunk_seconds) equal
segments (the < n leftover samples at the end are dropped), each embedded on its own (features
and CMN per segment, as in training), and the embeddings averaged. ``max_duration`` > 0 first crops
the utterance to that many seconds, from its start or its centre (the centre keeps the leading
and trailing silence of read speech out of short crops). A signal shorter than ``min_seconds`` is
repeated end to end up to that length, as training does with short utterances.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import torch

from sidkd.io.audio import AudioOptions
from sidkd.nnet import checkpoint as ckpt
from sidkd.nnet.features import FeatureFrontEnd, frontend_from_config
from sidkd.nnet.models import build_model

__all__ = ["load_embedder", "crop", "split_equal", "embed_utterance", "embed_all", "model_audio_options"]


def load_embedder(model_dir: str, which: str = "final.pt") -> tuple[torch.nn.Module, dict]:
    """The embedding network of a trained student directory, in eval mode, and its description."""
    with open(os.path.join(model_dir, "model.json"), encoding="utf-8") as handle:
        desc = json.load(handle)
    frontend = frontend_from_config(desc["features"])
    embedder = build_model(desc["model"], frontend.num_bins)
    state = ckpt.load(os.path.join(model_dir, which))["model"]
    embedder.load_state_dict(ckpt.sub_state_dict(state, "embedder."))
    embedder.eval()
    return embedder, desc


def model_audio_options(model_name: str, frontend: FeatureFrontEnd) -> AudioOptions:
    """Audio at the rate the model was trained at; a file at another rate is an error naming the model."""
    return AudioOptions(sample_rate=frontend.sample_rate,
                        rate_from=f"the model {model_name} (trained at that rate: features.sample_rate of its model.json)")


def crop(samples: np.ndarray, max_samples: int, position: str = "center") -> np.ndarray:
    if max_samples <= 0 or len(samples) <= max_samples:
        return samples
    if position == "start":
        return samples[:max_samples]
    if position == "center":
        start = (len(samples) - max_samples) // 2
        return samples[start:start + max_samples]
    raise ValueError(f"unknown crop position {position!r} (start or center)")


def split_equal(samples: np.ndarray, max_samples: int) -> np.ndarray:
    """(n, len // n) equal segments with n = ceil(len / max_samples)."""
    n = max(1, math.ceil(len(samples) / max_samples))
    length = len(samples) // n
    return samples[: n * length].reshape(n, length)


@torch.no_grad()
def embed_utterance(embedder: torch.nn.Module, frontend: FeatureFrontEnd, samples: np.ndarray,
                    chunk_seconds: float = 10.0, max_duration: float = 0.0, crop_position: str = "center",
                    min_seconds: float = 0.5, device: torch.device | str = "cpu") -> np.ndarray:
    rate = frontend.sample_rate
    x = crop(np.asarray(samples, dtype=np.float32), int(round(max_duration * rate)), crop_position)
    min_samples = int(round(min_seconds * rate))
    if len(x) < min_samples:
        x = np.tile(x, -(-min_samples // len(x)))[:min_samples]
    segments = split_equal(x, int(round(chunk_seconds * rate)))
    feats = torch.from_numpy(np.stack([frontend(s) for s in segments])).to(device)
    return embedder(feats).mean(dim=0).cpu().numpy().astype(np.float32)


def embed_all(network, frontend: FeatureFrontEnd, utterances, write, chunk_seconds: float = 10.0,
              max_duration: float = 0.0, crop_position: str = "center",
              device: torch.device | str = "cpu") -> tuple[int, list[tuple[str, str]]]:
    """embed_utterance over (utt, samples, error) triples (AudioReader.iter_with_errors), calling
    write(utt, embedding) for each readable one; returns (embedded, [(utt, why skipped), ...])."""
    done, skipped = 0, []
    for utt, samples, error in utterances:
        if error is not None or len(samples) == 0:
            skipped.append((utt, str(error or "empty audio")))
            continue
        write(utt, embed_utterance(network, frontend, samples, chunk_seconds, max_duration, crop_position,
                                   device=device))
        done += 1
    return done, skipped
