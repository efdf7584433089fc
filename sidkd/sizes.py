"""Sizes that fit the data: the recipe's sizes are made for its corpora (hundreds of speakers, hours
of speech); a corpus of a few speakers would stop on them, deep in a stage. Each size below is
decided once, from the data, with the reason logged; where the data allows the configured size it
is kept as it is, so the recipe's own corpora run with exactly their configured values.

- LDA dimension (the back-ends of run.sh, the *lda teacher targets): below the number of speakers
  (S speakers' between-class scatter has rank S - 1) and at most the vector dimension.
- A batch's speakers (``data.batch_size / data.utts_per_speaker``): at most the training speakers;
  utterances per speaker are raised so that the batch keeps its size (a transfer's batch: its
  target-domain part at most the target speakers, its replayed part at most the long-data speakers).
- The i-vector teacher: a warning, naming the setting to lower, when the voiced frames per Gaussian
  are too few to estimate its full covariance, or the i-vector has more dimensions than there are
  training utterances.
"""

from __future__ import annotations

import copy
import math

from sidkd.errors import DataError

__all__ = ["count_speakers", "fit_lda_dim", "fit_batch", "fit_student_config", "fit_transfer_batch",
           "fit_transfer_config", "teacher_warnings", "frames_per_gaussian_floor"]


def count_speakers(utt2spk: str, min_utts: int = 1) -> int:
    """Speakers of an utt2spk file with at least ``min_utts`` utterances."""
    counts: dict[str, int] = {}
    try:
        with open(utt2spk, encoding="utf-8") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) >= 2:
                    counts[fields[1]] = counts.get(fields[1], 0) + 1
    except OSError as exc:
        raise DataError(f"{utt2spk}: cannot read ({exc.strerror})") from None
    return sum(1 for n in counts.values() if n >= min_utts)


def fit_lda_dim(dim: int, speakers: int, vector_dim: int | None = None) -> tuple[int, str | None]:
    """(the LDA dimension to use, the reason when it is not ``dim``): below ``speakers``, at most
    ``vector_dim``."""
    limit = speakers - 1
    if vector_dim is not None and vector_dim < limit:
        limit = vector_dim
    if limit < 1:
        raise DataError(f"an LDA needs at least 2 speakers, the data has {speakers}")
    if dim <= limit:
        return dim, None
    if vector_dim is not None and limit == vector_dim:
        return limit, f"{dim} -> {limit}: the vectors have {vector_dim} dimensions"
    return limit, (f"{dim} -> {limit}: the data has {speakers} speakers and an LDA keeps at most one dimension "
                   f"fewer (the between-speaker scatter has rank {speakers - 1})")


def fit_batch(data_conf: dict, num_speakers: int) -> tuple[dict, str | None]:
    """(the ``data:`` section to use, the reason when it changed): a batch of at most
    ``num_speakers`` distinct speakers, each with enough crops to keep the batch's size."""
    batch, per_speaker = int(data_conf["batch_size"]), int(data_conf["utts_per_speaker"])
    speakers = batch // per_speaker
    if speakers <= num_speakers:
        return data_conf, None
    if num_speakers < 1:
        raise DataError("the training data has no speaker")
    new_per_speaker = math.ceil(batch / num_speakers)
    out = dict(data_conf, utts_per_speaker=new_per_speaker, batch_size=num_speakers * new_per_speaker)
    return out, (f"a batch of {speakers} speakers x {per_speaker} crops needs {speakers} training speakers, the data "
                 f"has {num_speakers}: data.utts_per_speaker {per_speaker} -> {new_per_speaker}"
                 + (f", data.batch_size {batch} -> {out['batch_size']}" if out["batch_size"] != batch else "")
                 + f" ({num_speakers} speakers x {new_per_speaker} crops)")


def fit_student_config(config: dict, train_utt2spk: str) -> tuple[dict, list[str]]:
    """The student configuration fitted to its training data (a copy; the same object when nothing
    changes) and one line per size changed: the batch's speakers, and the LDA of an *lda teacher
    target (when distilling) below the training speakers."""
    from sidkd.nnet.teacher_targets import lookup_target

    speakers = count_speakers(train_utt2spk)
    notes = []
    data, why = fit_batch(config["data"], speakers)
    fitted = config
    if why:
        fitted = copy.deepcopy(config)
        fitted["data"] = data
        notes.append(why)
    kd = config["loss"]["kd"]
    if float(kd["weight"]) > 0 and lookup_target(kd["target"]).uses_lda and speakers >= 2:
        dim, why = fit_lda_dim(int(kd["lda"]["dim"]), speakers)
        if why:
            fitted = copy.deepcopy(fitted) if fitted is config else fitted
            fitted["loss"]["kd"]["lda"]["dim"] = dim
            notes.append(f"loss.kd.lda.dim {why}")
    return fitted, notes


