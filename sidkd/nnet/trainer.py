"""Training of the student: L = L_AAM + λ·L_kd (docs/math.md §4) with margin warm-up, on speaker-balanced
batches of augmented crops; the loop itself (schedule, clipping, checkpoints, resume, averaging, DDP)
is sidkd.nnet.loop.fit.

The network and its heads travel together in ``StudentWithHeads`` so that DDP sees one module and a
checkpoint holds one state_dict; the transfer stage reuses it with a new AAM head.
"""

from __future__ import annotations

import json
import logging
import os

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
)
from sidkd.nnet.config import load_config
from sidkd.nnet.features import FeatureFrontEnd
from sidkd.nnet.experiment import data_digest, file_digest, rspec_digest
from sidkd.nnet.loop import StepResult, claim_directory, fit, init_session, make_optimizer, make_scheduler, seed_everything
from sidkd.nnet.losses import AAMSoftmax, TeacherDistillation, margin_at
from sidkd.nnet.models import build_model
from sidkd.nnet.speed import SPEED_DEFAULTS, Prefetch, check_speed, prepare_embedder, speed_summary, try_compile
from sidkd.nnet.teacher_targets import (FixedCropBatchDataset, build_kd_head, check_target, default_crops_path,
                                       prepare_teacher, target_uses_crops)
from sidkd.sizes import fit_student_config

__all__ = ["StudentWithHeads", "joint_loss", "load_config", "train", "frontend_from_config", "load_embedder",
           "model_description", "worker_init", "make_batches", "fast_model"]

log = logging.getLogger(__name__)

DEFAULTS = {
    "seed": 777,
    "device": "auto",  # auto: cuda when present
    "features": {"kind": "fbank", "sample_rate": 16000, "chunk_seconds": 2.0, "cmn": True,
                 "fbank": {"num_mel_bins": 80}, "mfcc": {}},
    "model": {"type": "resnet", "depths": [2, 2, 2, 2], "width": 16, "embedding_dim": 256,
              "pooling": "attentive", "attention_dim": 128},
    "loss": {"aam": {"margin": 0.2, "scale": 32.0, "sub_centers": 1, "margin_warmup_epochs": [0, 0]},
             "kd": {"weight": 0.0, "normalisation": "length", "target": "ivector",
                    "lda": {"dim": 150, "whiten": True}, "relation": {"loss": "mse", "temperature": 0.1}}},
    "data": {"batch_size": 128, "utts_per_speaker": 2, "speaker_weight_power": 0.5, "chunks_per_epoch": None,
             "num_workers": 0},
    "augment": {},
    "optim": {"optimizer": "adamw", "lr": 0.002, "final_lr": 2e-5, "weight_decay": 1e-4, "momentum": 0.9,
              "nesterov": True, "warmup_epochs": 1.0, "decay": "exponential", "grad_clip": 5.0,
              "num_epochs": 10, "average_last": 3, "log_interval": 20},
    "speed": dict(SPEED_DEFAULTS),  # sidkd.nnet.speed: precision, layout, compile, optimizer, prefetch
}


def frontend_from_config(features: dict) -> FeatureFrontEnd:
    kind = features.get("kind", "fbank")
    return FeatureFrontEnd(features.get(kind), cmn=bool(features.get("cmn", True)),
                           sample_rate=int(features.get("sample_rate", 16000)), kind=kind)


class StudentWithHeads(nn.Module):
    def __init__(self, embedder: nn.Module, aam: AAMSoftmax, kd: TeacherDistillation | None = None):
        super().__init__()
        self.embedder, self.aam, self.kd = embedder, aam, kd

    def forward(self, feats, labels, teacher=None):
        """(AAM loss, KD loss or 0, margin logits)."""
        z = self.embedder(feats)
        aam_loss, logits = self.aam(z, labels)
        kd_loss = self.kd(z, teacher) if self.kd is not None and teacher is not None else aam_loss.new_zeros(())
        return aam_loss, kd_loss, logits


def joint_loss(aam_loss: torch.Tensor, kd_loss: torch.Tensor, kd_weight: float) -> torch.Tensor:
    """L = L_AAM + λ·L_kd."""
    return aam_loss + kd_weight * kd_loss if kd_weight else aam_loss


def worker_init(_):
    torch.set_num_threads(1)


