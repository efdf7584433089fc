"""Scorers (cosine, PLDA) and trial scoring with enrolments of one or more utterances.

A scorer turns raw vectors into its own space (``prepare``), builds enrolment models from groups of
prepared vectors (``enrol``), readies single test vectors (``test_side``) and scores every
(enrolment, test) pair as a matrix (``score``). Trials are scored by enrolment blocks with matrix
products, so there is no Python loop per trial. All-pairs trials (the recipe's test sets) score each
block against every test utterance; sparse trials (sampled, a small share of all pairs) score each
small block against only the test utterances its trials name, so that the work grows with the
trials, not with enrolments x test utterances.

Cosine: x − mean, unit length; an enrolment is the mean of its unit vectors, scaled to unit length
again (so the score stays a cosine). PLDA: x − mean, optional LDA, optional length normalisation to
sqrt(dim), then the PLDA transform; an enrolment of n vectors is the mean of their transformed
vectors with num_utts = n (Kaldi's ivector-plda-scoring with --num-utts).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sidkd.backend.lda import Lda
from sidkd.backend.plda import Plda
from sidkd.backend.vectors import VectorTable, check_dims, length_normalize, load_mean, subtract_mean
from sidkd.errors import DataError
from sidkd.io.trials import describe_missing

__all__ = ["Enrolled", "CosineScorer", "PldaScorer", "enrol_groups", "score_pairs", "add_scorer_options", "scorer_from_options"]

logger = logging.getLogger(__name__)
_BLOCK_ELEMENTS = 20_000_000  # enrolment rows × test columns scored at once
# trials that name fewer than this share of the enrolment x test pairs are scored sparsely, in blocks
# of _SPARSE_BLOCK enrolments against the columns their trials need
_SPARSE_SHARE = 0.25
_SPARSE_BLOCK = 256


@dataclass
class Enrolled:
    vectors: np.ndarray  # one row per enrolment
    num_utts: np.ndarray  # vectors averaged into each row


def _group_means(prepared: np.ndarray, groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.array([g.size for g in groups], dtype=np.int64)
    owner = np.repeat(np.arange(len(groups)), sizes)
    sums = np.zeros((len(groups), prepared.shape[1]))
    np.add.at(sums, owner, prepared[np.concatenate(groups)])
    return sums / sizes[:, None], sizes


class CosineScorer:
    name = "cosine"

    def __init__(self, mean: np.ndarray | None = None):
        self.mean = mean

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        if self.mean is not None:
            vectors = subtract_mean(vectors, self.mean)
        return length_normalize(vectors, 1.0)

    def enrol(self, prepared: np.ndarray, groups: list[np.ndarray]) -> Enrolled:
        means, sizes = _group_means(prepared, groups)
        return Enrolled(length_normalize(means, 1.0), sizes)

    def test_side(self, prepared: np.ndarray) -> np.ndarray:
        return prepared

    def score(self, enrolled: Enrolled, test: np.ndarray) -> np.ndarray:
        return enrolled.vectors @ test.T


class PldaScorer:
    name = "plda"

    def __init__(self, plda: Plda, mean: np.ndarray | None = None, lda: Lda | None = None,
                 length_norm: bool = True, normalize_length: bool = True):
        self.plda, self.mean, self.lda = plda, mean, lda
        self.length_norm, self.normalize_length = length_norm, normalize_length
        if lda is not None:
            check_dims(plda.dim, lda.out_dim, "PLDA after LDA")
        if mean is not None and lda is not None:
            check_dims(lda.in_dim, mean.size, "LDA after mean")

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        """Everything before the PLDA's per-enrolment normalisation (shared by all sides)."""
        if self.mean is not None:
            vectors = subtract_mean(vectors, self.mean)
        if self.lda is not None:
            vectors = self.lda.apply(vectors)
        if self.length_norm:
            vectors = length_normalize(vectors)
        return self.plda.transform_vectors(vectors)

    def _finish(self, transformed: np.ndarray, num_utts) -> np.ndarray:
        if self.normalize_length:
            return self.plda.normalize_length(transformed, num_utts)
        return transformed

    def enrol(self, prepared: np.ndarray, groups: list[np.ndarray]) -> Enrolled:
        means, sizes = _group_means(prepared, groups)
        return Enrolled(self._finish(means, sizes), sizes)

    def test_side(self, prepared: np.ndarray) -> np.ndarray:
        return self._finish(prepared, 1)

    def score(self, enrolled: Enrolled, test: np.ndarray) -> np.ndarray:
        return self.plda.llr_matrix(enrolled.vectors, enrolled.num_utts, test)


def enrol_groups(enrol_ids: list[str], enrolment: dict[str, list[str]] | None, vectors: VectorTable) -> list[np.ndarray]:
    """Rows of ``vectors`` for each enrolment id; without an enrolment map an id is one utterance."""
    if enrolment is None:
        missing = [e for e in enrol_ids if e not in vectors.index]
        if missing:
            raise DataError(f"{vectors.source}: no vector for " + describe_missing(missing, "enrolment utterances named in the trials")
                            + " (if these are speakers, give an enrolment file: 'enroll-id utt1 utt2 ...')")
        return [row[None] for row in vectors.rows(enrol_ids)]
    unknown = [e for e in enrol_ids if e not in enrolment]
    if unknown:
        raise DataError("enrolment list has no entry for " + describe_missing(unknown, "enrolment ids named in the trials"))
    utts = [u for e in enrol_ids for u in enrolment[e]]
    rows = vectors.rows(list(dict.fromkeys(utts)), "enrolment utterances")
    position = dict(zip(dict.fromkeys(utts), rows))
    return [np.array([position[u] for u in enrolment[e]], dtype=np.int64) for e in enrol_ids]


