"""Transfer of a trained student (the source model, pre-trained on long speech) to short utterances.

The embedder starts from the source checkpoint; a new sub-centre AAM head covers the target-domain
speakers. For a batch of short crops z_i (unit-normalised) with speakers y_i, the loss is

    L = L_msce + α·L_kl + β·L_mse

- multi-subspace cross-entropy, with K unit sub-centres w_{j,1..K} per speaker j, scale s, margin m:
      cos θ_ij = max_k w_jkᵀ z_i
      ℓ_ij = s·cos(θ_ij + m) if j = y_i (monotone fallback s·(cos θ_ij − m·sin m) past θ + m > π)
             s·cos θ_ij      otherwise
      L_msce = −(1/B) Σ_i log( exp ℓ_iy_i / Σ_j exp ℓ_ij )
  (sidkd.nnet.losses.AAMSoftmax with sub_centers = K; K = 1 is the plain (AAM-)softmax loss).
- long/short relative entropy: p = softmax(s·cos θ / T) without margin, over the classes of the KL
  head; L_kl = T²·(1/B) Σ_i KL(p_long,i ‖ p_short,i), the long side detached (its forward runs
  without gradient), so only the short branch learns (sidkd.nnet.losses.long_short_kl).
  Long views (``loss.kl.long_view``):
  ``concat`` (default): short crop i is a target-domain clip; its long view is a concatenation of
      other clips of the same speaker (``long_seconds`` long), posteriors through the new head.
  ``source``: short and long views come from long source-domain utterances (``--long-data``): a
      ``long_seconds`` crop and a short crop inside it; posteriors through the source model's head
      (over the source speakers, kept fixed: a trainable head could make every posterior flat).
  ``utterance``: the KL runs on the replayed crops (below) only: the long view of a short crop of a
      long-speech utterance is that same utterance (the ``long_seconds`` window around the crop, or
      the whole utterance repeated to that length when it is shorter), posteriors through the new
      head, which has classes for the replayed speakers.
  ``concat+utterance``: both, each on its own items: ``concat`` for the target-domain clips,
      ``utterance`` for the replayed crops.
  Each long view is one class of ``LONG_VIEWS`` (name -> LongView subclass): what data it needs and
  how it makes the long views of a batch.
- replay (``replay.ratio`` r > 0, ``--long-data``): a share r of every batch are short crops of the
  long-speech training utterances (the source's own training data), cut to the batch's crop length;
  their speakers are classes C_s.. C_s + C_l − 1 of the new head after the C_s target-domain ones,
  so the cross-entropy keeps both corpora's speakers apart (``replay.init_from_source``: their
  sub-centres start from the source head's rows of the same speaker names, so the replayed CE
  measures drift from the source's geometry from the first step instead of training a random head).
- crop length (``short_seconds``): a number, or [lo, hi] seconds: one length per batch, uniform in
  samples over the range, for every crop of the batch (target-domain clip or replayed utterance; a
  clip shorter than the crop is repeated end to end, as in the student's sampler).
- β·L_mse: distillation to the teacher i-vector (sidkd.nnet.losses.TeacherDistillation) for the
  items whose utterance has one; items without are left out of this term only.

Freezing: ``freeze.blocks`` = N freezes the first N blocks of the embedder, counted from the input
(the stem, then each BasicBlock in order), for the first ``freeze.epochs`` epochs: their parameters
get no gradient (the optimiser leaves them untouched) and their batch norms use their running
statistics.

The training loop, checkpoints and resume are sidkd.nnet.loop.fit's; the output directory has the
student's layout (model.json, final.pt, checkpoints/), so steps/extract_embeddings.sh reads it.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from sidkd.errors import DataError
from sidkd.io.datadir import atomic_write_text
from sidkd.nnet import checkpoint as ckpt
from sidkd.nnet.data import (
    AugmentConfig,
    ChunkBatchDataset,
    SpeakerBalancedBatches,
    TrainingAudio,
    crop_or_repeat,
    load_teacher_vectors,
)
from sidkd.nnet.experiment import data_digest, model_digest, rspec_digest
from sidkd.nnet.features import FeatureFrontEnd
from sidkd.nnet.loop import StepResult, claim_directory, fit, init_session, make_optimizer, make_scheduler, seed_everything
from sidkd.nnet.losses import AAMSoftmax, TeacherDistillation, long_short_kl, margin_at
from sidkd.nnet.models import build_model
from sidkd.nnet.streams import Stream, batch_rng, item_rng, sub_seed
from sidkd.nnet.trainer import DEFAULTS as STUDENT_DEFAULTS
from sidkd.nnet.trainer import fast_model, frontend_from_config, make_batches, model_description
from sidkd.registry import Registry
from sidkd.sizes import fit_transfer_config

__all__ = ["DEFAULTS", "transfer_inputs", "LONG_VIEWS", "LongView", "register_long_view", "long_view_for", "TransferNet",
           "TransferInputs", "TransferBatchDataset", "concatenated_view", "utterance_view", "crop_range",
           "batch_crop_samples", "BatchPlan", "plan_batches", "init_replay_classes", "embedder_blocks",
           "set_frozen", "load_source", "transfer"]

log = logging.getLogger(__name__)

DEFAULTS = {
    "seed": 777,
    "device": "auto",
    "short_seconds": 1.0,  # the training crops (speechcommands clips are 1 s), or [lo, hi]: a length per batch
    "freeze": {"blocks": 0, "epochs": 0},
    "replay": {"ratio": 0.0, "init_from_source": True},
    "loss": {"msce": {"sub_centers": 1, "margin": 0.2, "scale": 32.0, "margin_warmup_epochs": [0, 0]},
             "kl": {"weight": 0.0, "temperature": 1.0, "long_view": "concat", "long_seconds": 4.0},
             "kd": {"weight": 0.0, "normalisation": "length"}},
    "data": copy.deepcopy(STUDENT_DEFAULTS["data"]),
    "augment": {},
    "optim": copy.deepcopy(STUDENT_DEFAULTS["optim"]),
    "speed": copy.deepcopy(STUDENT_DEFAULTS["speed"]),  # as the student's (sidkd.nnet.speed)
}


def embedder_blocks(embedder: nn.Module) -> list[nn.Module]:
    """The embedder's blocks from the input side: the stem, then each BasicBlock of each stage."""
    return [embedder.stem] + [block for stage in embedder.stages for block in stage]


