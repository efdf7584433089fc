"""Kaldi data directories: tables keyed by utterance or speaker, read with errors that name the
file and line.

A table file has one entry per line: a key, whitespace, and the rest of the line (``wav.scp``,
``utt2spk``, ``segments``, ``utt2dur``, ``feats.scp``...). Kaldi expects keys unique and sorted in
the C locale; the readers check both unless told not to.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sidkd.errors import DataError

__all__ = [
    "read_table",
    "read_scp",
    "read_utt2spk",
    "read_spk2utt",
    "write_table",
    "atomic_write_text",
    "utt2spk_to_spk2utt",
    "DataDir",
    "Segment",
]


def _lines(path: str) -> Iterator[tuple[int, str]]:
    try:
        handle = open(path, encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot open ({exc.strerror})") from exc
    with handle:
        for number, line in enumerate(handle, 1):
            yield number, line.rstrip("\n")


def read_table(
    path: str,
    *,
    min_fields: int = 2,
    max_fields: int | None = None,
    check_sorted: bool = True,
    allow_empty: bool = False,
) -> list[tuple[str, str]]:
    """Read ``key rest-of-line`` entries, checking keys are unique and (optionally) C-sorted.

    Returns a list of (key, rest) in file order. ``min_fields``/``max_fields`` count the
    whitespace-separated fields including the key.
    """
    entries: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    previous = None
    for number, line in _lines(path):
        if not line.strip():
            raise DataError(f"{path}:{number}: empty line")
        fields = line.split()
        if len(fields) < min_fields or (max_fields is not None and len(fields) > max_fields):
            want = f"{min_fields}" if max_fields == min_fields else f"at least {min_fields}"
            if max_fields is not None and max_fields != min_fields:
                want = f"{min_fields} to {max_fields}"
            raise DataError(f"{path}:{number}: expected {want} fields, got {len(fields)}: {line!r}")
        key = fields[0]
        if key in seen:
            raise DataError(f"{path}:{number}: duplicate key {key!r} (first on line {seen[key]})")
        if check_sorted and previous is not None and key.encode() < previous.encode():
            raise DataError(
                f"{path}:{number}: not sorted (C locale): {key!r} comes after {previous!r}"
                " (sort with LC_ALL=C sort, or run utils/fix_data_dir.sh)"
            )
        seen[key] = number
        previous = key
        rest = line[len(line) - len(line.lstrip()) :].split(None, 1)
        entries.append((key, rest[1].strip() if len(rest) > 1 else ""))
    if not entries and not allow_empty:
        raise DataError(f"{path}: file is empty")
    return entries


def read_scp(path: str, **kwargs) -> dict[str, str]:
    """A table as an insertion-ordered dict key -> rest of line."""
    return dict(read_table(path, **kwargs))


def read_utt2spk(path: str, **kwargs) -> dict[str, str]:
    return dict(read_table(path, min_fields=2, max_fields=2, **kwargs))


def read_spk2utt(path: str, **kwargs) -> dict[str, list[str]]:
    return {spk: rest.split() for spk, rest in read_table(path, min_fields=2, **kwargs)}


def utt2spk_to_spk2utt(utt2spk: dict[str, str]) -> dict[str, list[str]]:
    """Speakers in C order, each with its utterances in C order."""
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk, key=str.encode):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return {spk: spk2utt[spk] for spk in sorted(spk2utt, key=str.encode)}


def atomic_write_text(path: str, text: str) -> None:
    """Write a whole file so that a reader never sees half of it (temp file + rename)."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_table(path: str, items: Iterable[tuple[str, object]]) -> None:
    """Write ``key value`` lines (value: str or a sequence joined by spaces), atomically."""
    lines = []
    for key, value in items:
        if not isinstance(value, str):
            value = " ".join(str(v) for v in value)
        lines.append(f"{key} {value}\n")
    atomic_write_text(path, "".join(lines))


@dataclass(frozen=True)
class Segment:
    recording: str
    start: float
    end: float  # seconds; -1 means "to the end of the recording" (Kaldi's convention)


def read_segments(path: str) -> dict[str, Segment]:
    segments: dict[str, Segment] = {}
    for number, line in _lines(path):
        fields = line.split()
        if len(fields) != 4:
            raise DataError(f"{path}:{number}: expected 'utt recording start end', got {line!r}")
        utt, rec, start_text, end_text = fields
        try:
            start, end = float(start_text), float(end_text)
        except ValueError as exc:
            raise DataError(f"{path}:{number}: start/end are not numbers: {line!r}") from exc
        if start < 0 or (end != -1 and end <= start):
            raise DataError(f"{path}:{number}: bad segment times {start} {end} for {utt}")
        if utt in segments:
            raise DataError(f"{path}:{number}: duplicate key {utt!r}")
        segments[utt] = Segment(rec, start, end)
    if not segments:
        raise DataError(f"{path}: file is empty")
    return segments


@dataclass
class DataDir:
    """A Kaldi data directory; files are read on first use."""

    path: str
    _cache: dict = field(default_factory=dict, repr=False)

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def has(self, name: str) -> bool:
        return os.path.isfile(self.file(name))

    def _get(self, name, reader):
        if name not in self._cache:
            self._cache[name] = reader(self.file(name))
        return self._cache[name]

    @property
    def utt2spk(self) -> dict[str, str]:
        return self._get("utt2spk", read_utt2spk)

    @property
    def spk2utt(self) -> dict[str, list[str]]:
        if self.has("spk2utt"):
            return self._get("spk2utt", read_spk2utt)
        return utt2spk_to_spk2utt(self.utt2spk)

    @property
    def wav_scp(self) -> dict[str, str]:
        return self._get("wav.scp", read_scp)

    @property
    def segments(self) -> dict[str, Segment] | None:
        return self._get("segments", read_segments) if self.has("segments") else None

    @property
    def utts(self) -> list[str]:
        return list(self.utt2spk)
