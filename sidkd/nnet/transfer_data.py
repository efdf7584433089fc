"""The batches of the transfer stage (sidkd.nnet.transfer): short crops of the target domain, replayed
crops of the long speech, and the long views of the KL term.

- crop length (``short_seconds``): a number, or [lo, hi] seconds: one length per batch, uniform in
  samples over the range, for every crop of the batch (target-domain clip or replayed utterance; a
  clip shorter than the crop is repeated end to end, as in the student's sampler).
- replay (``replay.ratio`` r > 0, ``--long-data``): a share r of every batch are short crops of the
  long-speech training utterances (the source's own training data), cut to the batch's crop length;
  their speakers are classes C_s.. C_s + C_l − 1 of the new head after the C_s target-domain ones.
- long views (``loss.kl.long_view``), each one class of ``LONG_VIEWS`` (name -> LongView subclass):
  what data it needs and how it makes the long views of a batch:
  ``concat``: short crop i is a target-domain clip; its long view is a concatenation of other clips
      of the same speaker (``long_seconds`` long), posteriors through the new head.
  ``source``: short and long views come from long source-domain utterances (``--long-data``): a
      ``long_seconds`` crop and a short crop inside it; posteriors through the source model's head
      (over the source speakers, kept fixed: a trainable head could make every posterior flat).
  ``utterance``: the KL runs on the replayed crops only: the long view of a short crop of a
      long-speech utterance is that same utterance (the ``long_seconds`` window around the crop, or
      the whole utterance repeated to that length when it is shorter), posteriors through the new
      head, which has classes for the replayed speakers.
  ``concat+utterance``: both, each on its own items: ``concat`` for the target-domain clips,
      ``utterance`` for the replayed crops.

Every draw is a function of (seed, epoch, batch, position in the global batch, stream;
sidkd.nnet.streams), as in the student's batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from sidkd.errors import DataError
from sidkd.nnet.data import AugmentConfig, ChunkBatchDataset, SpeakerBalancedBatches, TrainingAudio, crop_or_repeat
from sidkd.nnet.features import FeatureFrontEnd
from sidkd.nnet.streams import Stream, batch_rng, item_rng, sub_seed
from sidkd.registry import Registry

__all__ = ["concatenated_view", "utterance_view", "crop_range", "batch_crop_samples", "BatchPlan", "plan_batches",
           "LONG_VIEWS", "LongView", "register_long_view", "long_view_for", "TransferInputs",
           "TransferBatchDataset"]


def concatenated_view(samples: list[np.ndarray], same_speaker: np.ndarray, anchor: int, length: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """A ``length``-sample long view for utterance ``anchor``: the other utterances of its speaker
    (``same_speaker``: their indices, anchor included or not) in random order, concatenated and
    cycled until long enough. A speaker with no other utterance gets the anchor repeated.
    Returns (float32 samples, the utterance indices used, in order)."""
    others = [int(u) for u in same_speaker if int(u) != anchor] or [anchor]
    order = [others[i] for i in rng.permutation(len(others))]
    used, total = [], 0
    while total < length:
        utt = order[len(used) % len(order)]
        used.append(utt)
        total += len(samples[utt])
    return np.concatenate([samples[u] for u in used])[:length].astype(np.float32), used


def utterance_view(samples: np.ndarray, short_length: int, long_length: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int, int]:
    """A ``short_length`` crop of one utterance and its long view, the same utterance: where the
    utterance has ``long_length`` samples or more, a window of that length that contains the crop;
    otherwise the whole utterance, repeated end to end to ``long_length`` (attentive statistics
    pooling normalises its weights over all frames, so whole copies of the utterance pool to the
    utterance's own statistics: the embedder sees the whole utterance, up to the seams and the cut
    last copy). The crop start is uniform over the utterance, the same draw as a plain crop's
    (crop_or_repeat), so where the crops fall does not depend on the long view.
    Returns (short float32, long float32, crop start, window start), both starts in the utterance
    (the repeated one when it is shorter than the crop)."""
    n = len(samples)
    if n < short_length:
        samples = np.tile(samples, -(-short_length // n))
    short_start = int(rng.integers(0, len(samples) - short_length + 1))
    short = samples[short_start:short_start + short_length].astype(np.float32)
    if n >= long_length:
        # the windows that contain the crop and fit in the utterance; one uniformly
        first, last = max(0, short_start + short_length - long_length), min(short_start, n - long_length)
        long_start = int(rng.integers(first, last + 1))
        return short, samples[long_start:long_start + long_length].astype(np.float32), short_start, long_start
    whole = np.tile(samples[:n], -(-long_length // n))[:long_length]
    return short, whole.astype(np.float32), short_start, 0


def crop_range(value, rate: int, what: str = "short_seconds") -> tuple[int, int]:
    """(lo, hi) crop lengths in samples from a yaml value: seconds, or [lo, hi] seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        bounds = [value, value]
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        bounds = list(value)
    else:
        raise DataError(f"{what} {value!r}: expected seconds or [lo, hi] seconds")
    lo, hi = (int(round(float(v) * rate)) for v in bounds)
    if not 0 < lo <= hi:
        raise DataError(f"{what} {value!r}: need 0 < lo <= hi (and at least one sample)")
    return lo, hi


