"""Speaker verification on new recordings: speaker models, the decision threshold, and the score.

The score is the recipe's cosine back-end (sidkd.backend.scoring.CosineScorer, as in
steps/score_cosine.sh): subtract the mean of the training embeddings, scale to unit length; the
enrolment is the mean of the enrolment recordings' unit vectors, scaled to unit length again; the
score is the dot product with the test recording's unit vector. A trial is accepted when
score >= threshold (the convention of sidkd.metrics.rates).

Two files, both sidkd npz (sidkd/io/npz.py: arrays + JSON header, no pickle, written atomically):

- ``verify.npz`` (format ``sidkd-verify-backend``, version 1): array ``mean`` (the training mean the
  dev scores were computed with); header ``threshold``, ``criterion`` (``eer`` or ``fa=<rate>``),
  the dev operating point (``dev_p_miss``, ``dev_p_fa``, ``dev_eer``), trial counts, where the
  trials and scores came from, and ``embedder`` (sha256 of the network file).
- ``speakers/<name>.npz`` (format ``sidkd-speaker``, version 1): array ``embeddings`` (one raw
  embedding per enrolment recording, float32), and ``mean_embedding`` (their mean); header
  ``name``, ``files``, ``embedder``. Raw embeddings are kept so that a new calibration (another
  mean) needs no new enrolment; a speaker enrolled with another network is refused.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from sidkd.backend.scoring import CosineScorer
from sidkd.errors import DataError
from sidkd.io.npz import load_npz, save_npz
from sidkd.metrics.rates import det_points, equal_error_rate

__all__ = ["Calibration", "SpeakerModel", "choose_threshold", "verification_scores", "file_digest",
           "check_speaker_name", "BACKEND_FORMAT", "SPEAKER_FORMAT"]

BACKEND_FORMAT = "sidkd-verify-backend"
SPEAKER_FORMAT = "sidkd-speaker"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def file_digest(path: str) -> str:
    """sha256 of a file's bytes: ties speaker models and thresholds to one trained network."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_speaker_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise DataError(f"speaker name {name!r}: use letters, digits, '_', '.', '-' (it names a file)")
    return name


def choose_threshold(target: np.ndarray, nontarget: np.ndarray, target_fa: float | None) -> dict:
    """The threshold and its dev operating point.

    ``target_fa`` None: the EER threshold (sidkd.metrics.rates.equal_error_rate). Otherwise the
    lowest threshold whose false-alarm rate on the dev nontarget trials is <= target_fa (the most
    accepting one that keeps the false-alarm rate), taken among the distinct dev scores.
    """
    eer, eer_threshold = equal_error_rate(target, nontarget)
    if target_fa is None:
        threshold, criterion = eer_threshold, "eer"
    else:
        if not 0.0 < target_fa < 1.0:
            raise DataError(f"target false-alarm rate must be in (0, 1), got {target_fa}")
        points = det_points(target, nontarget)
        finite = np.isfinite(points.thresholds)
        ok = np.flatnonzero((points.p_fa <= target_fa) & finite)
        if ok.size == 0:
            raise DataError(f"no threshold reaches a false-alarm rate <= {target_fa} on the "
                            f"{np.size(nontarget)} dev nontarget trials")
        threshold, criterion = float(points.thresholds[ok[0]]), f"fa={target_fa:g}"
    target = np.asarray(target, dtype=np.float64)
    nontarget = np.asarray(nontarget, dtype=np.float64)
    return {"threshold": float(threshold), "criterion": criterion, "dev_eer": float(eer),
            "dev_p_miss": float(np.mean(target < threshold)), "dev_p_fa": float(np.mean(nontarget >= threshold)),
            "num_target": int(target.size), "num_nontarget": int(nontarget.size)}


@dataclass
class Calibration:
    mean: np.ndarray | None
    threshold: float
    info: dict

    def save(self, path: str) -> None:
        arrays = {} if self.mean is None else {"mean": np.asarray(self.mean, dtype=np.float64)}
        save_npz(path, BACKEND_FORMAT, 1, arrays, backend="cosine", **{**self.info, "threshold": self.threshold})

    @classmethod
    def load(cls, path: str) -> Calibration:
        header, arrays = load_npz(path, BACKEND_FORMAT)
        return cls(arrays.get("mean"), float(header["threshold"]), header)

    def scorer(self) -> CosineScorer:
        return CosineScorer(self.mean)


@dataclass
class SpeakerModel:
    name: str
    embeddings: np.ndarray  # (recordings, dim), raw
    files: list[str]
    embedder: str  # sha256 of the network file

    def save(self, path: str) -> None:
        emb = np.asarray(self.embeddings, dtype=np.float32)
        save_npz(path, SPEAKER_FORMAT, 1, {"embeddings": emb, "mean_embedding": emb.mean(axis=0)},
                 name=self.name, files=list(self.files), embedder=self.embedder, num_utts=int(len(emb)))

    @classmethod
    def load(cls, path: str) -> SpeakerModel:
        header, arrays = load_npz(path, SPEAKER_FORMAT)
        return cls(header["name"], arrays["embeddings"], list(header["files"]), header["embedder"])


def verification_scores(scorer: CosineScorer, enrolment: np.ndarray, tests: np.ndarray) -> np.ndarray:
    """Score of each test embedding (rows of ``tests``) against the speaker enrolled from the rows
    of ``enrolment``, with the recipe's scorer (one enrolment group of all its recordings)."""
    enrolment = np.atleast_2d(np.asarray(enrolment, dtype=np.float64))
    tests = np.atleast_2d(np.asarray(tests, dtype=np.float64))
    if enrolment.shape[1] != tests.shape[1]:
        raise DataError(f"speaker model has dimension {enrolment.shape[1]}, test embeddings {tests.shape[1]}")
    if scorer.mean is not None and scorer.mean.size != tests.shape[1]:
        raise DataError(f"the calibration's mean has dimension {scorer.mean.size}, embeddings {tests.shape[1]}: "
                        "calibrated with another model's scores?")
    enrolled = scorer.enrol(scorer.prepare(enrolment), [np.arange(len(enrolment))])
    return scorer.score(enrolled, scorer.test_side(scorer.prepare(tests)))[0]
