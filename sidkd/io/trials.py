"""Trial lists, score files and enrolment lists (Kaldi sid formats).

- trials: ``enroll test target|nontarget`` (the label column is optional for scoring)
- scores: ``enroll test score``, written in trial order
- enrolment: ``enroll-id utt1 utt2 ...`` (spk2utt-style); without one, each enroll id is itself an
  utterance with one vector.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sidkd.errors import DataError
from sidkd.io.datadir import atomic_write_text, read_table

__all__ = ["Trials", "read_trials", "read_scores", "write_scores", "scores_for_trials", "read_enrolment", "describe_missing"]

LABELS = {"target": True, "nontarget": False}


@dataclass
class Trials:
    enroll: list[str]
    test: list[str]
    is_target: np.ndarray | None  # bool per trial, None when the file has no label column
    path: str = ""

    def __len__(self) -> int:
        return len(self.enroll)


def _split_lines(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot open ({exc.strerror})") from exc
    rows = [line.split() for line in text.splitlines()]
    if not rows:
        raise DataError(f"{path}: file is empty")
    return rows


def read_trials(path: str, require_labels: bool = False) -> Trials:
    rows = _split_lines(path)
    widths = {len(r) for r in rows}
    if widths not in ({2}, {3}):
        for number, row in enumerate(rows, 1):
            if len(row) != len(rows[0]) or len(row) not in (2, 3):
                raise DataError(f"{path}:{number}: expected 'enroll test [target|nontarget]', got {' '.join(row)!r}")
    has_labels = len(rows[0]) == 3
    if require_labels and not has_labels:
        raise DataError(f"{path}: trials have no target|nontarget column")
    is_target = None
    if has_labels:
        try:
            is_target = np.fromiter((LABELS[r[2]] for r in rows), dtype=bool, count=len(rows))
        except KeyError:
            for number, row in enumerate(rows, 1):
                if row[2] not in LABELS:
                    raise DataError(f"{path}:{number}: label must be target or nontarget, got {row[2]!r}") from None
        if not is_target.any():
            raise DataError(f"{path}: no target trials (all {len(rows)} lines are nontarget)")
        if is_target.all():
            raise DataError(f"{path}: no nontarget trials (all {len(rows)} lines are target)")
    return Trials([r[0] for r in rows], [r[1] for r in rows], is_target, path)


def read_scores(path: str) -> tuple[list[str], list[str], np.ndarray]:
    rows = _split_lines(path)
    scores = np.empty(len(rows))
    for number, row in enumerate(rows, 1):
        if len(row) != 3:
            raise DataError(f"{path}:{number}: expected 'enroll test score', got {' '.join(row)!r}")
        try:
            scores[number - 1] = float(row[2])
        except ValueError:
            raise DataError(f"{path}:{number}: score is not a number: {row[2]!r}") from None
    if not np.all(np.isfinite(scores)):
        number = int(np.argmin(np.isfinite(scores))) + 1
        raise DataError(f"{path}:{number}: score is NaN or inf")
    return [r[0] for r in rows], [r[1] for r in rows], scores


def write_scores(path: str, enroll: list[str], test: list[str], scores: np.ndarray) -> None:
    # 9 significant digits: fixed decimals would tie cosine scores that differ below 1e-6.
    lines = [f"{e} {t} {s:.9g}\n" for e, t, s in zip(enroll, test, np.asarray(scores, dtype=np.float64))]
    atomic_write_text(path, "".join(lines))


def describe_missing(keys: list[str], what: str, limit: int = 5) -> str:
    shown = " ".join(keys[:limit])
    more = " ..." if len(keys) > limit else ""
    return f"{len(keys)} {what}: {shown}{more}"


def scores_for_trials(trials: Trials, scores_path: str) -> np.ndarray:
    """The score of every trial, in trial order; every trial must be scored exactly once."""
    enroll, test, values = read_scores(scores_path)
    if enroll == trials.enroll and test == trials.test:
        return values  # the usual case: scores written in trial order
    table: dict[tuple[str, str], float] = {}
    for number, pair in enumerate(zip(enroll, test), 1):
        if pair in table:
            raise DataError(f"{scores_path}:{number}: duplicate score for trial {pair[0]} {pair[1]}")
        table[pair] = values[number - 1]
    missing = [f"{e}/{t}" for e, t in zip(trials.enroll, trials.test) if (e, t) not in table]
    if missing:
        raise DataError(f"{scores_path}: no score for " + describe_missing(missing, f"of the {len(trials)} trials in {trials.path}"))
    if len(table) > len(trials):
        logging.getLogger(__name__).warning("%s: %d scores are for pairs not in %s (ignored)",
                                            scores_path, len(table) - len(trials), trials.path)
    return np.array([table[pair] for pair in zip(trials.enroll, trials.test)])


def read_enrolment(path: str) -> dict[str, list[str]]:
    """``enroll-id utt1 utt2 ...`` lines; ids unique (order not checked), each utt listed once per id."""
    enrolment: dict[str, list[str]] = {}
    for key, rest in read_table(path, min_fields=2, check_sorted=False):
        utts = rest.split()
        if len(set(utts)) != len(utts):
            raise DataError(f"{path}: enrolment {key!r} lists an utterance twice")
        enrolment[key] = utts
    return enrolment
