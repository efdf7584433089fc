"""Our back-end models as Kaldi's objects, so Kaldi's scoring pipeline can use them, and back.

| ours | Kaldi object (file) | read by |
|---|---|---|
| ``plda.npz`` | ``Plda`` (ivector/plda.cc) | ivector-plda-scoring, ivector-copy-plda |
| ``mean.npz`` | ``Vector`` (mean.vec) | ivector-subtract-global-mean |
| ``lda.npz``  | ``Matrix``, out × (in + 1): [L | offset] (transform.mat) | transform-vec |

PLDA: Kaldi stores the mean m (``Vector<double>``), the transform A (``Matrix<double>``, dim × dim,
A W Aᵀ = I, A B Aᵀ = diag(ψ)) and ψ (``Vector<double>``); the offset −A m is derived on reading.
Our model holds the same m, A, ψ, so ivector-plda-scoring and ``score_plda`` give the same LLRs.
B and W, which Kaldi does not store, are recovered: W = A⁻¹ A⁻ᵀ, B = A⁻¹ diag(ψ) A⁻ᵀ.
LDA: y = L x + offset is Kaldi's affine transform-vec matrix [L | offset] (what ivector-compute-lda
writes); the eigenvalues (diagnostics only) are not in Kaldi's file and come back empty.

Text form (Kaldi's ``--binary=false``; a token is followed by one space, a vector is one line
`` [ v1 v2 ... ]``, a matrix is `` [`` then one line per row, each number followed by a space):

    <Plda>  [ m1 m2 ... ]
     [
      A11 A12 ...
      A21 A22 ... ]
     [ ψ1 ψ2 ... ]
    </Plda>

A mean file is one vector line, an LDA file one matrix. Kaldi prints 7 significant digits; we print
each number's shortest exact decimal (Kaldi reads any length), so a round trip changes nothing.

Binary form (Kaldi's default): ``\\0B``; a token as its text and a space; a vector as ``DV `` (``FV ``
for float), a size byte 4 and an int32 dimension, then the little-endian values; a matrix as ``DM ``
(``FM ``), rows and columns likewise, then the rows. Both forms are read and written.
"""

from __future__ import annotations

import os
import re
import struct

import numpy as np

from sidkd.backend.lda import Lda
from sidkd.backend.plda import Plda
from sidkd.errors import DataError

__all__ = ["to_kaldi_objects", "from_kaldi_objects", "format_kaldi", "parse_kaldi", "write_kaldi", "read_kaldi",
           "read_kaldi_plda"]


# ---- the model <-> a list of Kaldi objects (str: a token; 1-d array: Vector; 2-d array: Matrix)

def to_kaldi_objects(model) -> list:
    if isinstance(model, Plda):
        return ["<Plda>", model.mean, model.transform, model.psi, "</Plda>"]
    if isinstance(model, Lda):
        return [np.hstack([model.matrix, model.offset[:, None]])]
    if isinstance(model, np.ndarray) and model.ndim == 1:  # a mean vector
        return [model]
    raise TypeError(f"no Kaldi form for {type(model).__name__}")


def _check_finite(source: str, what: str, values: np.ndarray) -> None:
    if not np.all(np.isfinite(values)):
        raise DataError(f"{source}: {what} contains NaN or inf")


def _plda_from_parts(mean, transform, psi, source: str) -> Plda:
    dim = mean.size
    if dim == 0:
        raise DataError(f"{source}: empty PLDA mean")
    if transform.shape != (dim, dim) or psi.size != dim:
        raise DataError(f"{source}: inconsistent sizes: mean {dim}, transform {transform.shape[0]}x{transform.shape[1]}, psi {psi.size}")
    for what, values in (("mean", mean), ("transform", transform), ("psi", psi)):
        _check_finite(source, what, values)
    if psi.min() < 0:
        raise DataError(f"{source}: psi has a negative entry ({psi.min():g}); a between-class variance cannot be")
    try:
        inverse = np.linalg.inv(transform)
    except np.linalg.LinAlgError:
        raise DataError(f"{source}: the transform is singular") from None
    within = inverse @ inverse.T
    between = (inverse * psi) @ inverse.T
    return Plda(mean, transform, psi, (between + between.T) / 2, (within + within.T) / 2)


def from_kaldi_objects(objects: list, source: str):
    """Plda, Lda or a mean vector (np.ndarray) from what a Kaldi file held."""
    kinds = ["token" if isinstance(o, str) else ("vector" if o.ndim == 1 else "matrix") for o in objects]
    if kinds and kinds[0] == "token" and objects[0] == "<Plda>":
        if kinds != ["token", "vector", "matrix", "vector", "token"] or objects[4] != "</Plda>":
            raise DataError(f"{source}: expected '<Plda> [ mean ] [ transform ] [ psi ] </Plda>', found {' '.join(kinds)}")
        return _plda_from_parts(objects[1], objects[2], objects[3], source)
    if kinds == ["vector"]:
        _check_finite(source, "mean vector", objects[0])
        return objects[0]
    if kinds == ["matrix"]:
        affine = objects[0]
        if affine.shape[1] < 2:
            raise DataError(f"{source}: a {affine.shape[0]}x{affine.shape[1]} matrix is not an affine transform [L | offset]")
        _check_finite(source, "transform", affine)
        return Lda(affine[:, :-1].copy(), affine[:, -1].copy(), np.zeros(0))
    raise DataError(f"{source}: not a Kaldi PLDA, mean vector or transform matrix (found {' '.join(kinds) or 'nothing'})")


