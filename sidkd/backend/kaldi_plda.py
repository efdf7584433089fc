"""Kaldi's PLDA model file (``Plda::Write`` / ``Plda::Read`` of ivector/plda.cc) from and to our Plda.

Kaldi stores three things: the mean m (``Vector<double>``), the transform A (``Matrix<double>``,
dim × dim, A W Aᵀ = I, A B Aᵀ = diag(ψ)) and ψ (``Vector<double>``); the offset −A m is derived on
reading. Our model holds the same m, A, ψ, so ivector-plda-scoring and ``score_plda`` give the same
LLRs for the same model. B and W, which Kaldi does not store, are recovered from A and ψ:
W = A⁻¹ A⁻ᵀ, B = A⁻¹ diag(ψ) A⁻ᵀ.

Text form (what Kaldi writes with ``--binary=false``; tokens are followed by one space, a vector is
`` [ v1 v2 ... ]`` on one line, a matrix puts each row on its own line):

    <Plda>  [ m1 m2 ... ]
     [
      A11 A12 ...
      A21 A22 ... ]
     [ ψ1 ψ2 ... ]
    </Plda>

Kaldi prints 7 significant digits; we print each number's shortest exact decimal (Kaldi reads any
number of digits), so a round trip through the text form changes nothing.

Binary form (Kaldi's default): ``\\0B``, then the token ``<Plda> ``, each vector as ``DV `` (or
``FV `` for float), a size byte 4 and an int32 dimension, then the raw little-endian values; the
matrix as ``DM `` (or ``FM ``), rows and columns likewise, then the rows; last the token ``</Plda> ``.
Both forms are read; both can be written.
"""

from __future__ import annotations

import re
import struct

import numpy as np

from sidkd.backend.plda import Plda
from sidkd.errors import DataError

__all__ = ["read_kaldi_plda", "write_kaldi_plda", "format_kaldi_plda", "parse_kaldi_plda"]

_TEXT_LAYOUT = re.compile(rb"^\s*<Plda>\s*\[([^\]]*)\]\s*\[([^\]]*)\]\s*\[([^\]]*)\]\s*</Plda>\s*$")


def _number_text(value: float) -> str:
    # Shortest exact decimal; Kaldi's text reader needs a number to start with '-' or a digit.
    return repr(float(value))


def format_kaldi_plda(plda: Plda) -> str:
    """The model in Kaldi's text form (see the module docstring)."""
    vector = lambda v: " [ " + "".join(_number_text(x) + " " for x in v) + "]\n"  # noqa: E731
    rows = "".join("\n  " + "".join(_number_text(x) + " " for x in row) for row in plda.transform)
    return "<Plda> " + vector(plda.mean) + " [" + rows + "]\n" + vector(plda.psi) + "</Plda> "


def _binary_vector(values: np.ndarray) -> bytes:
    return b"DV " + struct.pack("<bi", 4, values.size) + np.asarray(values, dtype="<f8").tobytes()


def _binary_matrix(values: np.ndarray) -> bytes:
    rows, cols = values.shape
    return b"DM " + struct.pack("<bibi", 4, rows, 4, cols) + np.ascontiguousarray(values, dtype="<f8").tobytes()


def write_kaldi_plda(path: str, plda: Plda, binary: bool = False) -> None:
    """Write a file Kaldi's ReadKaldiObject (ivector-plda-scoring) reads; atomic (temp + rename)."""
    import os

    if binary:
        payload = (b"\0B<Plda> " + _binary_vector(plda.mean) + _binary_matrix(plda.transform)
                   + _binary_vector(plda.psi) + b"</Plda> ")
    else:
        payload = format_kaldi_plda(plda).encode("ascii")
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(payload)
    os.replace(tmp, path)


def _parse_numbers(text: bytes, what: str, source: str) -> list[float]:
    values = []
    for token in text.split():
        try:
            values.append(float(token))
        except ValueError:
            raise DataError(f"{source}: {what}: not a number: {token.decode(errors='replace')!r}") from None
    return values


