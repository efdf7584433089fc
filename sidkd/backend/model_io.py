"""Back-end model files (mean, LDA, PLDA): sidkd's npz model format (sidkd/io/npz.py) with the
format tag ``sidkd-<kind>``, float64 arrays, read without pickle. Loading checks kind and version,
so a mean vector is never read as a PLDA model.
"""

from __future__ import annotations

import numpy as np

from sidkd.errors import DataError
from sidkd.io.npz import load_npz, read_header, save_npz

__all__ = ["save_model", "load_model", "model_kind"]


def save_model(path: str, kind: str, version: int, **arrays: np.ndarray) -> None:
    """Write atomically (temp + rename), so a killed job leaves no half model."""
    save_npz(path, f"sidkd-{kind}", version, {name: np.asarray(v, dtype=np.float64) for name, v in arrays.items()})


def load_model(path: str, kind: str, version: int) -> dict[str, np.ndarray]:
    return load_npz(path, f"sidkd-{kind}", (version,))[1]


def model_kind(path: str) -> str:
    """The kind of a model file (``plda``, ``lda``, ``mean``...), from its format tag."""
    tag = str(read_header(path).get("format", ""))
    if not tag.startswith("sidkd-"):
        raise DataError(f"{path}: not a sidkd back-end model (format tag {tag or 'missing'!r})")
    return tag[len("sidkd-"):]
