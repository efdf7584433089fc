"""Model and accumulator files: one ``.npz`` holding named float/int arrays plus a JSON header.

The header is stored as the array ``header`` (a 0-d unicode string) and always has ``format``
(what the file is, e.g. ``sidkd-diag-gmm``) and ``version`` (an int bumped on incompatible
change). Files load with ``allow_pickle=False``: nothing in them can execute code. Writes go to a
temporary name and are renamed into place, so an interrupted job leaves no file a resumed run
would trust.
"""

from __future__ import annotations

import json
import os

import numpy as np

from sidkd.errors import DataError

__all__ = ["save_npz", "load_npz", "read_header"]


def save_npz(path: str, fmt: str, version: int, arrays: dict[str, np.ndarray], **meta) -> None:
    """Write ``arrays`` and a header {format, version, **meta} to ``path`` atomically."""
    header = {"format": fmt, "version": int(version), **meta}
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        # Write through a handle so numpy does not append ".npz" to the temporary name.
        with open(tmp, "wb") as handle:
            np.savez(handle, header=np.array(json.dumps(header, sort_keys=True)), **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _read(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable npz file ({exc})") from exc
    if "header" not in arrays:
        raise DataError(f"{path}: no header (not a sidkd model/accumulator file)")
    return json.loads(str(arrays.pop("header"))), arrays


def read_header(path: str) -> dict:
    """The header of a file written by :func:`save_npz` (to find out what kind of file it is)."""
    return _read(path)[0]


def load_npz(path: str, fmt: str, versions: tuple[int, ...] = (1,)) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, arrays) of a file written by :func:`save_npz`; checks format and version."""
    header, arrays = _read(path)
    if header.get("format") != fmt:
        raise DataError(f"{path}: expected a {fmt!r} file, found {header.get('format')!r}")
    if header.get("version") not in versions:
        raise DataError(f"{path}: {fmt} version {header.get('version')} not supported (want {versions})")
    return header, arrays