def set_frozen(embedder: nn.Module, num_blocks: int, frozen: bool) -> None:
    """Freeze (or release) the first ``num_blocks`` blocks: no gradients, batch norms on running stats.
    Call after ``model.train()``, which would put them back in training mode."""
    blocks = embedder_blocks(embedder)
    if num_blocks > len(blocks):
        raise DataError(f"freeze.blocks {num_blocks}: the embedder has only {len(blocks)} blocks")
    for block in blocks[:num_blocks]:
        for param in block.parameters():
            param.requires_grad_(not frozen)
        if frozen:
            block.eval()


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


def init_replay_classes(head: AAMSoftmax, source_weight: torch.Tensor, source_sub_centers: int,
                        source_speakers: list[str], replay_speakers: list[str], offset: int) -> int:
    """Start the replayed speakers' sub-centres (classes ``offset``..) from the source head's rows of
    the speaker of the same name (sub-centre k from the source's k mod K_source); returns how many
    speakers were found. The others keep their random start."""
    index = {name: j for j, name in enumerate(source_speakers)}
    k_new, found = head.sub_centers, 0
    with torch.no_grad():
        for i, name in enumerate(replay_speakers):
            j = index.get(name)
            if j is None:
                continue
            for k in range(k_new):
                head.weight[(offset + i) * k_new + k] = source_weight[j * source_sub_centers + k % source_sub_centers]
            found += 1
    return found