def fit_transfer_batch(data_conf: dict, ratio: float, target_speakers: int,
                       long_speakers: int | None) -> tuple[dict, str | None]:
    """(the ``data:`` section of a transfer, the reason when it changed): its batch splits into a
    replayed part of round(ratio · batch) crops and a target-domain part (sidkd.nnet.transfer
    .plan_batches), each of whole groups of ``utts_per_speaker`` crops of one speaker; the smallest
    ``utts_per_speaker`` at or above the configured one whose groups fit both corpora's speakers, the
    batch size kept. Unchanged where none does (plan_batches then names the problem)."""
    batch, per_speaker = int(data_conf["batch_size"]), int(data_conf["utts_per_speaker"])

    def parts(u: int) -> tuple[int, int] | None:
        replay = int(round(ratio * batch / u)) * u if ratio > 0 else 0
        target = batch - replay
        if target <= 0 or target % u or (ratio > 0 and replay == 0):
            return None
        if target // u > target_speakers or (replay and long_speakers is not None and replay // u > long_speakers):
            return None
        return target // u, replay // u

    if parts(per_speaker) is not None or (ratio <= 0 and batch % per_speaker):
        return data_conf, None
    for new in range(per_speaker + 1, batch + 1):
        fitted = parts(new)
        if fitted is not None:
            return dict(data_conf, utts_per_speaker=new), (
                f"a batch of {batch} crops in groups of {per_speaker} needs more speakers than the data has "
                f"(target domain: {target_speakers}" + (f", long data: {long_speakers}" if ratio > 0 else "")
                + f"): data.utts_per_speaker {per_speaker} -> {new} ({fitted[0]} target-domain"
                + (f" + {fitted[1]} replayed" if ratio > 0 else "") + f" speakers x {new} crops)")
    return data_conf, None


def fit_transfer_config(config: dict, train_utt2spk: str, long_utt2spk: str | None) -> tuple[dict, list[str]]:
    """A transfer configuration fitted to its data (a copy when it changes) and the notes: its batch
    (fit_transfer_batch), the replayed part counted in ``long_utt2spk``'s speakers when it replays."""
    ratio = float(config["replay"]["ratio"])
    long_speakers = count_speakers(long_utt2spk) if ratio > 0 and long_utt2spk else None
    data, why = fit_transfer_batch(config["data"], ratio, count_speakers(train_utt2spk), long_speakers)
    if not why:
        return config, []
    fitted = copy.deepcopy(config)
    fitted["data"] = data
    return fitted, [why]


def frames_per_gaussian_floor(feat_dim: int) -> int:
    """The voiced frames a full-covariance Gaussian of ``feat_dim`` dimensions needs at least: one
    per free parameter of its covariance, D (D + 1) / 2 (2628 for the recipe's 72)."""
    return feat_dim * (feat_dim + 1) // 2


def teacher_warnings(voiced_frames: int, num_utts: int, feat_dim: int, num_gauss: int,
                     ivector_dim: int) -> list[str]:
    """What the teacher's sizes ask of data/train that it does not have, each with the setting to lower."""
    out = []
    floor = frames_per_gaussian_floor(feat_dim)
    if voiced_frames < floor * num_gauss:
        fit = 1 << max(0, int(math.log2(max(1, voiced_frames // floor))))
        out.append(f"{voiced_frames} voiced frames for {num_gauss} Gaussians: {voiced_frames // num_gauss} per "
                   f"Gaussian, below the {floor} a full covariance of {feat_dim} dimensions needs; lower "
                   f"ivector_num_gauss (./run.sh --ivector-num-gauss {fit}, or conf/ivector.conf)")
    if ivector_dim >= num_utts:
        fit = max(1, num_utts // 2)
        out.append(f"an i-vector of {ivector_dim} dimensions from {num_utts} training utterances: lower ivector_dim "
                   f"below the utterances (./run.sh --ivector-dim {fit}, or conf/ivector.conf)")
    return out