def batch_crop_samples(crop: tuple[int, int], seed: int, epoch: int, batch_id: int) -> int:
    """The crop length of batch ``batch_id`` of ``epoch``: uniform over [lo, hi] samples, one for the
    whole batch (every process draws the same), a function of (seed, epoch, batch) alone."""
    lo, hi = crop
    if lo == hi:
        return lo  # no draw: a fixed length keeps every other stream as it was
    return int(batch_rng(seed, epoch, batch_id, Stream.CROP_LENGTH).integers(lo, hi + 1))


class BatchPlan:
    """How a global batch of ``batch_size`` divides: ``target`` items from the target-domain sampler,
    then ``replay`` items from the long-speech sampler (None without replay); labels of replayed
    items are offset by ``label_offset`` (the number of target-domain speakers)."""

    def __init__(self, target: SpeakerBalancedBatches, replay: SpeakerBalancedBatches | None,
                 label_offset: int, batch_size: int):
        self.target, self.replay, self.label_offset, self.batch_size = target, replay, label_offset, batch_size
        self.num_batches = target.num_batches
        self.target_size = target.batch_size
        self.replay_size = replay.batch_size if replay is not None else 0

    def epoch(self, epoch: int) -> tuple[list[list[int]], list[list[int]] | None]:
        """(target-domain batches, replayed batches aligned with them, or None)."""
        target = self.target.epoch(epoch)
        return target, (self.replay.epoch(epoch) if self.replay is not None else None)

    def positions(self, rank: int, world: int) -> tuple[slice, slice]:
        """This process's share of each part: every process gets the same mix of both corpora."""
        t, r = self.target_size // world, self.replay_size // world
        return slice(rank * t, (rank + 1) * t), slice(rank * r, (rank + 1) * r)


def plan_batches(audio: TrainingAudio, long_audio: TrainingAudio | None, data_conf: dict, ratio: float,
                 crop: tuple[int, int], world: int, seed: int) -> BatchPlan:
    """The samplers of one transfer: ``data.batch_size`` items per step, of which round(ratio · batch)
    (to whole groups of ``utts_per_speaker`` on every process) are replayed long-speech crops. An
    epoch is ``chunks_per_epoch`` target-domain crops (null: their total duration over the mean crop
    length) in batches of the target part, so that an epoch still sees every target clip about once
    whatever the ratio."""
    batch_size, per_speaker = int(data_conf["batch_size"]), int(data_conf["utts_per_speaker"])
    if not 0.0 <= ratio < 1.0:
        raise DataError(f"replay.ratio {ratio}: expected 0 <= ratio < 1 (a share of each batch)")
    unit = per_speaker * world  # every process gets whole speaker groups of each part
    replay_size = int(round(ratio * batch_size / unit)) * unit
    if ratio > 0:
        if long_audio is None:
            raise DataError("replay.ratio > 0 needs the long-speech training data (--long-data)")
        if replay_size == 0 or replay_size >= batch_size:
            raise DataError(f"replay.ratio {ratio} of a batch of {batch_size} gives {replay_size} replayed crops: "
                            f"it must be a multiple of utts_per_speaker x processes ({unit}) and leave "
                            f"target-domain crops")
    mean_crop = (crop[0] + crop[1]) // 2
    target = SpeakerBalancedBatches.from_conf(audio, {**data_conf, "batch_size": batch_size - replay_size},
                                              mean_crop, world, seed)
    replay = None
    if replay_size:
        durations = long_audio.lengths.astype(np.float64)
        # a seed of its own: with the target sampler's, both would make the same draws
        replay_seed = sub_seed(seed, Stream.REPLAY_SAMPLER)
        replay = SpeakerBalancedBatches(long_audio.labels, durations, replay_size, per_speaker, target.num_batches,
                                        float(data_conf["speaker_weight_power"]), replay_seed)
    return BatchPlan(target, replay, len(audio.speakers), batch_size)