class TransferNet(nn.Module):
    """Embedder + new head (+ distillation head, + fixed source head for the ``source`` long view)."""

    def __init__(self, embedder: nn.Module, head: AAMSoftmax, kd: TeacherDistillation | None = None,
                 source_head: AAMSoftmax | None = None):
        super().__init__()
        self.embedder, self.head, self.kd, self.source_head = embedder, head, kd, source_head
        if source_head is not None:
            source_head.weight.requires_grad_(False)

    def forward(self, short, labels, long=None, kl_short=None, temperature: float = 1.0, teacher=None,
                teacher_mask=None, kl_index=None):
        """(L_msce, L_kl or 0, L_mse or 0, margin logits). ``long``: the long views; their short
        counterparts are ``kl_short`` when given (the ``source`` view), else the items ``kl_index``
        of ``short`` (all of them when None)."""
        z = self.embedder(short)
        ce, logits = self.head(z, labels)
        zero = ce.new_zeros(())
        kl = zero
        if long is not None:
            kl_head = self.source_head if self.source_head is not None else self.head
            if kl_short is not None:
                z_short = self.embedder(kl_short)
            else:
                z_short = z if kl_index is None else z[kl_index]
            with torch.no_grad():
                logits_long = kl_head.logits(self.embedder(long))
            kl = long_short_kl(logits_long, kl_head.logits(z_short), temperature)
        mse = zero
        if self.kd is not None and teacher is not None and bool(teacher_mask.any()):
            mse = self.kd(z[teacher_mask], teacher[teacher_mask])
        return ce, kl, mse, logits


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
    needs_long_data = True
    needs_replay = True

    def replayed_item(self, data, utt, length, rng):
        long_data = data.inputs.long_data
        x, y, _, _ = utterance_view(long_data.audio.samples[utt], length, data.inputs.long_samples, rng)
        return long_data.augmented_features(x, rng, utt), long_data.augmented_features(y, rng, utt)


@register_long_view
class ConcatUtteranceView(ConcatView, UtteranceView):
    """``concat`` for the target-domain clips, ``utterance`` for the replayed crops."""

    name = "concat+utterance"
    needs_long_data = True
    needs_replay = True


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


def load_source(source_dir: str, which: str = "final.pt") -> tuple[dict, dict]:
    """(model.json description, state_dict) of the source model, read with weights_only=True."""
    path = os.path.join(source_dir, "model.json")
    try:
        with open(path, encoding="utf-8") as handle:
            desc = json.load(handle)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the source model's description ({exc})") from exc
    if desc.get("format") != ckpt.CHECKPOINT_FORMAT:
        raise DataError(f"{path}: not a {ckpt.CHECKPOINT_FORMAT} model description")
    try:
        state = ckpt.load(os.path.join(source_dir, which))["model"]
    except (OSError, ValueError) as exc:
        raise DataError(f"{source_dir}/{which}: cannot read the source model ({exc})") from exc
    return desc, state


def transfer_inputs(config: dict, source_dir: str, train_dir: str, long_dir: str | None,
                    teacher_rspec: str | None) -> dict:
    """What the transfer reads, with digests of their content (DIR/config.yaml's inputs:): the
    source model, the training data, the long speech where replay or the long view reads it, the
    teacher vectors where β > 0."""
    kl_conf = config["loss"]["kl"]
    view = long_view_for(kl_conf["long_view"] if float(kl_conf["weight"]) > 0 else None)
    try:
        ratio = float(config["replay"]["ratio"])
    except (TypeError, ValueError) as exc:
        raise DataError(f"replay.ratio {config['replay']['ratio']!r}: expected a number") from exc
    inputs = {"source": source_dir, "source_digest": model_digest(source_dir),
              "train_data": train_dir, "train_data_digest": data_digest(train_dir)}
    if long_dir and (ratio > 0 or view.needs_long_data):
        inputs.update(long_data=long_dir, long_data_digest=data_digest(long_dir))
    if float(config["loss"]["kd"]["weight"]) > 0 and teacher_rspec:
        inputs.update(teacher=teacher_rspec, teacher_digest=rspec_digest(teacher_rspec))
    return inputs


