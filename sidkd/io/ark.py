"""Kaldi archives through kaldiio, with writes that are atomic.

Readers take any rspecifier kaldiio understands (``scp:feats.scp``, ``ark:x.ark``, ``ark:cmd |``,
``ark:-``). The writer takes a wspecifier (``ark,scp:x.ark,x.scp``, ``ark:x.ark``, ``ark:-``,
``ark:| cmd``); for files it writes ``x.ark.tmp.PID`` / ``x.scp.tmp.PID`` and renames them into
place only when closed without error: a killed job leaves no ark/scp that a resumed run would trust.
The old scp is removed before the new ark is moved in, so an scp never points into a different ark.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator

import kaldiio
import numpy as np

from sidkd.errors import DataError

__all__ = ["ArchiveWriter", "iter_archive", "load_table", "parse_wspecifier", "check_finite", "scp_keys"]


def parse_wspecifier(wspec: str) -> tuple[list[str], list[str]]:
    """``"ark,scp,t:a,b"`` -> (["ark", "scp", "t"], ["a", "b"]) (paths in the order of ark/scp)."""
    if ":" not in wspec:
        raise DataError(f"bad wspecifier {wspec!r}: expected e.g. ark:out.ark or ark,scp:out.ark,out.scp")
    kinds_text, paths_text = wspec.split(":", 1)
    kinds = kinds_text.split(",")
    if "ark" not in kinds:
        raise DataError(f"bad wspecifier {wspec!r}: needs 'ark'")
    if "scp" in kinds:
        paths = paths_text.split(",", 1)
        if len(paths) != 2:
            raise DataError(f"bad wspecifier {wspec!r}: 'ark,scp' needs two comma-separated paths")
    else:
        paths = [paths_text]
    return kinds, paths


class ArchiveWriter:
    """``with ArchiveWriter(wspec) as w: w[key] = array`` — atomic for file targets."""

    def __init__(self, wspec: str):
        kinds, paths = parse_wspecifier(wspec)
        self._final: list[tuple[str, str]] = []  # (tmp, final) in rename order: ark first, scp last
        self._scp_tmp = self._scp_final = self._ark_final = self._ark_tmp = None
        kind_paths = [k for k in kinds if k in ("ark", "scp")]
        named = dict(zip(kind_paths, paths))
        ark = named["ark"]
        scp = named.get("scp")
        is_file = ark not in ("-",) and not ark.strip().startswith("|")
        if is_file:
            pid = os.getpid()
            self._ark_final, self._ark_tmp = ark, f"{ark}.tmp.{pid}"
            named["ark"] = self._ark_tmp
            if scp is not None:
                self._scp_final, self._scp_tmp = scp, f"{scp}.tmp.{pid}"
                named["scp"] = self._scp_tmp
            directory = os.path.dirname(ark)
            if directory:
                os.makedirs(directory, exist_ok=True)
        tmp_spec = ",".join(kinds) + ":" + ",".join(named[k] for k in kind_paths)
        self._writer = kaldiio.WriteHelper(tmp_spec)
        self.count = 0

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        if not key or any(c.isspace() for c in key):
            raise DataError(f"bad archive key {key!r}: keys must be non-empty without whitespace")
        self._writer[key] = value
        self.count += 1

    def close(self) -> None:
        self._writer.close()
        if self._ark_tmp is None:
            return
        if self._scp_tmp is not None:
            # kaldiio wrote the temporary ark name into the scp; point it at the final name.
            prefix = f" {self._ark_tmp}:"
            with open(self._scp_tmp, encoding="utf-8") as handle:
                lines = [line.replace(prefix, f" {self._ark_final}:", 1) for line in handle]
            with open(self._scp_tmp, "w", encoding="utf-8") as handle:
                handle.writelines(lines)
            if os.path.exists(self._scp_final):
                os.remove(self._scp_final)
        os.replace(self._ark_tmp, self._ark_final)
        if self._scp_tmp is not None:
            os.replace(self._scp_tmp, self._scp_final)

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            for tmp in (self._ark_tmp, self._scp_tmp):
                if tmp and os.path.exists(tmp):
                    os.remove(tmp)

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def iter_archive(rspec: str, keys: set[str] | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """(key, array) for every entry of an rspecifier, in order; with ``keys``, only those entries
    (of an scp file the other lines are not loaded at all).

    Every program reads archives through here, so bad archives stop here, naming the key: a key
    seen twice, or an array with NaN or inf (nothing downstream would notice: a NaN frame compares
    as unvoiced, a NaN statistic poisons a whole model).
    """
    if ":" not in rspec:
        raise DataError(f"bad rspecifier {rspec!r}: expected e.g. scp:feats.scp or ark:x.ark")
    kind, target = rspec.split(":", 1)
    if "scp" in kind.split(",") and not target.strip().endswith("|") and not os.path.isfile(target):
        raise DataError(f"{target}: no such file (from rspecifier {rspec!r})")
    seen: set[str] = set()
    try:
        with _open_reader(rspec, keys) as reader:
            for key, value in reader:
                if keys is not None and key not in keys:
                    continue
                if key in seen:
                    raise DataError(f"{rspec}: duplicate key {key!r}")
                seen.add(key)
                if isinstance(value, np.ndarray) and value.dtype.kind in "fc":
                    check_finite(f"{rspec}: {key}", value)
                yield key, value
    except DataError:
        raise
    except (OSError, ValueError, EOFError, RuntimeError) as exc:  # kaldiio: RuntimeError on bad text
        raise DataError(f"cannot read {rspec!r}: " + " ".join(str(exc).split())) from exc


@contextlib.contextmanager
def _open_reader(rspec: str, keys: set[str] | None = None):
    """kaldiio's reader; an scp file is read line by line here (only the ``keys`` asked for), and for
    ``ark:cmd |`` we run the command, so that its failure is an error (kaldiio would read its empty or
    cut output as a complete, shorter archive)."""
    kind, target = rspec.split(":", 1)
    command = target.strip()
    if "scp" in kind.split(",") and os.path.isfile(target):
        with _scp_reader(target, keys) as reader:
            yield reader
        return
    if "ark" not in kind.split(",") or not command.endswith("|"):
        with kaldiio.ReadHelper(rspec) as reader:
            yield reader
        return
    proc = subprocess.Popen(command[:-1], shell=True, stdout=subprocess.PIPE)
    try:
        yield kaldiio.load_ark(proc.stdout)
    except GeneratorExit:
        # The reader stopped early; the command dies of SIGPIPE, which is not its failure.
        proc.stdout.close()
        proc.wait()
        raise
    except BaseException as exc:
        proc.stdout.close()
        if proc.wait() != 0:
            raise DataError(f"{rspec}: the command exited with status {proc.returncode}") from exc
        raise
    proc.stdout.close()
    if proc.wait() != 0:
        raise DataError(f"{rspec}: the command exited with status {proc.returncode} (its messages are above)")


@contextlib.contextmanager
def _scp_reader(path: str, keys: set[str] | None = None):
    """An scp's entries in its order; with ``keys`` only theirs, the other lines never loaded. Each
    archive stays open (a key-sorted scp alternates between nj jobs' archives line by line), and a
    bad line is named by its number."""
    handles: dict = {}

    def entries() -> Iterator[tuple[str, np.ndarray]]:
        for _, key, location in _scp_lines(path):
            if keys is None or key in keys:
                yield key, kaldiio.load_mat(location, fd_dict=handles)

    try:
        yield entries()
    finally:
        for handle in handles.values():
            handle.close()


def _scp_lines(path: str) -> Iterator[tuple[int, str, str]]:
    with open(path, encoding="utf-8") as scp:
        for number, line in enumerate(scp, 1):
            fields = line.split(None, 1)
            if len(fields) != 2:
                raise DataError(f"{path}:{number}: expected 'key location', got {line.rstrip()!r}")
            yield number, fields[0], fields[1].strip()


def scp_keys(rspec: str) -> list[str] | None:
    """The keys of an ``scp:`` rspecifier naming a file, in order, nothing loaded; None for any
    other rspecifier (an archive is known only by reading it)."""
    kind, _, target = rspec.partition(":")
    if "scp" not in kind.split(",") or not os.path.isfile(target):
        return None
    return [key for _, key, _ in _scp_lines(target)]


def load_table(rspec: str) -> dict[str, np.ndarray]:
    """A whole (small) table in memory: vectors, per-utterance counts. Not for features."""
    return dict(iter_archive(rspec))


def check_finite(key: str, array: np.ndarray) -> None:
    if not np.all(np.isfinite(array)):
        raise DataError(f"{key}: contains NaN or inf")