def _parse_text(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    match = _TEXT_LAYOUT.match(data)
    if match is None:
        raise DataError(f"{source}: not a Kaldi PLDA in text form: expected '<Plda> [ mean ] [ transform ] [ psi ] </Plda>'")
    mean_text, transform_text, psi_text = match.groups()
    for what, text in (("mean", mean_text), ("psi", psi_text)):
        if b"\n" in text.strip():
            raise DataError(f"{source}: {what}: a vector must be on one line")
    mean = np.array(_parse_numbers(mean_text, "mean", source))
    psi = np.array(_parse_numbers(psi_text, "psi", source))
    rows = [_parse_numbers(line, f"transform row {i + 1}", source)
            for i, line in enumerate(line for line in transform_text.splitlines() if line.strip())]
    if any(len(row) != len(rows[0]) for row in rows):
        raise DataError(f"{source}: transform: rows of different lengths")
    return mean, np.array(rows, dtype=np.float64).reshape(len(rows), -1), psi


class _BinaryReader:
    def __init__(self, data: bytes, source: str):
        self.data, self.pos, self.source = data, 2, source  # after "\0B"

    def fail(self, message: str):
        raise DataError(f"{self.source}: Kaldi binary PLDA, byte {self.pos}: {message}")

    def token(self) -> str:
        end = self.data.find(b" ", self.pos)
        if end < 0:
            self.fail("expected a token")
        token = self.data[self.pos:end].decode("ascii", errors="replace")
        self.pos = end + 1
        return token

    def int32(self) -> int:
        if self.data[self.pos:self.pos + 1] != b"\x04" or self.pos + 5 > len(self.data):
            self.fail("expected a 4-byte integer")
        (value,) = struct.unpack_from("<i", self.data, self.pos + 1)
        self.pos += 5
        return value

    def values(self, count: int, dtype: str) -> np.ndarray:
        size = count * np.dtype(dtype).itemsize
        if count < 0 or self.pos + size > len(self.data):
            self.fail(f"truncated: {count} values do not fit")
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos).astype(np.float64)
        self.pos += size
        return out

    def vector(self) -> np.ndarray:
        kind = self.token()
        if kind not in ("DV", "FV"):
            self.fail(f"expected a vector (DV or FV), found {kind!r}")
        return self.values(self.int32(), "<f8" if kind == "DV" else "<f4")

    def matrix(self) -> np.ndarray:
        kind = self.token()
        if kind not in ("DM", "FM"):
            self.fail(f"expected a matrix (DM or FM), found {kind!r}")
        rows, cols = self.int32(), self.int32()
        return self.values(rows * cols, "<f8" if kind == "DM" else "<f4").reshape(rows, cols)


def _parse_binary(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    reader = _BinaryReader(data, source)
    if reader.token() != "<Plda>":
        reader.fail("expected <Plda>")
    mean, transform, psi = reader.vector(), reader.matrix(), reader.vector()
    if reader.token() != "</Plda>":
        reader.fail("expected </Plda>")
    return mean, transform, psi


def parse_kaldi_plda(data: bytes, source: str = "<bytes>") -> Plda:
    """A Plda from the bytes of a Kaldi PLDA file, text or binary; every check names ``source``."""
    mean, transform, psi = _parse_binary(data, source) if data.startswith(b"\0B") else _parse_text(data, source)
    dim = mean.size
    if dim == 0:
        raise DataError(f"{source}: empty PLDA mean")
    if transform.shape != (dim, dim) or psi.size != dim:
        raise DataError(f"{source}: inconsistent sizes: mean {dim}, transform {transform.shape[0]}x{transform.shape[1]}, psi {psi.size}")
    for what, values in (("mean", mean), ("transform", transform), ("psi", psi)):
        if not np.all(np.isfinite(values)):
            raise DataError(f"{source}: {what} contains NaN or inf")
    if psi.min() < 0:
        raise DataError(f"{source}: psi has a negative entry ({psi.min():g}); a between-class variance cannot be")
    try:
        inverse = np.linalg.inv(transform)
    except np.linalg.LinAlgError:
        raise DataError(f"{source}: the transform is singular") from None
    within = inverse @ inverse.T
    between = (inverse * psi) @ inverse.T
    return Plda(mean, transform, psi, (between + between.T) / 2, (within + within.T) / 2)


def read_kaldi_plda(path: str) -> Plda:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    return parse_kaldi_plda(data, path)