def unique_index(keys: list[str]) -> tuple[list[str], np.ndarray]:
    """Distinct keys in first-seen order, and each key's index into them."""
    order: dict[str, int] = {}
    index = np.fromiter((order.setdefault(k, len(order)) for k in keys), dtype=np.int64, count=len(keys))
    return list(order), index


def score_pairs(scorer, enroll: list[str], test: list[str], enrol_vectors: VectorTable, test_vectors: VectorTable,
                enrolment: dict[str, list[str]] | None = None) -> np.ndarray:
    """Score of every (enroll[i], test[i]) pair, in order."""
    if enrol_vectors.dim != test_vectors.dim:
        raise DataError(f"enrolment vectors ({enrol_vectors.source}) have dimension {enrol_vectors.dim}, "
                        f"test vectors ({test_vectors.source}) {test_vectors.dim}")
    enrol_ids, enrol_index = unique_index(enroll)
    test_ids, test_index = unique_index(test)
    groups = enrol_groups(enrol_ids, enrolment, enrol_vectors)
    test_rows = test_vectors.rows(test_ids, "test utterances named in the trials")
    needed = np.unique(np.concatenate(groups))
    local = np.full(enrol_vectors.matrix.shape[0], -1, dtype=np.int64)
    local[needed] = np.arange(needed.size)
    enrolled = scorer.enrol(scorer.prepare(enrol_vectors.matrix[needed]), [local[g] for g in groups])
    test_side = scorer.test_side(scorer.prepare(test_vectors.matrix[test_rows]))
    scores = np.empty(len(enroll))
    sparse = len(enroll) < _SPARSE_SHARE * len(enrol_ids) * len(test_ids)
    block = _SPARSE_BLOCK if sparse else max(1, _BLOCK_ELEMENTS // max(1, len(test_ids)))
    order = np.argsort(enrol_index, kind="stable")
    bounds = np.searchsorted(enrol_index[order], np.arange(0, len(enrol_ids) + block, block))
    for start, (lo, hi) in zip(range(0, len(enrol_ids), block), zip(bounds[:-1], bounds[1:])):
        stop = min(start + block, len(enrol_ids))
        part = Enrolled(enrolled.vectors[start:stop], enrolled.num_utts[start:stop])
        trials = order[lo:hi]
        if sparse:
            columns, column_of = np.unique(test_index[trials], return_inverse=True)
            matrix = scorer.score(part, test_side[columns])
        else:
            column_of, matrix = test_index[trials], scorer.score(part, test_side)
        scores[trials] = matrix[enrol_index[trials] - start, column_of]
    logger.info("scored %d trials: %d enrolments x %d test utterances%s", len(enroll), len(enrol_ids), len(test_ids),
                " (sparse: each block against the test utterances its trials name)" if sparse else "")
    return scores


def add_scorer_options(parser, plda_option: bool) -> None:
    """Options naming a scorer's model files (shared by score_cosine, score_plda, apply_as_norm)."""
    parser.add_argument("--mean", default="", help="mean vector (.npz from compute_mean_vector) subtracted first")
    if plda_option:
        parser.add_argument("--lda", default="", help="LDA transform (.npz from compute_lda), applied after the mean")
        parser.add_bool("--length-norm", True, "scale vectors to norm sqrt(dim) before the PLDA (after LDA)")
        parser.add_bool("--normalize-length", True, "Kaldi's --normalize-length of ivector-plda-scoring")


def scorer_from_options(kind: str, args, plda_path: str = ""):
    mean = load_mean(args.mean) if args.mean else None
    if kind == "cosine":
        return CosineScorer(mean)
    if kind == "plda":
        if not plda_path:
            raise DataError("the PLDA scorer needs a PLDA model")
        lda = Lda.load(args.lda) if args.lda else None
        return PldaScorer(Plda.load(plda_path), mean, lda, args.length_norm, args.normalize_length)
    raise DataError(f"unknown scorer {kind!r}: expected cosine or plda")


def read_enrol_and_test(enrol_rspec: str, test_rspec: str) -> tuple[VectorTable, VectorTable]:
    from sidkd.backend.vectors import read_vectors

    enrol_vectors = read_vectors(enrol_rspec)
    test_vectors = enrol_vectors if test_rspec == enrol_rspec else read_vectors(test_rspec)
    return enrol_vectors, test_vectors


def score_trials_file(scorer, enrol_rspec: str, test_rspec: str, trials_path: str, scores_path: str,
                      enrolment_path: str = "") -> None:
    """Score a trials file (``enroll test [label]``) and write ``enroll test score`` in trial order."""
    from sidkd.io.trials import read_enrolment, read_trials, write_scores

    trials = read_trials(trials_path)
    enrolment = read_enrolment(enrolment_path) if enrolment_path else None
    enrol_vectors, test_vectors = read_enrol_and_test(enrol_rspec, test_rspec)
    scores = score_pairs(scorer, trials.enroll, trials.test, enrol_vectors, test_vectors, enrolment)
    write_scores(scores_path, trials.enroll, trials.test, scores)
