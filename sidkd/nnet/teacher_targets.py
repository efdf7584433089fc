"""What the student is distilled towards: the teacher targets of ``loss.kd.target`` (docs/student.md).

The teacher's raw i-vector is total variability (speaker, channel and content together); the other
targets move the target into the teacher's speaker subspace, onto the speaker, or onto the very crop
the student sees. Every target is built once, before training, from the training teacher vectors:

- ``ivector``:          t_u, the utterance's i-vector (the original recipe).
- ``lda``:              L (t_u − μ), the LDA of the training i-vectors (sidkd.backend.lda, the space the
                        teacher's PLDA scores in). ``lda.whiten: true``: Kaldi's LDA, within-class
                        covariance the identity; false: the orthogonal projection onto the same
                        subspace (coordinates in an orthonormal basis of L's rows), i-vector scale kept.
- ``speaker_mean``:     m_s = n(mean_{u ∈ s} n(t_u − μ)) for the utterance's speaker s, n(x) = x/‖x‖:
                        no channel or content of the one utterance is left in the target (a
                        speaker of one utterance has none: below).
- ``speaker_mean_lda``: the same over the LDA-projected vectors.
- ``crop``:             the i-vector of the crop the student sees: crops come only from the fixed
                        positions of a crops file (steps/extract_crop_ivectors.sh), each with its own
                        i-vector ``<utt>-crop<k>``.
- ``crop_lda``:         the same, LDA-projected (LDA trained on the crop i-vectors).
- ``relation``:         no projection head: the student's batch cosine-similarity matrix is matched to
                        the teacher's, computed from the LDA-projected, length-normalised vectors of
                        the same crops' utterances (``relation.loss``: mse over the off-diagonal
                        entries, or kl between the rows' softmax at ``relation.temperature``).

After this, the per-utterance targets go through the fixed ``normalisation`` of TeacherDistillation
(``relation`` normalises itself).

Absent targets: the speaker mean of a speaker with one utterance is that utterance's own vector, the
very channel and content the target is to leave out (LibriSpeech adds 251 such speakers to
data/train). Those rows get no target: a row of NaN, which the distillation head of the speaker-mean
targets (TeacherDistillation with ``skip_absent``) leaves out of the loss, as the transfer leaves out
an utterance without a teacher vector. Their utterances still train the AAM head; the log counts them.

Each target is one class, registered under its name in ``TARGETS`` (name -> KDTarget subclass):
whether it is LDA-projected or of the fixed crops, how it turns the vectors into targets, and which
distillation module it trains with.
"""

from __future__ import annotations

import logging
import os
from typing import ClassVar

import numpy as np
from torch import nn

from sidkd.backend.lda import compute_lda
from sidkd.errors import DataError
from sidkd.io.ark import iter_archive
from sidkd.nnet.data import TrainingAudio, load_teacher_vectors, teacher_vector
from sidkd.nnet.losses import RelationDistillation, TeacherDistillation
from sidkd.registry import Registry

__all__ = ["TARGETS", "KDTarget", "register_target", "lookup_target", "check_target", "target_uses_crops",
           "lda_projection", "speaker_means", "speaker_mean_targets", "present_rows",
           "read_crops", "CropTeacher", "build_targets",
           "build_kd_head", "crop_starts", "prepare_teacher", "default_crops_path"]

log = logging.getLogger(__name__)



def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-30)


