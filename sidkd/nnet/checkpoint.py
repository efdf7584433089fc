"""Checkpoints and model files of the student, loadable with ``torch.load(weights_only=True)``.

A checkpoint (``DIR/checkpoints/epoch_E.pt``) is a dict of tensors, numbers, strings, lists and
dicts only: ``format``, ``version``, ``epoch``, ``step``, ``model`` (state_dict of embedder + heads),
``optimizer``, ``scheduler`` (step count), ``rng`` (python, numpy and torch states). It is written to
a temporary name and renamed, so a killed job never leaves a half-written checkpoint.

The final model (``DIR/final.pt``) is ``{format, version, model}`` with model = the element-wise
mean of the state_dicts of the last N epoch checkpoints (integer buffers, e.g. batch-norm counters,
taken from the newest); ``DIR/model.json`` describes how to rebuild the network (features, model,
number of speakers, teacher dimension).
"""

from __future__ import annotations

import hashlib
import os
import random
import re

import numpy as np
import torch

__all__ = ["CHECKPOINT_FORMAT", "FORMAT_VERSION", "save_atomic", "load", "rng_state", "set_rng_state",
           "average_state_dicts", "sub_state_dict", "list_checkpoints", "parameter_digest"]

CHECKPOINT_FORMAT = "sidkd-student"
FORMAT_VERSION = 1


def save_atomic(obj: dict, path: str) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path: str) -> dict:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a {CHECKPOINT_FORMAT} file")
    if obj.get("version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {obj.get('version')} is newer than this code ({FORMAT_VERSION})")
    return obj


def rng_state() -> dict:
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    return {
        "python": [version, list(internal), gauss],
        "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937",
                         "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
                         "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"]})
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def average_state_dicts(state_dicts: list[dict]) -> dict:
    out = {}
    for name, value in state_dicts[-1].items():
        if torch.is_floating_point(value):
            out[name] = sum(sd[name].double() for sd in state_dicts).div(len(state_dicts)).to(value.dtype)
        else:
            out[name] = value.clone()
    return out


def sub_state_dict(state: dict, prefix: str) -> dict:
    """The entries of a module's state dict under ``prefix`` (e.g. "embedder."), prefix removed:
    the state of that submodule."""
    return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}


def list_checkpoints(directory: str) -> list[tuple[int, str]]:
    """(epoch, path) of DIR/epoch_E.pt, oldest first."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = re.fullmatch(r"epoch_(\d+)\.pt", name)
        if match:
            found.append((int(match.group(1)), os.path.join(directory, name)))
    return sorted(found)


def parameter_digest(named_tensors) -> str:
    """sha256 (hex) of (name, float32 values) pairs in name order: equal digests mean bit-identical
    tensors. Used to check that the DDP processes hold the same parameters."""
    digest = hashlib.sha256()
    for name, tensor in sorted(named_tensors, key=lambda item: item[0]):
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()