class LongView:
    """The long views of the KL term, ``loss.kl.long_view``. This base class is the transfer without
    the term (KL weight 0): no long views, the replayed crops plain crops.

    ``needs_long_data``: reads the long-speech data dir (``--long-data``) even without replay;
    ``needs_replay``: its long views are of the replayed crops, so it needs replay.ratio > 0;
    ``uses_source_head``: its posteriors go through the source model's head (kept fixed)."""

    name: ClassVar[str | None] = None
    needs_long_data: ClassVar[bool] = False
    needs_replay: ClassVar[bool] = False
    uses_source_head: ClassVar[bool] = False

    def target_long_views(self, data: TransferBatchDataset, batch: list[int], batch_id: int,
                          positions: range) -> list[np.ndarray]:
        """Features of the long views of this process's target-domain items (``positions`` of the
        global ``batch``), one per item in order, or none."""
        return []

    def replayed_item(self, data: TransferBatchDataset, utt: int, length: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """(short crop features, long view features or None) of the replayed long-speech utterance
        ``utt``, from the item's generator ``rng``."""
        return data.inputs.long_data.crop_features(utt, rng, length), None

    def separate_pairs(self, data: TransferBatchDataset, batch_id: int, positions: range,
                       length: int) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
        """(long views, short crops) of pairs apart from the batch's crops, one pair per item, or None."""
        return None


# name -> LongView subclass; iterating gives the names.
LONG_VIEWS = Registry("long view")
register_long_view = LONG_VIEWS.register


def long_view_for(name: str | None) -> LongView:
    """The long view ``name`` (a ``loss.kl.long_view`` value); None: the transfer without KL term."""
    if name is None:
        return LongView()
    if not isinstance(name, str) or name not in LONG_VIEWS:
        raise DataError(f"loss.kl.long_view {name!r}: set it to one of: {', '.join(LONG_VIEWS)}")
    return LONG_VIEWS[name]()


@register_long_view
class ConcatView(LongView):
    """A target-domain clip's long view: other clips of its speaker end to end (concatenated_view)."""

    name = "concat"

    def target_long_views(self, data, batch, batch_id, positions):
        longs = []
        for j in positions:
            rng = item_rng(data.seed, data.epoch, batch_id, j, Stream.CONCAT_VIEW)
            utt = batch[j]
            x, _ = concatenated_view(data.audio.samples, data.speaker_utts[data.audio.labels[utt]], utt,
                                     data.inputs.long_samples, rng)
            longs.append(data.augmented_features(x, rng, utt))
        return longs


@register_long_view
class SourceView(LongView):
    """Pairs of their own from the long-speech data: a long crop and a short crop inside it."""

    name = "source"
    needs_long_data = True
    uses_source_head = True

    def separate_pairs(self, data, batch_id, positions, length):
        inputs = data.inputs
        long_audio = inputs.long_data.audio
        longs, shorts = [], []
        for j in positions:
            rng = item_rng(data.seed, data.epoch, batch_id, j, Stream.SOURCE_VIEW)
            utt = int(rng.choice(len(inputs.source_probs), p=inputs.source_probs))
            x = crop_or_repeat(long_audio.samples[utt], inputs.long_samples, rng)
            start = int(rng.integers(0, inputs.long_samples - length + 1))
            shorts.append(inputs.long_data.augmented_features(x[start:start + length], rng, utt))
            longs.append(inputs.long_data.augmented_features(x, rng, utt))
        return longs, shorts


@register_long_view
class UtteranceView(LongView):
    """A replayed crop's long view: its own utterance around it (utterance_view)."""

    name = "utterance"
    needs_long_data = needs_replay = True

    def replayed_item(self, data, utt, length, rng):
        long_data = data.inputs.long_data
        x, y, _, _ = utterance_view(long_data.audio.samples[utt], length, data.inputs.long_samples, rng)
        return long_data.augmented_features(x, rng, utt), long_data.augmented_features(y, rng, utt)


@register_long_view
class ConcatUtteranceView(ConcatView, UtteranceView):
    """``concat`` for the target-domain clips, ``utterance`` for the replayed crops."""

    name = "concat+utterance"
    needs_long_data = needs_replay = True


@dataclass(eq=False)
class TransferInputs:
    """What the batches of a transfer read, the same in every epoch."""

    audio: TrainingAudio  # the target-domain clips
    frontend: FeatureFrontEnd
    crop: tuple[int, int]  # (lo, hi) crop length in samples
    augment: AugmentConfig
    seed: int
    long_view: LongView = field(default_factory=LongView)
    long_samples: int = 0  # length of a long view
    long_data: ChunkBatchDataset | None = None  # crops of the long-speech data: replay, views source, utterance
    source_probs: np.ndarray | None = None  # view source: the probability of each long-speech utterance
    teacher: np.ndarray | None = None  # a teacher vector per target-domain clip, and which ones have one
    teacher_mask: np.ndarray | None = None
    label_offset: int = 0  # class of the first replayed speaker (the number of target-domain speakers)


class TransferBatchDataset(ChunkBatchDataset):
    """Item = one batch: dict of short feats (target-domain crops, then replayed ones), labels,
    teacher (+ mask), long views with the positions of their short crops (kl_index), source short
    crops. ``batches`` of the target domain and ``replay_batches`` aligned with them (or None) are the
    epoch's, ``positions`` and ``replay_positions`` this process's share of each. Every draw is a
    function of (seed, epoch, batch, position in the global batch, stream; sidkd.nnet.streams)."""

    def __init__(self, inputs: TransferInputs, epoch: int, batches: list[list[int]], positions: slice = slice(None),
                 replay_batches: list[list[int]] | None = None, replay_positions: slice = slice(None)):
        super().__init__(inputs.audio, inputs.frontend, inputs.crop[1], inputs.augment, batches,
                         list(range(len(batches))), inputs.seed, epoch, positions, inputs.teacher)
        self.inputs = inputs
        self.replay_batches, self.replay_positions = replay_batches, replay_positions
        audio = inputs.audio
        self.speaker_utts = [np.flatnonzero(audio.labels == s) for s in range(len(audio.speakers))]

    def __getitem__(self, i: int):
        inputs, view = self.inputs, self.inputs.long_view
        batch, batch_id = self.batches[i], self.batch_ids[i]
        length = batch_crop_samples(inputs.crop, self.seed, self.epoch, batch_id)
        positions = range(len(batch))[self.positions]
        utts = [batch[j] for j in positions]
        feats = [self.crop_features(batch[j], item_rng(self.seed, self.epoch, batch_id, j, Stream.CROP), length)
                 for j in positions]
        labels = [int(self.audio.labels[u]) for u in utts]
        longs = view.target_long_views(self, batch, batch_id, positions)
        kl_index = list(range(len(longs)))
        num_target = len(feats)
        if self.replay_batches is not None:
            replayed = self.replay_batches[i]
            for j in range(len(replayed))[self.replay_positions]:
                utt = replayed[j]
                # positions after the target part of the global batch: streams of their own
                rng = item_rng(self.seed, self.epoch, batch_id, len(batch) + j, Stream.CROP)
                short, long = view.replayed_item(self, utt, length, rng)
                feats.append(short)
                if long is not None:
                    longs.append(long)
                    kl_index.append(len(feats) - 1)
                labels.append(inputs.label_offset + int(inputs.long_data.audio.labels[utt]))
        out = {"short": torch.from_numpy(np.stack(feats)), "labels": torch.tensor(labels, dtype=torch.int64),
               "teacher": None, "teacher_mask": None, "long": None, "kl_short": None, "kl_index": None}
        if self.teacher is not None:
            # replayed crops have no teacher vector here: zero rows, left out by the mask
            extra = len(feats) - num_target
            teacher = np.concatenate([self.teacher[utts], np.zeros((extra, self.teacher.shape[1]), np.float32)])
            mask = np.concatenate([inputs.teacher_mask[utts], np.zeros(extra, dtype=bool)])
            out["teacher"], out["teacher_mask"] = torch.from_numpy(teacher), torch.from_numpy(mask)
        if longs:
            out["long"] = torch.from_numpy(np.stack(longs))
            if kl_index != list(range(len(feats))):
                out["kl_index"] = torch.tensor(kl_index, dtype=torch.int64)
        pairs = view.separate_pairs(self, batch_id, positions, length)
        if pairs is not None:
            out["long"], out["kl_short"] = (torch.from_numpy(np.stack(part)) for part in pairs)
        return out


