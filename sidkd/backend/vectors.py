"""Utterance vectors (i-vectors, embeddings) as one matrix, plus the simple vector maps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sidkd.errors import DataError
from sidkd.io.ark import iter_archive, scp_keys
from sidkd.io.trials import describe_missing

__all__ = ["VectorTable", "read_vectors", "subtract_mean", "length_normalize", "check_dims"]


@dataclass
class VectorTable:
    keys: list[str]
    matrix: np.ndarray  # (num_keys, dim), float64
    source: str = ""

    def __post_init__(self):
        self.index = {key: row for row, key in enumerate(self.keys)}

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    def rows(self, keys: list[str], what: str = "utterances") -> np.ndarray:
        """Row numbers of ``keys``; unknown keys are one error listing a few and the count."""
        missing = [key for key in keys if key not in self.index]
        if missing:
            raise DataError(f"{self.source}: no vector for " + describe_missing(missing, what))
        return np.fromiter((self.index[key] for key in keys), dtype=np.int64, count=len(keys))

    def subset(self, keys: list[str], what: str = "utterances") -> VectorTable:
        return VectorTable(list(keys), self.matrix[self.rows(keys, what)], self.source)


def read_vectors(rspec: str, select: Callable[[list[str]], list[str]] | None = None) -> VectorTable:
    """The vectors of an rspecifier (``scp:ivector.scp``; a bare path is taken as an scp): all of
    them, or those whose keys ``select`` picks from all keys (in the rspecifier's order). Of an scp
    file only the picked lines are loaded, so a 5000-vector AS-norm cohort reads 5000 vectors
    however large the training set."""
    if ":" not in rspec:
        rspec = f"scp:{rspec}"
    if select is None:
        return _read_vectors(rspec, None)
    keys = scp_keys(rspec)
    if keys is None:  # an archive is known only by reading it
        table = _read_vectors(rspec, None)
        return table.subset(select(table.keys))
    picked = select(keys)
    return _read_vectors(rspec, set(picked)).subset(picked)


def _read_vectors(rspec: str, wanted: set[str] | None) -> VectorTable:
    keys, rows = [], []
    dim = None
    for key, value in iter_archive(rspec, wanted):
        value = np.asarray(value, dtype=np.float64)
        if value.ndim == 2 and value.shape[0] == 1:
            value = value[0]  # a 1-row matrix is a vector (some writers store vectors so)
        if value.ndim != 1:
            raise DataError(f"{rspec}: {key}: expected a vector, got shape {value.shape}")
        if dim is None:
            dim = value.size
        elif value.size != dim:
            raise DataError(f"{rspec}: {key}: dimension {value.size}, but earlier vectors have {dim}")
        if not np.all(np.isfinite(value)):
            raise DataError(f"{rspec}: {key}: contains NaN or inf")
        keys.append(key)
        rows.append(value)
    if not keys:
        raise DataError(f"{rspec}: no vectors")
    if len(set(keys)) != len(keys):
        raise DataError(f"{rspec}: duplicate keys")
    return VectorTable(keys, np.vstack(rows), rspec)


def check_dims(expected: int, got: int, what: str) -> None:
    if expected != got:
        raise DataError(f"{what}: dimension mismatch: model expects {expected}, vectors have {got}")


def subtract_mean(matrix: np.ndarray, mean: np.ndarray) -> np.ndarray:
    check_dims(mean.size, matrix.shape[1], "mean subtraction")
    return matrix - mean


def length_normalize(matrix: np.ndarray, norm: float | None = None) -> np.ndarray:
    """Scale each row to Euclidean norm ``norm`` (default sqrt(dim), as Kaldi's
    ivector-normalize-length with scaleup=true). All-zero rows stay zero."""
    target = np.sqrt(matrix.shape[1]) if norm is None else norm
    lengths = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix * (target / np.where(lengths > 0, lengths, 1.0))


def labelled_subset(table: VectorTable, utt2spk: dict[str, str], min_utts_per_spk: int = 1) -> tuple[VectorTable, list[str]]:
    """The vectors of utterances in ``utt2spk`` whose speaker has >= ``min_utts_per_spk`` of them.

    Utterances of utt2spk without a vector are skipped and counted, vectors of utterances not in
    utt2spk are ignored; both counts and the speakers dropped are logged.
    """
    import logging

    logger = logging.getLogger(__name__)
    present = [utt for utt in utt2spk if utt in table.index]
    if len(present) < len(utt2spk):
        absent = [utt for utt in utt2spk if utt not in table.index]
        logger.warning("%d of %d utterances in utt2spk have no vector in %s (skipped), e.g. %s",
                       len(absent), len(utt2spk), table.source, " ".join(absent[:3]))
    counts: dict[str, int] = {}
    for utt in present:
        counts[utt2spk[utt]] = counts.get(utt2spk[utt], 0) + 1
    kept_spk = {spk for spk, n in counts.items() if n >= min_utts_per_spk}
    keys = [utt for utt in present if utt2spk[utt] in kept_spk]
    dropped = len(counts) - len(kept_spk)
    logger.info("using %d vectors of %d speakers (dropped %d speakers with < %d vectors, %d vectors; %d vectors not in utt2spk)",
                len(keys), len(kept_spk), dropped, min_utts_per_spk, len(present) - len(keys), len(table.keys) - len(present))
    if not keys:
        raise DataError(f"{table.source}: no speaker has >= {min_utts_per_spk} vectors")
    return table.subset(keys), [utt2spk[utt] for utt in keys]


def save_mean(path: str, mean: np.ndarray, count: int) -> None:
    from sidkd.backend.model_io import save_model

    save_model(path, "mean", 1, mean=mean, count=np.array(count))


def load_mean(path: str) -> np.ndarray:
    from sidkd.backend.model_io import load_model

    return load_model(path, "mean", 1)["mean"]