def transfer(config: dict, source_dir: str, train_dir: str, out_dir: str, long_dir: str | None = None,
             teacher_rspec: str | None = None, resume: bool = False, stop_after_epoch: int | None = None,
             overwrite: bool = False):
    """Fine-tune the source model on ``train_dir``; returns (final.pt or the last checkpoint when
    stopped early, this process's trained model; None when the same configuration had finished
    earlier). ``out_dir/config.yaml`` records the configuration and the inputs; another one there is
    an error unless ``overwrite`` (sidkd.nnet.experiment)."""
    session = init_session(config["device"])
    seed = int(config["seed"])
    seed_everything(seed)
    loss_conf, data_conf, optim_conf = config["loss"], config["data"], config["optim"]
    msce_conf, kl_conf, kd_conf = loss_conf["msce"], loss_conf["kl"], loss_conf["kd"]
    kl_weight, kd_weight = float(kl_conf["weight"]), float(kd_conf["weight"])
    view = long_view_for(kl_conf["long_view"] if kl_weight > 0 else None)
    long_view = view.name
    replay_conf = config["replay"]
    try:
        ratio = float(replay_conf["ratio"])
    except (TypeError, ValueError) as exc:
        raise DataError(f"replay.ratio {replay_conf['ratio']!r}: expected a number") from exc
    if view.needs_long_data and not long_dir:
        raise DataError(f"loss.kl.long_view {long_view} needs the long source-domain data (--long-data)")
    if view.needs_replay and ratio <= 0:
        raise DataError(f"loss.kl.long_view {long_view}: its long views are of the replayed crops, "
                        f"so it needs replay.ratio > 0")
    reads_long_data = bool(long_dir) and (ratio > 0 or view.needs_long_data)
    # a batch's speakers fitted to the data, before the configuration is recorded (sidkd.sizes)
    config, fitted = fit_transfer_config(config, os.path.join(train_dir, "utt2spk"),
                                         os.path.join(long_dir, "utt2spk") if long_dir else None)
    for note in fitted:
        log.info("sizes fitted to %s: %s", train_dir, note)
    data_conf = config["data"]
    inputs = transfer_inputs(config, source_dir, train_dir, long_dir, teacher_rspec)
    state = claim_directory(out_dir, config, inputs, session, resume, overwrite, sizes=fitted)
    if state == "done":
        return os.path.join(out_dir, "final.pt"), None
    resume = state == "resume"

    source_desc, source_state = load_source(source_dir)
    feat_conf = source_desc["features"]  # the source's front end: the embedder was trained on it
    frontend = frontend_from_config(feat_conf)
    # the dither noise is a random stream too: from the transfer's seed unless the source's features fix it
    frontend.options.setdefault("dither_seed", seed)
    rate = int(feat_conf.get("sample_rate", 16000))
    crop = crop_range(config["short_seconds"], rate)
    long_samples = int(round(float(kl_conf["long_seconds"]) * rate))
    if long_view is not None and long_samples <= crop[1]:
        raise DataError(f"loss.kl.long_seconds {kl_conf['long_seconds']} must exceed the longest crop, "
                        f"short_seconds {config['short_seconds']}")

    audio = TrainingAudio(train_dir, rate)
    teacher = teacher_mask = None
    if kd_weight > 0:
        if not teacher_rspec:
            raise DataError("kd weight > 0 needs the teacher vectors (--teacher-scp)")
        teacher, teacher_mask = load_teacher_vectors(teacher_rspec, audio.utts)
        log.info("teacher vectors from %s: %d of %d utterances have one (the others have no distillation term)",
                 teacher_rspec, int(teacher_mask.sum()), len(teacher_mask))
    long_audio = None
    if reads_long_data:
        long_audio = TrainingAudio(long_dir, rate)
    elif long_dir:
        log.info("%s: not read (no replay, long view %s)", long_dir, long_view)
    plan = plan_batches(audio, long_audio, data_conf, ratio, crop, session.world, seed)
    batch_size, steps_per_epoch = plan.batch_size, plan.num_batches
    num_target = len(audio.speakers)
    speakers = list(audio.speakers)
    if plan.replay is not None:
        speakers += long_audio.speakers  # classes num_target.. : the replayed speakers, whatever their names
    num_classes = len(speakers)

    embedder = build_model(source_desc["model"], frontend.num_bins)
    embedder.load_state_dict(ckpt.sub_state_dict(source_state, "embedder."))
    head = AAMSoftmax(embedder.embedding_dim, num_classes, float(msce_conf["margin"]), float(msce_conf["scale"]),
                      int(msce_conf["sub_centers"]))
    if plan.replay is not None and bool(replay_conf["init_from_source"]):
        found = init_replay_classes(head, source_state["aam.weight"], int(source_desc["aam"]["sub_centers"]),
                                    source_desc["speakers"], long_audio.speakers, num_target)
        log.info("replayed classes: %d of %d speakers of %s start from the source head", found,
                 len(long_audio.speakers), long_dir)
        if not found:
            log.warning("no speaker of %s is a class of the source model: the replayed classes start random",
                        long_dir)
    kd = None
    if teacher is not None:
        kd = TeacherDistillation(embedder.embedding_dim, teacher.shape[1], kd_conf["normalisation"])
        kd.normalizer.fit(teacher[teacher_mask])
    augment = AugmentConfig.from_dict(config.get("augment"))
    long_data = source_head = source_probs = None
    if long_audio is not None:
        # babble of the long crops comes from the long corpus itself
        long_data = ChunkBatchDataset(long_audio, frontend, crop[1], augment, [], [], seed, 0)
    if view.uses_source_head:
        src_aam = source_desc["aam"]
        source_head = AAMSoftmax(embedder.embedding_dim, int(source_desc["num_classes"]), 0.0,
                                 float(src_aam["scale"]), int(src_aam["sub_centers"]))
        source_head.weight.data.copy_(source_state["aam.weight"])
        source_durations = long_audio.lengths.astype(np.float64)
        source_probs = source_durations / source_durations.sum()  # every second of speech equally likely
    model = TransferNet(embedder, head, kd, source_head).to(session.device)
    speed = config["speed"]
    example = torch.from_numpy(frontend(np.zeros(crop[1], np.float32)))[None].repeat(
        batch_size // session.world, 1, 1)
    log.info("speed: %s", fast_model(model, embedder, speed, session.device, example))
    trainable = [p for name, p in model.named_parameters() if not name.startswith("source_head.")]
    num_epochs = int(optim_conf["num_epochs"])
    optimizer = make_optimizer(trainable, optim_conf, speed["optimizer_impl"])
    scheduler = make_scheduler(optimizer, optim_conf, steps_per_epoch)
    warm = msce_conf.get("margin_warmup_epochs") or [0, 0]
    margin_steps = (int(round(warm[0] * steps_per_epoch)), int(round(warm[1] * steps_per_epoch)))
    final_margin = float(msce_conf["margin"])
    freeze_blocks, freeze_steps = int(config["freeze"]["blocks"]), int(config["freeze"]["epochs"]) * steps_per_epoch
    set_frozen(embedder, freeze_blocks, False)  # checks the count before any training
    replay_desc = None
    if plan.replay is not None:
        replay_desc = {"data": long_dir, "ratio": plan.replay_size / batch_size, "crops_per_batch": plan.replay_size,
                       "first_class": num_target, "init_from_source": bool(replay_conf["init_from_source"])}
    if session.rank == 0:
        os.makedirs(out_dir, exist_ok=True)
        desc = model_description({"features": feat_conf, "model": source_desc["model"],
                                   "loss": {"aam": msce_conf, "kd": kd_conf}}, num_classes, speakers,
                                  None if teacher is None else teacher.shape[1])
        desc["transfer"] = {"source": source_dir, "short_seconds": config["short_seconds"], "freeze": config["freeze"],
                            "kl": kl_conf, "kd_weight": kd_weight, "replay": replay_desc}
        atomic_write_text(os.path.join(out_dir, "model.json"), json.dumps(desc, indent=1) + "\n")
    positions, replay_positions = plan.positions(session.rank, session.world)
    log.info("transfer from %s: %d speakers, %d utterances, %d steps/epoch x %d epochs, batch %d, K %d, "
             "kl weight %g (long view %s), kd weight %g, first %d blocks frozen for %d steps, device %s",
             source_dir, num_target, len(audio.utts), steps_per_epoch, num_epochs, batch_size, head.sub_centers,
             kl_weight, long_view, kd_weight, freeze_blocks, freeze_steps, session.device)
    log.info("crops of %d-%d samples (one length per batch); replay: %s", crop[0], crop[1],
             "none" if plan.replay is None else
             f"{plan.replay_size} of {batch_size} crops a batch from {long_dir} ({len(long_audio.speakers)} "
             f"speakers, classes {num_target}..{num_classes - 1})")
    workers = int(data_conf["num_workers"])
    temperature = float(kl_conf["temperature"])
    batch_inputs = TransferInputs(audio, frontend, crop, augment, seed, long_view=view, long_samples=long_samples,
                                  long_data=long_data, source_probs=source_probs, teacher=teacher,
                                  teacher_mask=teacher_mask, label_offset=num_target)

    def batches(epoch: int):
        chosen, replayed = plan.epoch(epoch)
        dataset = TransferBatchDataset(batch_inputs, epoch, chosen, positions, replayed, replay_positions)
        return make_batches(dataset, workers, int(speed["prefetch"]))

    def before_step(step: int) -> str:
        head.set_margin(margin_at(step, final_margin, *margin_steps))
        frozen = freeze_blocks > 0 and step < freeze_steps
        if freeze_blocks > 0:
            set_frozen(embedder, freeze_blocks, frozen)
        return f"margin {head.margin:.3f}" + (" frozen" if frozen else "")

    def step_fn(module, batch, step) -> StepResult:
        dev = session.device
        moved = {k: (v.to(dev) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        ce, kl, mse, logits = module(moved["short"], moved["labels"], moved["long"], moved["kl_short"],
                                     temperature, moved["teacher"], moved["teacher_mask"], moved["kl_index"])
        loss = ce
        parts = {"msce": ce.item()}
        if plan.replay is not None:
            # the replayed crops' share of the cross-entropy: does the long speech stay separable?
            replayed = moved["labels"] >= num_target
            parts["msce_replay"] = torch.nn.functional.cross_entropy(logits.detach()[replayed],
                                                                     moved["labels"][replayed]).item()
        if long_view is not None:
            loss = loss + kl_weight * kl
            parts["kl"] = kl.item()
        if kd is not None:
            loss = loss + kd_weight * mse
            parts["mse"] = mse.item()
        parts = {"loss": loss.item(), **parts}
        labels = moved["labels"]
        correct = int((logits.detach().argmax(1) == labels).sum().item())
        return StepResult(loss, parts, correct, len(labels))

    return fit(model, step_fn, batches, optimizer, scheduler, out_dir, session, num_epochs,
               log_interval=int(optim_conf["log_interval"]), grad_clip=float(optim_conf["grad_clip"]),
               average_last=int(optim_conf["average_last"]), resume=resume, stop_after_epoch=stop_after_epoch,
               before_step=before_step, find_unused_parameters=freeze_blocks > 0 or kd is not None)