# ---- Kaldi's text and binary forms

def _number_text(value: float) -> str:
    # Shortest exact decimal; Kaldi's text reader needs a number to start with '-' or a digit.
    return repr(float(value))


def format_kaldi(objects: list) -> str:
    out = []
    for item in objects:
        if isinstance(item, str):
            out.append(item + " ")
        elif item.ndim == 1:
            out.append(" [ " + "".join(_number_text(x) + " " for x in item) + "]\n")
        else:
            out.append(" [" + "".join("\n  " + "".join(_number_text(x) + " " for x in row) for row in item) + "]\n")
    return "".join(out)


def _binary(objects: list) -> bytes:
    out = [b"\0B"]
    for item in objects:
        if isinstance(item, str):
            out.append(item.encode("ascii") + b" ")
        elif item.ndim == 1:
            out.append(b"DV " + struct.pack("<bi", 4, item.size) + np.asarray(item, dtype="<f8").tobytes())
        else:
            rows, cols = item.shape
            out.append(b"DM " + struct.pack("<bibi", 4, rows, 4, cols) + np.ascontiguousarray(item, dtype="<f8").tobytes())
    return b"".join(out)


_TEXT_ITEM = re.compile(rb"\s*(?:(<[^\s>]+>)|\[([^\]]*)\])")


def _numbers(text: bytes, what: str, source: str) -> list[float]:
    try:
        return [float(token) for token in text.split()]
    except ValueError:
        bad = next(t for t in text.split() if not _is_float(t))
        raise DataError(f"{source}: {what}: not a number: {bad.decode(errors='replace')!r}") from None


def _is_float(token: bytes) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def _parse_text(data: bytes, source: str) -> list:
    objects, pos = [], 0
    while data[pos:].strip():
        match = _TEXT_ITEM.match(data, pos)
        if match is None:
            snippet = data[pos:].strip()[:30].decode(errors="replace")
            raise DataError(f"{source}: not a Kaldi object in text form at byte {pos}: {snippet!r}")
        token, body = match.groups()
        pos = match.end()
        if token is not None:
            objects.append(token.decode("ascii", errors="replace"))
            continue
        what = f"object {len(objects) + 1}"
        lines = [line for line in body.split(b"\n") if line.strip()]
        if b"\n" not in body.strip(b" \t"):  # one line: a vector
            objects.append(np.array(_numbers(body, what, source), dtype=np.float64))
        else:
            rows = [_numbers(line, f"{what} row {i + 1}", source) for i, line in enumerate(lines)]
            if any(len(row) != len(rows[0]) for row in rows):
                raise DataError(f"{source}: {what}: matrix rows of different lengths")
            objects.append(np.array(rows, dtype=np.float64).reshape(len(rows), -1))
    return objects


class _BinaryReader:
    def __init__(self, data: bytes, source: str):
        self.data, self.pos, self.source = data, 2, source  # after "\0B"

    def fail(self, message: str):
        raise DataError(f"{self.source}: Kaldi binary file, byte {self.pos}: {message}")

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

    def objects(self) -> list:
        out = []
        while self.pos < len(self.data):
            kind = self.token()
            if kind in ("DV", "FV"):
                out.append(self.values(self.int32(), "<f8" if kind == "DV" else "<f4"))
            elif kind in ("DM", "FM"):
                rows, cols = self.int32(), self.int32()
                out.append(self.values(rows * cols, "<f8" if kind == "DM" else "<f4").reshape(rows, cols))
            elif kind.startswith("<") and kind.endswith(">"):
                out.append(kind)
            else:
                self.fail(f"unexpected {kind!r}")
        return out


def parse_kaldi(data: bytes, source: str = "<bytes>") -> list:
    """The objects of a Kaldi file (text or binary): tokens as str, vectors and matrices as arrays."""
    return _BinaryReader(data, source).objects() if data.startswith(b"\0B") else _parse_text(data, source)


def read_kaldi(path: str):
    """A Kaldi PLDA, mean vector or affine transform file as our Plda, mean array or Lda."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    return from_kaldi_objects(parse_kaldi(data, path), path)


def read_kaldi_plda(path: str) -> Plda:
    model = read_kaldi(path)
    if not isinstance(model, Plda):
        raise DataError(f"{path}: a Kaldi {type(model).__name__ if isinstance(model, Lda) else 'vector'}, not a PLDA")
    return model


def write_kaldi(path: str, model, binary: bool = False) -> None:
    """Write the Kaldi form of a Plda, Lda or mean vector; atomic (temp + rename)."""
    objects = to_kaldi_objects(model)
    payload = _binary(objects) if binary else format_kaldi(objects).encode("ascii")
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(payload)
    os.replace(tmp, path)