def make_batches(dataset: torch.utils.data.Dataset, workers: int, prefetch: int):
    """The epoch's batches: made by ``workers`` loader processes, else in this process, ``prefetch``
    batches ahead in a background thread (0: serially, between network steps)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                                         worker_init_fn=worker_init if workers else None)
    return Prefetch(loader, prefetch) if prefetch > 0 and workers == 0 else loader


def fast_model(model: nn.Module, embedder: nn.Module, speed: dict, device: torch.device,
               example: torch.Tensor) -> str:
    """Apply the ``speed:`` options to the embedder of ``model`` (in place, before the optimiser is
    made); ``example`` is one input batch for the compile trial. Returns a summary for the log."""
    check_speed(speed)
    dtype = prepare_embedder(embedder, speed, device)
    compiled = bool(speed["compile"]) and try_compile(embedder, example.to(device))
    return speed_summary(speed, dtype, compiled)


def model_description(config: dict, num_classes: int, speakers: list[str], teacher_dim: int | None) -> dict:
    return {"format": ckpt.CHECKPOINT_FORMAT, "version": ckpt.FORMAT_VERSION, "features": config["features"],
            "model": config["model"], "aam": config["loss"]["aam"], "num_classes": num_classes,
            "teacher_dim": teacher_dim, "kd_normalisation": config["loss"]["kd"]["normalisation"],
            "kd_target": config["loss"]["kd"].get("target", "ivector"),
            "speakers": speakers}


def load_embedder(model_dir: str, which: str = "final.pt") -> tuple[nn.Module, dict]:
    """The embedding network of a trained student directory, in eval mode, and its description."""
    with open(os.path.join(model_dir, "model.json"), encoding="utf-8") as handle:
        desc = json.load(handle)
    frontend = frontend_from_config(desc["features"])
    embedder = build_model(desc["model"], frontend.num_bins)
    state = ckpt.load(os.path.join(model_dir, which))["model"]
    embedder.load_state_dict(ckpt.sub_state_dict(state, "embedder."))
    embedder.eval()
    return embedder, desc


def training_inputs(config: dict, train_dir: str, teacher_rspec: str | None, teacher_crops: str | None) -> dict:
    """What the training reads, with digests of their content (DIR/config.yaml's inputs:)."""
    kd_conf = config["loss"]["kd"]
    inputs = {"train_data": train_dir, "train_data_digest": data_digest(train_dir)}
    if float(kd_conf["weight"]) > 0 and teacher_rspec:
        inputs.update(teacher=teacher_rspec, teacher_digest=rspec_digest(teacher_rspec))
        if target_uses_crops(kd_conf.get("target", "ivector")):
            crops = teacher_crops or default_crops_path(teacher_rspec)
            inputs.update(teacher_crops=crops, teacher_crops_digest=file_digest([crops]))
    return inputs


def train(config: dict, train_dir: str, out_dir: str, teacher_rspec: str | None = None, resume: bool = False,
          stop_after_epoch: int | None = None, teacher_crops: str | None = None,
          overwrite: bool = False) -> tuple[str, StudentWithHeads | None]:
    """Train; returns the path of final.pt (or of the last checkpoint when stopped early) and this
    process's trained (not averaged) model (None when the same configuration had finished earlier in
    ``out_dir``). ``teacher_crops``: the crops file of the crop targets (default: ``crops`` beside the
    teacher scp). ``out_dir/config.yaml`` records the configuration; another one there is an error
    unless ``overwrite`` (sidkd.nnet.experiment)."""
    session = init_session(config["device"])
    # sizes the data cannot give (a batch's speakers, the teacher target's LDA) fitted to it, once,
    # before the configuration is recorded: config.yaml holds what was trained, run.sizes says why
    config, fitted = fit_student_config(config, os.path.join(train_dir, "utt2spk"))
    for note in fitted:
        log.info("sizes fitted to %s: %s", train_dir, note)
    state = claim_directory(out_dir, config, training_inputs(config, train_dir, teacher_rspec, teacher_crops),
                            session, resume, overwrite, sizes=fitted)
    if state == "done":
        return os.path.join(out_dir, "final.pt"), None
    resume = state == "resume"
    seed = int(config["seed"])
    seed_everything(seed)
    kd_conf, aam_conf, data_conf, optim_conf = (config["loss"]["kd"], config["loss"]["aam"], config["data"],
                                                config["optim"])
    kd_weight = float(kd_conf["weight"])
    feat_conf = config["features"]
    frontend = frontend_from_config(feat_conf)
    # the dither noise is a random stream too: from the training seed unless the yaml fixes it
    frontend.options.setdefault("dither_seed", seed)
    sample_rate = int(feat_conf.get("sample_rate", 16000))
    chunk_samples = int(round(float(feat_conf["chunk_seconds"]) * sample_rate))

    audio = TrainingAudio(train_dir, sample_rate)
    teacher = crop_teacher = None
    check_target(kd_conf["target"])
    if kd_weight > 0:
        if not teacher_rspec:
            raise DataError("kd weight > 0 needs the teacher vectors (--teacher-scp)")
        teacher, crop_teacher = prepare_teacher(kd_conf, teacher_rspec, audio, chunk_samples, teacher_crops)
    sampler = SpeakerBalancedBatches.from_conf(audio, data_conf, chunk_samples, session.world, seed)
    batch_size, steps_per_epoch = sampler.batch_size, sampler.num_batches
    num_classes = len(audio.speakers)

    embedder = build_model(config["model"], frontend.num_bins)
    aam = AAMSoftmax(embedder.embedding_dim, num_classes, float(aam_conf["margin"]), float(aam_conf["scale"]),
                     int(aam_conf["sub_centers"]))
    kd = None
    if teacher is not None:
        kd = build_kd_head(kd_conf, embedder.embedding_dim, teacher)
    model = StudentWithHeads(embedder, aam, kd).to(session.device)
    speed = config["speed"]
    example = torch.from_numpy(frontend(np.zeros(chunk_samples, np.float32)))[None].repeat(
        batch_size // session.world, 1, 1)
    log.info("speed: %s", fast_model(model, embedder, speed, session.device, example))
    num_epochs = int(optim_conf["num_epochs"])
    optimizer = make_optimizer(model.parameters(), optim_conf, speed["optimizer_impl"])
    scheduler = make_scheduler(optimizer, optim_conf, steps_per_epoch)
    warm = aam_conf.get("margin_warmup_epochs") or [0, 0]
    margin_steps = (int(round(warm[0] * steps_per_epoch)), int(round(warm[1] * steps_per_epoch)))
    final_margin = float(aam_conf["margin"])
    if session.rank == 0:
        os.makedirs(out_dir, exist_ok=True)
        desc = model_description(config, num_classes, audio.speakers, None if teacher is None else teacher.shape[1])
        atomic_write_text(os.path.join(out_dir, "model.json"), json.dumps(desc, indent=1) + "\n")
    per_rank = batch_size // session.world
    positions = slice(session.rank * per_rank, (session.rank + 1) * per_rank)
    log.info("training: %d speakers, %d utterances, %d steps/epoch x %d epochs, batch %d (%d per process x %d), "
             "kd weight %g (target %s), seed %d, device %s", num_classes, len(audio.utts), steps_per_epoch,
             num_epochs, batch_size, per_rank, session.world, kd_weight, kd_conf["target"], seed, session.device)
    augment = AugmentConfig.from_dict(config.get("augment"))
    workers = int(data_conf["num_workers"])

    def batches(epoch: int):
        chosen = sampler.epoch(epoch)
        args = (audio, frontend, chunk_samples, augment, chosen, list(range(len(chosen))), seed, epoch, positions,
                teacher)
        dataset = (FixedCropBatchDataset(*args, crop_teacher=crop_teacher) if crop_teacher is not None
                   else ChunkBatchDataset(*args))
        return make_batches(dataset, workers, int(speed["prefetch"]))

    def before_step(step: int) -> str:
        aam.set_margin(margin_at(step, final_margin, *margin_steps))
        return f"margin {aam.margin:.3f}"

    def step_fn(module, batch, step) -> StepResult:
        feats, labels, teacher_batch = batch
        feats, labels = feats.to(session.device), labels.to(session.device)
        if teacher_batch is not None:
            teacher_batch = teacher_batch.to(session.device)
        aam_loss, kd_loss, logits = module(feats, labels, teacher_batch)
        loss = joint_loss(aam_loss, kd_loss, kd_weight)
        parts = {"loss": loss.item(), "aam": aam_loss.item()}
        if kd is not None:
            parts["kd"] = kd_loss.item()
        correct = int((logits.detach().argmax(1) == labels).sum().item())
        return StepResult(loss, parts, correct, len(labels))

    return fit(model, step_fn, batches, optimizer, scheduler, out_dir, session, num_epochs,
               log_interval=int(optim_conf["log_interval"]), grad_clip=float(optim_conf["grad_clip"]),
               average_last=int(optim_conf["average_last"]), resume=resume, stop_after_epoch=stop_after_epoch,
               before_step=before_step)
