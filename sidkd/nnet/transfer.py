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
  without gradient), so only the short branch learns (sidkd.nnet.losses.long_short_kl). The long
  views (``loss.kl.long_view``), the replayed long speech (``replay``) and the crop lengths
  (``short_seconds``) are the batches' (sidkd.nnet.transfer_data).
- replayed speakers are classes of the new head after the target-domain ones;
  ``replay.init_from_source`` starts their sub-centres from the source head's rows of the same
  speaker names, so the replayed CE measures drift from the source's geometry from the first step.
- β·L_mse: distillation to the teacher i-vector (sidkd.nnet.losses.TeacherDistillation) for the
  items whose utterance has one; items without are left out of this term only.

Freezing: ``freeze.blocks`` = N freezes the first N blocks of the embedder, counted from the input
(the stem, then each BasicBlock in order), for the first ``freeze.epochs`` epochs: their parameters
get no gradient (the optimiser leaves them untouched) and their batch norms use their running
statistics.

The shared training layer is sidkd.nnet.task.run_task; the output directory has the student's
layout (model.json, final.pt, checkpoints/), so steps/extract_embeddings.sh reads it.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import torch

from sidkd.errors import DataError
from sidkd.nnet import checkpoint as ckpt
from sidkd.nnet.data import AugmentConfig, ChunkBatchDataset, TrainingAudio, load_teacher_vectors
from sidkd.nnet.experiment import data_digest, model_digest, rspec_digest
from sidkd.nnet.loop import Session, StepResult
from sidkd.nnet.losses import AAMSoftmax, TeacherDistillation
from sidkd.nnet.models import TransferNet, build_model, set_frozen
from sidkd.nnet.task import Prepared, TrainingTask, make_frontend, model_description, run_task
from sidkd.nnet.transfer_data import (LongView, TransferBatchDataset, TransferInputs, crop_range, long_view_for,
                                      plan_batches)
from sidkd.sizes import fit_transfer_config

__all__ = ["TransferTask", "transfer", "init_replay_classes", "load_source"]

log = logging.getLogger(__name__)


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


def replay_ratio(config: dict) -> float:
    """The replayed share of each batch (its type and range checked with the configuration)."""
    return float(config["replay"]["ratio"])


def long_view_of(config: dict) -> LongView:
    """The configuration's long view; the plain LongView (no long views) when its KL weight is 0."""
    kl_conf = config["loss"]["kl"]
    return long_view_for(kl_conf["long_view"] if float(kl_conf["weight"]) > 0 else None)


