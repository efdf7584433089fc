"""The student's training loop: L = L_AAM + λ·L_kd (MATH.md §4), per-step warm-up/decay learning
rate, margin warm-up, gradient clipping, a checkpoint per epoch, exact resume, averaging of the last
checkpoints, DistributedDataParallel (gloo on CPU, nccl on GPU) when started by torchrun.

The network and its heads travel together in ``StudentWithHeads`` so that DDP sees one module and a
checkpoint holds one state_dict; the transfer stage reuses it with a new AAM head.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import time

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from sidkd.errors import DataError
from sidkd.io.datadir import atomic_write_text
from sidkd.nnet import checkpoint as ckpt
from sidkd.nnet.data import (AugmentConfig, ChunkBatchDataset, SpeakerBalancedBatches, TrainingAudio,
                             load_teacher_vectors)
from sidkd.nnet.features import FeatureFrontEnd
from sidkd.nnet.losses import AAMSoftmax, TeacherDistillation, margin_at
from sidkd.nnet.models import build_model
from sidkd.nnet.schedule import WarmupDecayLR

__all__ = ["StudentWithHeads", "joint_loss", "load_config", "train", "frontend_from_config", "load_embedder"]

log = logging.getLogger(__name__)

DEFAULTS = {
    "seed": 777,
    "device": "auto",  # auto: cuda when present
    "features": {"kind": "fbank", "sample_rate": 16000, "chunk_seconds": 2.0, "cmn": True,
                 "fbank": {"num_mel_bins": 80}},
    "model": {"type": "resnet", "depths": [2, 2, 2, 2], "width": 16, "embedding_dim": 256,
              "pooling": "attentive", "attention_dim": 128},
    "loss": {"aam": {"margin": 0.2, "scale": 32.0, "sub_centers": 1, "margin_warmup_epochs": [0, 0]},
             "kd": {"weight": 0.0, "normalisation": "length"}},
    "data": {"batch_size": 128, "utts_per_speaker": 2, "speaker_weight_power": 0.5, "chunks_per_epoch": None,
             "num_workers": 0},
    "augment": {},
    "optim": {"optimizer": "adamw", "lr": 0.002, "final_lr": 2e-5, "weight_decay": 1e-4, "momentum": 0.9,
              "nesterov": True, "warmup_epochs": 1.0, "decay": "exponential", "grad_clip": 5.0,
              "num_epochs": 10, "average_last": 3, "log_interval": 20},
}


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("fbank", "mfcc"):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | None, overrides: dict | None = None) -> dict:
    import yaml

    conf = {}
    if path:
        with open(path, encoding="utf-8") as handle:
            conf = yaml.safe_load(handle) or {}
        if not isinstance(conf, dict):
            raise DataError(f"{path}: expected a yaml mapping")
    return _merge(_merge(DEFAULTS, conf), overrides or {})


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


def _distributed() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _worker_init(_):
    torch.set_num_threads(1)


def _model_description(config: dict, num_classes: int, speakers: list[str], teacher_dim: int | None) -> dict:
    return {"format": ckpt.CHECKPOINT_FORMAT, "version": ckpt.FORMAT_VERSION, "features": config["features"],
            "model": config["model"], "aam": config["loss"]["aam"], "num_classes": num_classes,
            "teacher_dim": teacher_dim, "kd_normalisation": config["loss"]["kd"]["normalisation"],
            "speakers": speakers}


def load_embedder(model_dir: str, which: str = "final.pt") -> tuple[nn.Module, dict]:
    """The embedding network of a trained student directory, in eval mode, and its description."""
    with open(os.path.join(model_dir, "model.json"), encoding="utf-8") as handle:
        desc = json.load(handle)
    frontend = frontend_from_config(desc["features"])
    embedder = build_model(desc["model"], frontend.num_bins)
    state = ckpt.load(os.path.join(model_dir, which))["model"]
    prefix = "embedder."
    embedder.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    embedder.eval()
    return embedder, desc


def train(config: dict, train_dir: str, out_dir: str, teacher_rspec: str | None = None, resume: bool = False,
          stop_after_epoch: int | None = None) -> tuple[str, StudentWithHeads]:
    """Train; returns the path of final.pt (or of the last checkpoint when stopped early) and this
    process's trained (not averaged) model."""
    rank, world, local_rank = _distributed()
    use_cuda = config["device"] in ("auto", "cuda") and torch.cuda.is_available()
    if config["device"] == "cuda" and not use_cuda:
        raise DataError("device: cuda asked for, but no GPU is visible")
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(device)
    seed = int(config["seed"])
    _seed_all(seed)
    kd_conf, aam_conf, data_conf, optim_conf = (config["loss"]["kd"], config["loss"]["aam"], config["data"],
                                                config["optim"])
    kd_weight = float(kd_conf["weight"])
    feat_conf = config["features"]
    frontend = frontend_from_config(feat_conf)
    sample_rate = int(feat_conf.get("sample_rate", 16000))
    chunk_samples = int(round(float(feat_conf["chunk_seconds"]) * sample_rate))

    audio = TrainingAudio(train_dir, sample_rate)
    teacher = None
    if kd_weight > 0:
        if not teacher_rspec:
            raise DataError("kd weight > 0 needs the teacher vectors (--teacher-scp)")
        vectors, present = load_teacher_vectors(teacher_rspec, audio.utts)
        missing = int((~present).sum())
        for utt in np.array(audio.utts)[~present][:20]:
            log.warning("no teacher vector for %s: skipped", utt)
        log.info("teacher vectors from %s: %d utterances in, %d kept + %d skipped for lack of one",
                 teacher_rspec, len(present), int(present.sum()), missing)
        audio.keep(present)
        teacher = vectors[present]
    durations = np.array([len(s) for s in audio.samples], dtype=np.float64)
    chunks_per_epoch = data_conf["chunks_per_epoch"] or int(durations.sum() // chunk_samples)
    batch_size = int(data_conf["batch_size"])
    if batch_size % world:
        raise DataError(f"batch_size {batch_size} is not divisible by the {world} processes")
    steps_per_epoch = max(1, chunks_per_epoch // batch_size)
    sampler = SpeakerBalancedBatches(audio.labels, durations, batch_size, int(data_conf["utts_per_speaker"]),
                                     steps_per_epoch, float(data_conf["speaker_weight_power"]), seed)
    num_classes = len(audio.speakers)

    embedder = build_model(config["model"], frontend.num_bins)
    aam = AAMSoftmax(embedder.embedding_dim, num_classes, float(aam_conf["margin"]), float(aam_conf["scale"]),
                     int(aam_conf["sub_centers"]))
    kd = None
    if teacher is not None:
        kd = TeacherDistillation(embedder.embedding_dim, teacher.shape[1], kd_conf["normalisation"])
        kd.normalizer.fit(teacher)
    model = StudentWithHeads(embedder, aam, kd).to(device)
    num_epochs = int(optim_conf["num_epochs"])
    total_steps = num_epochs * steps_per_epoch
    params = model.parameters()
    if optim_conf["optimizer"] == "adamw":
        optimizer = torch.optim.AdamW(params, lr=float(optim_conf["lr"]), weight_decay=float(optim_conf["weight_decay"]))
    elif optim_conf["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(params, lr=float(optim_conf["lr"]), momentum=float(optim_conf["momentum"]),
                                    nesterov=bool(optim_conf["nesterov"]), weight_decay=float(optim_conf["weight_decay"]))
    else:
        raise DataError(f"unknown optimizer {optim_conf['optimizer']!r} (adamw or sgd)")
    scheduler = WarmupDecayLR(optimizer, float(optim_conf["lr"]), float(optim_conf["final_lr"]),
                              int(round(float(optim_conf["warmup_epochs"]) * steps_per_epoch)), total_steps,
                              optim_conf["decay"])
    warm = aam_conf.get("margin_warmup_epochs") or [0, 0]
    margin_steps = (int(round(warm[0] * steps_per_epoch)), int(round(warm[1] * steps_per_epoch)))
    final_margin = float(aam_conf["margin"])

    ckpt_dir = os.path.join(out_dir, "checkpoints")
    start_epoch, step = 1, 0
    if resume and ckpt.list_checkpoints(ckpt_dir):
        last_epoch, path = ckpt.list_checkpoints(ckpt_dir)[-1]
        state = ckpt.load(path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        ckpt.set_rng_state(state["rng"])
        start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
        log.info("resumed from %s (epoch %d, step %d)", path, last_epoch, step)
    if rank == 0:
        os.makedirs(out_dir, exist_ok=True)
        desc = _model_description(config, num_classes, audio.speakers, None if teacher is None else teacher.shape[1])
        atomic_write_text(os.path.join(out_dir, "model.json"), json.dumps(desc, indent=1) + "\n")
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None) if world > 1 else model
    per_rank = batch_size // world
    positions = slice(rank * per_rank, (rank + 1) * per_rank)
    log.info("training: %d speakers, %d utterances, %d steps/epoch x %d epochs, batch %d (%d per process x %d), "
             "kd weight %g, device %s", num_classes, len(audio.utts), steps_per_epoch, num_epochs, batch_size,
             per_rank, world, kd_weight, device)
    interval = int(optim_conf["log_interval"])
    clip = float(optim_conf["grad_clip"])
    augment = AugmentConfig.from_dict(config.get("augment"))
    last_epoch = num_epochs if stop_after_epoch is None else min(num_epochs, stop_after_epoch)
    for epoch in range(start_epoch, last_epoch + 1):
        model.train()
        batches = sampler.epoch(epoch)
        dataset = ChunkBatchDataset(audio, frontend, chunk_samples, augment, batches, list(range(len(batches))),
                                    seed, epoch, positions, teacher)
        workers = int(data_conf["num_workers"])
        loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                                             worker_init_fn=_worker_init if workers else None)
        sums = np.zeros(4)  # aam, kd, correct, count
        tick = time.time()
        for feats, labels, teacher_batch in loader:
            aam.set_margin(margin_at(step, final_margin, *margin_steps))
            feats, labels = feats.to(device), labels.to(device)
            if teacher_batch is not None:
                teacher_batch = teacher_batch.to(device)
            aam_loss, kd_loss, logits = ddp(feats, labels, teacher_batch)
            loss = joint_loss(aam_loss, kd_loss, kd_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            lr = scheduler.lr
            scheduler.step()
            step += 1
            with torch.no_grad():
                sums += [aam_loss.item() * len(labels), kd_loss.item() * len(labels),
                         (logits.argmax(1) == labels).sum().item(), len(labels)]
            if step % interval == 0 and rank == 0:
                n = sums[3]
                rate = n * world / max(time.time() - tick, 1e-9)
                log.info("epoch %d step %d: loss %.4f (aam %.4f + %g x kd %.4f) acc %.3f lr %.3g margin %.3f "
                         "samples/s %.1f", epoch, step, (sums[0] + kd_weight * sums[1]) / n, sums[0] / n, kd_weight,
                         sums[1] / n, sums[2] / n, lr, aam.margin, rate)
                sums[:] = 0
                tick = time.time()
        if rank == 0:
            path = os.path.join(ckpt_dir, f"epoch_{epoch}.pt")
            ckpt.save_atomic({"format": ckpt.CHECKPOINT_FORMAT, "version": ckpt.FORMAT_VERSION, "epoch": epoch,
                              "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                              "scheduler": scheduler.state_dict(), "rng": ckpt.rng_state()}, path)
            log.info("epoch %d done: wrote %s", epoch, path)
        if world > 1:
            dist.barrier()
    final = os.path.join(out_dir, "final.pt")
    if last_epoch < num_epochs:
        return os.path.join(ckpt_dir, f"epoch_{last_epoch}.pt"), model
    if rank == 0:
        chosen = ckpt.list_checkpoints(ckpt_dir)[-int(optim_conf["average_last"]):]
        averaged = ckpt.average_state_dicts([ckpt.load(p)["model"] for _, p in chosen])
        ckpt.save_atomic({"format": ckpt.CHECKPOINT_FORMAT, "version": ckpt.FORMAT_VERSION, "model": averaged,
                          "averaged_epochs": [e for e, _ in chosen]}, final)
        log.info("wrote %s: average of epochs %s", final, [e for e, _ in chosen])
    if world > 1:
        dist.barrier()
    return final, model
