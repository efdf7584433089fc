"""Back-end model files: ``.npz`` archives read without pickle.

Each file holds a ``format`` string (e.g. ``sidkd-plda``), an integer ``version`` and named float64
arrays. Loading checks both, so a mean vector is never read as a PLDA model.
"""

from __future__ import annotations

import os

import numpy as np

from sidkd.errors import DataError

__all__ = ["save_model", "load_model", "model_kind"]


def save_model(path: str, kind: str, version: int, **arrays: np.ndarray) -> None:
    """Write atomically (temp + rename), so a killed job leaves no half model."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}.npz"
    payload = {name: np.asarray(value, dtype=np.float64) for name, value in arrays.items()}
    np.savez(tmp, format=np.array(f"sidkd-{kind}"), version=np.array(version), **payload)
    os.replace(tmp, path)


def load_model(path: str, kind: str, version: int) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz model ({exc})") from exc
    found = str(arrays.pop("format", "")) if "format" in arrays else ""
    if found != f"sidkd-{kind}":
        raise DataError(f"{path}: expected a sidkd-{kind} file, found {found or 'no format tag'!r}")
    found_version = int(arrays.pop("version", -1))
    if found_version != version:
        raise DataError(f"{path}: sidkd-{kind} version {found_version}; this code reads version {version}")
    return arrays


def model_kind(path: str) -> str:
    """The kind of a model file (``plda``, ``lda``, ``mean``...), from its format tag."""
    try:
        with np.load(path, allow_pickle=False) as data:
            tag = str(data["format"]) if "format" in data.files else ""
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz model ({exc})") from exc
    if not tag.startswith("sidkd-"):
        raise DataError(f"{path}: not a sidkd model (format tag {tag or 'missing'!r})")
    return tag[len("sidkd-"):]
