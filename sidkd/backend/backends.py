"""The recipe's scoring back-ends, one registry: for each, the model it scores with, the step that
scores, the scorer of its AS-norm, and its column name in results tables (exp/results.tsv and the
study ledgers). local/score_backends.sh, run.sh's tables (through sidkd.bin.backends) and
local/run_study.py all read it, so a new back-end is one class here (docs/backend.md).

Model kinds, as local/score_backends.sh passes them: ``train-vectors`` (the training vectors' scp:
the cosine step subtracts their mean), ``plda-dir`` (what steps/train_plda.sh wrote: mean, LDA and
PLDA at the LDA dimension in its lda_dim file).
"""

from __future__ import annotations

import re

from sidkd.registry import Registry

__all__ = ["BACKENDS", "Backend", "ASNORM", "columns", "backend_of_column"]

BACKENDS = Registry("back-end")
ASNORM = "+asnorm"  # the column of a back-end's AS-normed scores: its name and this


class Backend:
    name = ""
    model = ""  # train-vectors | plda-dir
    score_step = ""
    norm_scorer = ""  # steps/score_norm.sh --scorer
    norm_model = False  # whether score_norm.sh gets --model-dir (the model dir of plda-dir)
    shape = ""  # its column for people: the name, or with <D> for the LDA dimension

    @classmethod
    def column(cls, lda_dim: int) -> str:
        return cls.name

    @classmethod
    def pattern(cls) -> str:
        """Its columns at any LDA dimension, as a regular expression."""
        return re.escape(cls.name)


@BACKENDS.register
class Cosine(Backend):
    name = shape = "cosine"
    model = "train-vectors"
    score_step = "steps/score_cosine.sh"
    norm_scorer = "cosine"


@BACKENDS.register
class LdaPlda(Backend):
    name = "plda"
    shape = "lda<D>+plda"
    model = "plda-dir"
    score_step = "steps/score_plda.sh"
    norm_scorer = "plda"
    norm_model = True

    @classmethod
    def column(cls, lda_dim: int) -> str:
        return f"lda{lda_dim}+plda"

    @classmethod
    def pattern(cls) -> str:
        return r"lda[0-9]+\+plda"


def columns(lda_dim: int, asnorm: bool = True, each_then_norm: bool = False) -> list[str]:
    """The columns of every back-end at ``lda_dim``: the plain ones then the AS-normed ones, or
    (``each_then_norm``) each back-end followed by its AS-normed column."""
    plain = [backend.column(lda_dim) for backend in BACKENDS.values()]
    if not asnorm:
        return plain
    if each_then_norm:
        return [c for p in plain for c in (p, p + ASNORM)]
    return plain + [p + ASNORM for p in plain]


def backend_of_column(column: str) -> tuple[type[Backend] | None, bool]:
    """(the back-end whose column this is, whether AS-normed); (None, False) for no back-end's."""
    normed = column.endswith(ASNORM)
    plain = column[: -len(ASNORM)] if normed else column
    for backend in BACKENDS.values():
        if re.fullmatch(backend.pattern(), plain):
            return backend, normed
    return None, False
