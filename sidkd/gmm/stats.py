"""EM accumulators shared by the diagonal and the full-covariance GMM: occupancy N_c, first order
F_c = Σγx, second order (diagonal Σγx² or full Σγxxᵀ), total log-likelihood and frame count. They
add up across jobs (``+=``) and are stored in sidkd's npz format (sidkd/io/npz.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sidkd.errors import DataError
from sidkd.io.npz import load_npz, save_npz


@dataclass
class GmmStats:
    occupancy: np.ndarray  # (C,)
    first: np.ndarray  # (C, D)
    second: np.ndarray  # (C, D) diagonal or (C, D, D) full
    loglik: float = 0.0
    num_frames: int = 0

    FORMAT = ""  # set by each subclass

    def __iadd__(self, other: GmmStats) -> GmmStats:
        if other.second.shape != self.second.shape:
            raise DataError(f"{self.FORMAT}: shape {other.second.shape} vs {self.second.shape}")
        self.occupancy += other.occupancy
        self.first += other.first
        self.second += other.second
        self.loglik += other.loglik
        self.num_frames += other.num_frames
        return self

    def save(self, path: str) -> None:
        save_npz(path, self.FORMAT, 1, {"occupancy": self.occupancy, "first": self.first, "second": self.second,
                                        "loglik": np.float64(self.loglik), "num_frames": np.int64(self.num_frames)})

    @classmethod
    def load(cls, path: str):
        _, a = load_npz(path, cls.FORMAT)
        return cls(a["occupancy"], a["first"], a["second"], float(a["loglik"]), int(a["num_frames"]))