def lda_projection(vectors: np.ndarray, labels: np.ndarray, dim: int, whiten: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(matrix (dim, R), offset (dim,)) of y = matrix·t + offset, trained on (vectors, speaker labels).

    whiten: Kaldi's LDA (within-class covariance of y the identity). Otherwise the orthogonal
    projection onto the same dim-dimensional subspace, in an orthonormal basis of it (so distances
    inside the subspace are the i-vectors' own)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    lda = compute_lda(vectors, labels, dim)
    if whiten:
        return lda.matrix, lda.offset
    basis, _ = np.linalg.qr(lda.matrix.T)  # (R, dim), columns orthonormal, same span as L's rows
    matrix = basis.T
    return matrix, -matrix @ vectors.mean(axis=0)


def speaker_means(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row, the unit-length mean of the unit-length, centred vectors of its speaker (N, R)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    labels = np.asarray(labels)
    unit = _unit(vectors - vectors.mean(axis=0))
    out = np.empty_like(unit)
    for label in np.unique(labels):
        rows = labels == label
        out[rows] = _unit(unit[rows].mean(axis=0))
    return out


def speaker_mean_targets(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """speaker_means, with the rows of a speaker of one row absent (NaN): that speaker's mean is the
    row's own vector, so it would carry the channel and content the target is to leave out."""
    out = speaker_means(vectors, labels)
    _, speaker_of_row, rows_of_speaker = np.unique(np.asarray(labels), return_inverse=True, return_counts=True)
    out[rows_of_speaker[speaker_of_row] == 1] = np.nan
    return out


def present_rows(targets: np.ndarray) -> np.ndarray:
    """The rows that have a target (an absent one is a row of NaN)."""
    return np.isfinite(targets).all(axis=1)


def crop_starts(num_frames: int, crop_frames: int, num_crops: int) -> list[int]:
    """The fixed crop positions of an utterance of ``num_frames`` frames: ``num_crops`` starts spread
    evenly from the first to the last possible one (duplicates dropped); one start (0, the whole
    utterance) when it is no longer than a crop."""
    if num_frames <= crop_frames or num_crops <= 1:
        return [0] if num_frames <= crop_frames else [(num_frames - crop_frames) // 2]
    starts = np.rint(np.linspace(0, num_frames - crop_frames, num_crops)).astype(int)
    return sorted(set(int(s) for s in starts))


def read_crops(path: str) -> dict[str, tuple[str, int, int]]:
    """crop key -> (utterance, start frame, number of frames) from lines ``<crop> <utt> <start> <num>``."""
    crops: dict[str, tuple[str, int, int]] = {}
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such crops file (made by steps/extract_crop_ivectors.sh)")
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 4:
                raise DataError(f"{path}:{number}: expected '<crop> <utt> <start-frame> <num-frames>', got {line.strip()!r}")
            try:
                start, count = int(fields[2]), int(fields[3])
            except ValueError:
                raise DataError(f"{path}:{number}: start and length must be integers, got {line.strip()!r}") from None
            if start < 0 or count < 1:
                raise DataError(f"{path}:{number}: crop {fields[0]!r} has start {start} and length {count}")
            if fields[0] in crops:
                raise DataError(f"{path}:{number}: duplicate crop key {fields[0]!r}")
            crops[fields[0]] = (fields[1], start, count)
    if not crops:
        raise DataError(f"{path}: no crops")
    return crops


def read_frame_shift(crops_path: str) -> float:
    """Seconds per frame of a crops file's positions: the ``frame_shift`` file beside it (as in a
    Kaldi data dir)."""
    path = os.path.join(os.path.dirname(crops_path) or ".", "frame_shift")
    try:
        with open(path, encoding="utf-8") as handle:
            value = float(handle.read().strip())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the frame shift of {crops_path} ({exc})") from None
    if value <= 0:
        raise DataError(f"{path}: frame shift must be > 0, got {value}")
    return value


class CropTeacher:
    """The crops the student may see, each with its teacher vector: for utterance i,
    ``positions[i]`` is a list of (start sample, row of ``vectors``)."""

    def __init__(self, crops_path: str, teacher_rspec: str, utts: list[str], sample_rate: int, chunk_samples: int):
        crops = read_crops(crops_path)
        frame_shift = read_frame_shift(crops_path)
        samples_per_frame = frame_shift * sample_rate
        chunk_frames = chunk_samples / samples_per_frame
        index = {u: i for i, u in enumerate(utts)}
        rows: list[np.ndarray] = []
        self.positions: list[list[tuple[int, int]]] = [[] for _ in utts]
        self.keys: list[str] = []
        dim = None
        for key, vector in iter_archive(teacher_rspec):
            if key not in crops:
                continue
            utt, start, count = crops[key]
            if utt not in index:
                continue
            # A crop must be what the student's slice is: the chunk length, or (start 0) a whole
            # utterance shorter than a chunk, which the student sees repeated end to end.
            if abs(count - chunk_frames) > 0.5 and not (start == 0 and count < chunk_frames):
                raise DataError(f"{crops_path}: crop {key!r} is {count} frames ({count * frame_shift:g} s), the "
                                f"student's chunks are {chunk_frames:g} frames (features.chunk_seconds)")
            vector = teacher_vector(teacher_rspec, key, vector, dim)
            dim = len(vector)
            self.positions[index[utt]].append((int(round(start * samples_per_frame)), len(rows)))
            rows.append(vector)
            self.keys.append(key)
        if dim is None:
            raise DataError(f"{teacher_rspec}: no vector for any crop of {crops_path} of a training utterance")
        for pos in self.positions:
            pos.sort()
        self.vectors = np.stack(rows)
        self.present = np.array([bool(p) for p in self.positions])
        self.chunk_samples = chunk_samples

    def keep(self, mask: np.ndarray) -> None:
        """Follow TrainingAudio.keep: drop the utterances where mask is False."""
        self.positions = [p for p, k in zip(self.positions, mask) if k]
        self.present = self.present[mask]

    def row_utterances(self) -> np.ndarray:
        """The utterance index of every row of ``vectors`` (for the LDA's speaker labels)."""
        owner = np.empty(len(self.vectors), dtype=np.int64)
        for utt, pos in enumerate(self.positions):
            for _, row in pos:
                owner[row] = utt
        return owner

    def draw(self, utt: int, samples: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """(crop samples float32, teacher row): one of the utterance's fixed crops, uniformly."""
        start, row = self.positions[utt][int(rng.integers(len(self.positions[utt])))]
        length = self.chunk_samples
        if len(samples) < length:  # a short utterance (its one crop starts at 0), repeated end to end
            return np.tile(samples, -(-length // len(samples)))[:length].astype(np.float32), row
        # frame rounding can put the end up to half a frame past the audio: slide back
        start = min(start, len(samples) - length)
        return samples[start:start + length].astype(np.float32), row


def default_crops_path(teacher_rspec: str) -> str:
    """The crops file beside the teacher scp (steps/extract_crop_ivectors.sh writes both)."""
    kind, sep, path = teacher_rspec.partition(":")
    return os.path.join(os.path.dirname(path if sep else kind) or ".", "crops")


class KDTarget:
    """One value of ``loss.kd.target``: what the student's projection P z is pulled towards.

    ``uses_lda``: the teacher vectors go through the LDA of ``loss.kd.lda`` first (build_targets);
    ``uses_crops``: the vectors are those of the fixed crops the student sees (CropTeacher), one per
    crop, not one per utterance. A subclass names itself (``name``) and registers with
    @register_target."""

    name: ClassVar[str] = ""
    uses_lda: ClassVar[bool] = False
    uses_crops: ClassVar[bool] = False

    def targets(self, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The targets (N, d) of the vectors ``x`` (N, d) float64 (after the LDA when ``uses_lda``) and
        their speaker labels; a row of NaN has no target."""
        return x

    def head(self, kd_conf: dict, embedding_dim: int, targets: np.ndarray) -> nn.Module:
        """The distillation module: projection + MSE of TeacherDistillation, its normaliser fitted on
        the targets."""
        kd = TeacherDistillation(embedding_dim, targets.shape[1], kd_conf["normalisation"])
        kd.normalizer.fit(targets)
        return kd


# name -> KDTarget subclass, in the order of docs/student.md; iterating gives the names.
TARGETS = Registry("teacher target")
register_target = TARGETS.register


def lookup_target(name) -> type[KDTarget]:
    """The class of the target ``name`` (a ``loss.kd.target`` value)."""
    if not isinstance(name, str) or name not in TARGETS:
        raise DataError(f"unknown teacher target loss.kd.target={name!r}; set it to one of: {', '.join(TARGETS)}")
    return TARGETS[name]


def check_target(name) -> str:
    """``name`` when it is a known target, else the error of lookup_target."""
    lookup_target(name)
    return name


def target_uses_crops(name) -> bool:
    """Whether the target ``name`` reads the crops file (and the crop i-vectors) instead of one
    vector per utterance."""
    return lookup_target(name).uses_crops


def _kd_target(kd_conf: dict) -> KDTarget:
    return lookup_target(kd_conf["target"])()


@register_target
class IvectorTarget(KDTarget):
    name = "ivector"


@register_target
class LdaTarget(KDTarget):
    name = "lda"
    uses_lda = True


@register_target
class SpeakerMeanTarget(KDTarget):
    name = "speaker_mean"

    def targets(self, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
        out = speaker_mean_targets(x, labels)
        absent = ~present_rows(out)
        if absent.all():
            raise DataError(f"loss.kd.target={self.name}: every speaker of the training data has one utterance "
                            f"with a teacher vector, so no utterance has a speaker-mean target; choose another "
                            f"loss.kd.target")
        log.info("teacher targets %s: %d of %d utterances are the only one of their speaker (%d speakers): "
                 "no target, no distillation term for them", self.name, int(absent.sum()), len(out),
                 len(np.unique(np.asarray(labels)[absent])))
        return out

    def head(self, kd_conf: dict, embedding_dim: int, targets: np.ndarray) -> nn.Module:
        kd = TeacherDistillation(embedding_dim, targets.shape[1], kd_conf["normalisation"], skip_absent=True)
        kd.normalizer.fit(targets[present_rows(targets)])
        return kd


@register_target
class SpeakerMeanLdaTarget(SpeakerMeanTarget):
    name = "speaker_mean_lda"
    uses_lda = True


@register_target
class CropTarget(KDTarget):
    name = "crop"
    uses_crops = True


@register_target
class CropLdaTarget(CropTarget):
    name = "crop_lda"
    uses_lda = True


@register_target
class RelationTarget(KDTarget):
    name = "relation"
    uses_lda = True

    def head(self, kd_conf: dict, embedding_dim: int, targets: np.ndarray) -> nn.Module:
        # no projection: the loss compares similarity matrices, each in its own space
        rel = kd_conf["relation"]
        return RelationDistillation(rel["loss"], float(rel["temperature"]))


def prepare_teacher(kd_conf: dict, teacher_rspec: str, audio: TrainingAudio, chunk_samples: int,
                    crops_path: str | None = None) -> tuple[np.ndarray, CropTeacher | None]:
    """(targets, CropTeacher or None) of ``loss.kd.target``. Utterances without a teacher vector (for
    the crop targets: without any crop vector) are dropped from ``audio``, named and counted."""
    target = _kd_target(kd_conf)
    crop_teacher = None
    if target.uses_crops:
        crops_path = crops_path or default_crops_path(teacher_rspec)
        crop_teacher = CropTeacher(crops_path, teacher_rspec, audio.utts, audio.sample_rate, chunk_samples)
        present = crop_teacher.present
    else:
        vectors, present = load_teacher_vectors(teacher_rspec, audio.utts)
    missing = int((~present).sum())
    for utt in np.array(audio.utts)[~present][:20]:
        log.warning("no teacher vector for %s: skipped", utt)
    log.info("teacher vectors from %s: %d utterances in, %d kept + %d skipped for lack of one",
             teacher_rspec, len(present), int(present.sum()), missing)
    audio.keep(present)
    if crop_teacher is not None:
        crop_teacher.keep(present)
        log.info("teacher target %s: %d crops from %s, %.2f per utterance", target.name, len(crop_teacher.vectors),
                 crops_path, len(crop_teacher.vectors) / max(1, int(present.sum())))
        return build_targets(kd_conf, crop_teacher.vectors, audio.labels[crop_teacher.row_utterances()]), crop_teacher
    return build_targets(kd_conf, vectors[present], audio.labels), None


def build_targets(kd_conf: dict, vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The training targets (N, d) float32 of ``loss.kd.target`` from the teacher vectors (N, R) of
    the training rows (utterances, or crops for the crop targets) and their speaker labels; a row of
    NaN has no target."""
    target = _kd_target(kd_conf)
    x = np.asarray(vectors, dtype=np.float64)
    if target.uses_lda:
        lda_conf = kd_conf["lda"]
        dim, whiten = int(lda_conf["dim"]), bool(lda_conf["whiten"])
        if dim > x.shape[1]:
            raise DataError(f"loss.kd.lda.dim {dim} exceeds the teacher dimension {x.shape[1]}; set it to at most "
                            f"{x.shape[1]}")
        matrix, offset = lda_projection(x, labels, dim, whiten)
        x = x @ matrix.T + offset
        log.info("teacher targets %s: LDA %d -> %d (%s) on %d vectors of %d speakers", target.name, vectors.shape[1],
                 dim, "within-class whitened" if whiten else "orthogonal projection", len(x),
                 len(np.unique(labels)))
    return target.targets(x, labels).astype(np.float32)


def build_kd_head(kd_conf: dict, embedding_dim: int, targets: np.ndarray) -> nn.Module:
    """The distillation module of ``loss.kd.target`` (KDTarget.head)."""
    return _kd_target(kd_conf).head(kd_conf, embedding_dim, targets)