class TransferTask(TrainingTask):
    """The source model ``source_dir`` fine-tuned on the short speech of ``train_dir``; ``long_dir``:
    the long speech of replay and of the long views that read it."""

    def __init__(self, source_dir: str, train_dir: str, long_dir: str | None = None,
                 teacher_rspec: str | None = None):
        super().__init__(train_dir, teacher_rspec)
        self.source_dir, self.long_dir = source_dir, long_dir

    def check(self, config):
        view, ratio = long_view_of(config), replay_ratio(config)
        if view.needs_long_data and not self.long_dir:
            raise DataError(f"loss.kl.long_view {view.name} needs the long source-domain data (--long-data)")
        if view.needs_replay and ratio <= 0:
            raise DataError(f"loss.kl.long_view {view.name}: its long views are of the replayed crops, "
                            f"so it needs replay.ratio > 0")
        super().check(config)

    def _reads_long_data(self, config: dict) -> bool:
        """Whether the training reads the long speech: for replay, or for a long view of its own."""
        return bool(self.long_dir) and (replay_ratio(config) > 0 or long_view_of(config).needs_long_data)

    def fit_sizes(self, config):
        return fit_transfer_config(config, os.path.join(self.train_dir, "utt2spk"),
                                   os.path.join(self.long_dir, "utt2spk") if self.long_dir else None)

    def inputs(self, config):
        """The source model, the training data, the long speech where replay or the long view reads
        it, the teacher vectors where β > 0."""
        inputs = {"source": self.source_dir, "source_digest": model_digest(self.source_dir),
                  "train_data": self.train_dir, "train_data_digest": data_digest(self.train_dir)}
        if self._reads_long_data(config):
            inputs.update(long_data=self.long_dir, long_data_digest=data_digest(self.long_dir))
        if float(config["loss"]["kd"]["weight"]) > 0 and self.teacher_rspec:
            inputs.update(teacher=self.teacher_rspec, teacher_digest=rspec_digest(self.teacher_rspec))
        return inputs

    def _read_data(self, config: dict, session: Session, seed: int) -> None:
        """The source model, the front end and crop lengths, the data and the batch plan."""
        kl_conf = config["loss"]["kl"]
        self.view = long_view_of(config)
        self.source_desc, self.source_state = load_source(self.source_dir)
        feat_conf = self.source_desc["features"]  # the source's front end: the embedder was trained on it
        self.frontend = make_frontend(feat_conf, seed)
        rate = int(feat_conf["sample_rate"])
        self.crop = crop_range(config["short_seconds"], rate)
        self.long_samples = int(round(float(kl_conf["long_seconds"]) * rate))
        if self.view.name is not None and self.long_samples <= self.crop[1]:
            raise DataError(f"loss.kl.long_seconds {kl_conf['long_seconds']} must exceed the longest crop, "
                            f"short_seconds {config['short_seconds']}")
        self.audio = TrainingAudio(self.train_dir, rate)
        self.teacher = self.teacher_mask = None
        if float(config["loss"]["kd"]["weight"]) > 0:
            self.teacher, self.teacher_mask = load_teacher_vectors(self.teacher_rspec, self.audio.utts)
            log.info("teacher vectors from %s: %d of %d utterances have one (the others have no distillation "
                     "term)", self.teacher_rspec, int(self.teacher_mask.sum()), len(self.teacher_mask))
        self.long_audio = None
        if self._reads_long_data(config):
            self.long_audio = TrainingAudio(self.long_dir, rate)
        elif self.long_dir:
            log.info("%s: not read (no replay, long view %s)", self.long_dir, self.view.name)
        self.plan = plan_batches(self.audio, self.long_audio, config["data"], replay_ratio(config), self.crop,
                                 session.world, seed)

    def _build_network(self, config: dict, session: Session) -> TransferNet:
        """The source embedder with the new head (replayed classes from the source head), the
        distillation head, the fixed source head of the ``source`` view."""
        msce_conf, kd_conf = config["loss"]["msce"], config["loss"]["kd"]
        desc, state = self.source_desc, self.source_state
        num_target = len(self.audio.speakers)
        self.speakers = list(self.audio.speakers)
        if self.plan.replay is not None:
            # classes num_target..: the replayed speakers, whatever their names
            self.speakers += self.long_audio.speakers
        self.embedder = build_model(desc["model"], self.frontend.num_bins)
        self.embedder.load_state_dict(ckpt.sub_state_dict(state, "embedder."))
        self.head = AAMSoftmax(self.embedder.embedding_dim, len(self.speakers), float(msce_conf["margin"]),
                               float(msce_conf["scale"]), int(msce_conf["sub_centers"]))
        if self.plan.replay is not None and bool(config["replay"]["init_from_source"]):
            found = init_replay_classes(self.head, state["aam.weight"], int(desc["aam"]["sub_centers"]),
                                        desc["speakers"], self.long_audio.speakers, num_target)
            log.info("replayed classes: %d of %d speakers of %s start from the source head", found,
                     len(self.long_audio.speakers), self.long_dir)
            if not found:
                log.warning("no speaker of %s is a class of the source model: the replayed classes start random",
                            self.long_dir)
        self.kd = None
        if self.teacher is not None:
            self.kd = TeacherDistillation(self.embedder.embedding_dim, self.teacher.shape[1], kd_conf["normalisation"])
            self.kd.normalizer.fit(self.teacher[self.teacher_mask])
        source_head = None
        if self.view.uses_source_head:
            src_aam = desc["aam"]
            source_head = AAMSoftmax(self.embedder.embedding_dim, int(desc["num_classes"]), 0.0,
                                     float(src_aam["scale"]), int(src_aam["sub_centers"]))
            source_head.weight.data.copy_(state["aam.weight"])
        return TransferNet(self.embedder, self.head, self.kd, source_head).to(session.device)

    def _batch_inputs(self, config: dict, seed: int) -> TransferInputs:
        augment = AugmentConfig.from_dict(config["augment"])
        long_data = source_probs = None
        if self.long_audio is not None:
            # babble of the long crops comes from the long corpus itself
            long_data = ChunkBatchDataset(self.long_audio, self.frontend, self.crop[1], augment, [], [], seed, 0)
        if self.view.uses_source_head:
            durations = self.long_audio.lengths.astype(np.float64)
            source_probs = durations / durations.sum()  # every second of speech equally likely
        return TransferInputs(self.audio, self.frontend, self.crop, augment, seed, long_view=self.view,
                              long_samples=self.long_samples, long_data=long_data, source_probs=source_probs,
                              teacher=self.teacher, teacher_mask=self.teacher_mask,
                              label_offset=len(self.audio.speakers))

    def prepare(self, config: dict, session: Session, seed: int) -> Prepared:
        self._read_data(config, session, seed)
        model = self._build_network(config, session)
        plan, msce_conf, kl_conf = self.plan, config["loss"]["msce"], config["loss"]["kl"]
        steps_per_epoch, num_target = plan.num_batches, len(self.audio.speakers)
        self.freeze_blocks = int(config["freeze"]["blocks"])
        self.freeze_steps = int(config["freeze"]["epochs"]) * steps_per_epoch
        set_frozen(self.embedder, self.freeze_blocks, False)  # checks the count before any training
        self.kl_weight, self.kd_weight = float(kl_conf["weight"]), float(config["loss"]["kd"]["weight"])
        self.temperature, self.device = float(kl_conf["temperature"]), session.device
        self.batch_inputs = self._batch_inputs(config, seed)
        self.positions, self.replay_positions = plan.positions(session.rank, session.world)
        replay = None
        if plan.replay is not None:
            replay = {"data": self.long_dir, "ratio": plan.replay_size / plan.batch_size,
                      "crops_per_batch": plan.replay_size, "first_class": num_target,
                      "init_from_source": bool(config["replay"]["init_from_source"])}
        description = model_description(self.source_desc["features"], self.source_desc["model"], msce_conf,
                                        config["loss"]["kd"]["normalisation"], "ivector", len(self.speakers),
                                        self.speakers, None if self.teacher is None else self.teacher.shape[1])
        description["transfer"] = {"source": self.source_dir, "short_seconds": config["short_seconds"],
                                   "freeze": config["freeze"], "kl": kl_conf, "kd_weight": self.kd_weight,
                                   "replay": replay}
        summary = (f"transfer from {self.source_dir}: {num_target} speakers, {len(self.audio.utts)} utterances, "
                   f"{steps_per_epoch} steps/epoch x {config['optim']['num_epochs']} epochs, batch {plan.batch_size}, "
                   f"K {self.head.sub_centers}, kl weight {self.kl_weight:g} (long view {self.view.name}), kd weight "
                   f"{self.kd_weight:g}, first {self.freeze_blocks} blocks frozen for {self.freeze_steps} steps, "
                   f"device {session.device}; crops of {self.crop[0]}-{self.crop[1]} samples (one length per batch); "
                   f"replay: " + ("none" if plan.replay is None else
                                  f"{plan.replay_size} of {plan.batch_size} crops a batch from {self.long_dir} "
                                  f"({len(self.long_audio.speakers)} speakers, classes {num_target}.."
                                  f"{len(self.speakers) - 1})"))
        trainable = [p for name, p in model.named_parameters() if not name.startswith("source_head.")]
        return Prepared(model, self.embedder, self.head, msce_conf, self.frontend, self.crop[1], plan.batch_size,
                        steps_per_epoch, description, summary, trainable=trainable,
                        find_unused_parameters=self.freeze_blocks > 0 or self.kd is not None)

    def dataset(self, epoch: int):
        chosen, replayed = self.plan.epoch(epoch)
        return TransferBatchDataset(self.batch_inputs, epoch, chosen, self.positions, replayed, self.replay_positions)

    def before_step(self, step: int) -> str:
        if self.freeze_blocks <= 0:
            return ""
        frozen = step < self.freeze_steps
        set_frozen(self.embedder, self.freeze_blocks, frozen)
        return " frozen" if frozen else ""

    def step(self, module, batch, step) -> StepResult:
        moved = {k: (v.to(self.device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        labels = moved["labels"]
        ce, kl, mse, logits = module(moved["short"], labels, moved["long"], moved["kl_short"], self.temperature,
                                     moved["teacher"], moved["teacher_mask"], moved["kl_index"])
        loss, parts = ce, {"msce": ce.item()}
        if self.plan.replay is not None:
            # the replayed crops' share of the cross-entropy: does the long speech stay separable?
            replayed = labels >= len(self.audio.speakers)
            parts["msce_replay"] = torch.nn.functional.cross_entropy(logits.detach()[replayed],
                                                                     labels[replayed]).item()
        if self.view.name is not None:
            loss = loss + self.kl_weight * kl
            parts["kl"] = kl.item()
        if self.kd is not None:
            loss = loss + self.kd_weight * mse
            parts["mse"] = mse.item()
        correct = int((logits.detach().argmax(1) == labels).sum().item())
        return StepResult(loss, {"loss": loss.item(), **parts}, correct, len(labels))


def transfer(config: dict, source_dir: str, train_dir: str, out_dir: str, long_dir: str | None = None,
             teacher_rspec: str | None = None, resume: bool = False, stop_after_epoch: int | None = None,
             overwrite: bool = False):
    """Fine-tune the source model on ``train_dir`` (run_task with a TransferTask): (final.pt or the
    last checkpoint when stopped early, this process's trained model or None when the configuration
    had finished earlier)."""
    return run_task(TransferTask(source_dir, train_dir, long_dir, teacher_rspec), config, out_dir, resume=resume,
                    overwrite=overwrite, stop_after_epoch=stop_after_epoch)
