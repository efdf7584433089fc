"""Training of the student: L = L_AAM + λ·L_kd (docs/math.md §4) on speaker-balanced batches of
augmented crops, the margin warming up; the shared training layer is sidkd.nnet.task.run_task, the
loop sidkd.nnet.loop.fit.

The distillation target (``loss.kd.target``) is one of sidkd.nnet.teacher_targets; the crop targets
read their batches from the fixed crops of the teacher (FixedCropBatchDataset), the others crop
anywhere (ChunkBatchDataset) and carry the utterance's target.
"""

from __future__ import annotations

import os

from sidkd.nnet.data import (AugmentConfig, ChunkBatchDataset, FixedCropBatchDataset, SpeakerBalancedBatches,
                             TrainingAudio)
from sidkd.nnet.experiment import data_digest, file_digest, rspec_digest
from sidkd.nnet.loop import Session, StepResult
from sidkd.nnet.losses import AAMSoftmax, joint_loss
from sidkd.nnet.models import StudentWithHeads, build_model
from sidkd.nnet.task import Prepared, TrainingTask, make_frontend, model_description, run_task
from sidkd.nnet.teacher_targets import (build_kd_head, check_target, default_crops_path, prepare_teacher,
                                       target_uses_crops)
from sidkd.sizes import fit_student_config

__all__ = ["StudentTask", "train"]


class StudentTask(TrainingTask):
    """The student on ``train_dir``, distilled (λ > 0) towards the teacher vectors ``teacher_rspec``;
    ``teacher_crops``: the crops file of the crop targets (default: ``crops`` beside the teacher scp)."""

    def __init__(self, train_dir: str, teacher_rspec: str | None = None, teacher_crops: str | None = None):
        super().__init__(train_dir, teacher_rspec)
        self.teacher_crops = teacher_crops

    def check(self, config):
        check_target(config["loss"]["kd"]["target"])
        super().check(config)

    def fit_sizes(self, config):
        return fit_student_config(config, os.path.join(self.train_dir, "utt2spk"))

    def inputs(self, config):
        kd_conf = config["loss"]["kd"]
        inputs = {"train_data": self.train_dir, "train_data_digest": data_digest(self.train_dir)}
        if float(kd_conf["weight"]) > 0 and self.teacher_rspec:
            inputs.update(teacher=self.teacher_rspec, teacher_digest=rspec_digest(self.teacher_rspec))
            if target_uses_crops(kd_conf["target"]):
                crops = self.teacher_crops or default_crops_path(self.teacher_rspec)
                inputs.update(teacher_crops=crops, teacher_crops_digest=file_digest([crops]))
        return inputs

    def prepare(self, config: dict, session: Session, seed: int) -> Prepared:
        kd_conf, aam_conf, data_conf = config["loss"]["kd"], config["loss"]["aam"], config["data"]
        self.kd_weight = float(kd_conf["weight"])
        feat_conf = config["features"]
        self.frontend = make_frontend(feat_conf, seed)
        sample_rate = int(feat_conf["sample_rate"])
        self.chunk_samples = int(round(float(feat_conf["chunk_seconds"]) * sample_rate))
        self.audio = audio = TrainingAudio(self.train_dir, sample_rate)
        self.teacher = self.crop_teacher = None
        if self.kd_weight > 0:
            self.teacher, self.crop_teacher = prepare_teacher(kd_conf, self.teacher_rspec, audio, self.chunk_samples,
                                                              self.teacher_crops)
        self.sampler = SpeakerBalancedBatches.from_conf(audio, data_conf, self.chunk_samples, session.world, seed)
        batch_size, steps_per_epoch = self.sampler.batch_size, self.sampler.num_batches
        num_classes = len(audio.speakers)
        embedder = build_model(config["model"], self.frontend.num_bins)
        aam = AAMSoftmax(embedder.embedding_dim, num_classes, float(aam_conf["margin"]), float(aam_conf["scale"]),
                         int(aam_conf["sub_centers"]))
        self.kd = None if self.teacher is None else build_kd_head(kd_conf, embedder.embedding_dim, self.teacher)
        model = StudentWithHeads(embedder, aam, self.kd).to(session.device)
        per_rank = batch_size // session.world
        self.positions = slice(session.rank * per_rank, (session.rank + 1) * per_rank)
        self.seed, self.device = seed, session.device
        self.augment = AugmentConfig.from_dict(config["augment"])
        description = model_description(feat_conf, config["model"], aam_conf, kd_conf["normalisation"],
                                        kd_conf["target"], num_classes, audio.speakers,
                                        None if self.teacher is None else self.teacher.shape[1])
        summary = (f"training: {num_classes} speakers, {len(audio.utts)} utterances, {steps_per_epoch} steps/epoch x "
                   f"{config['optim']['num_epochs']} epochs, batch {batch_size} ({per_rank} per process x "
                   f"{session.world}), kd weight {self.kd_weight:g} (target {kd_conf['target']}), seed {seed}, "
                   f"device {session.device}")
        return Prepared(model, embedder, aam, aam_conf, self.frontend, self.chunk_samples, batch_size, steps_per_epoch,
                        description, summary)

    def dataset(self, epoch: int):
        chosen = self.sampler.epoch(epoch)
        args = (self.audio, self.frontend, self.chunk_samples, self.augment, chosen, list(range(len(chosen))),
                self.seed, epoch, self.positions, self.teacher)
        return (FixedCropBatchDataset(*args, crop_teacher=self.crop_teacher) if self.crop_teacher is not None
                else ChunkBatchDataset(*args))

    def step(self, module, batch, step) -> StepResult:
        feats, labels, teacher_batch = batch
        feats, labels = feats.to(self.device), labels.to(self.device)
        if teacher_batch is not None:
            teacher_batch = teacher_batch.to(self.device)
        aam_loss, kd_loss, logits = module(feats, labels, teacher_batch)
        loss = joint_loss(aam_loss, kd_loss, self.kd_weight)
        parts = {"loss": loss.item(), "aam": aam_loss.item()}
        if self.kd is not None:
            parts["kd"] = kd_loss.item()
        correct = int((logits.detach().argmax(1) == labels).sum().item())
        return StepResult(loss, parts, correct, len(labels))


def train(config: dict, train_dir: str, out_dir: str, teacher_rspec: str | None = None, resume: bool = False,
          stop_after_epoch: int | None = None, teacher_crops: str | None = None,
          overwrite: bool = False) -> tuple[str, StudentWithHeads | None]:
    """Train the student (run_task with a StudentTask): (final.pt or the last checkpoint when stopped
    early, this process's trained model or None when the configuration had finished earlier)."""
    return run_task(StudentTask(train_dir, teacher_rspec, teacher_crops), config, out_dir, resume=resume,
                    overwrite=overwrite, stop_after_epoch=stop_after_epoch)
