"""One training layer for every network the recipe trains: ``run_task(task, config, out_dir)``.

What every training does is here, once: the session (device, DDP rank), the configuration's sizes
fitted to the data and recorded with its inputs in ``out_dir/config.yaml`` (done / resume / fresh,
sidkd.nnet.experiment), the seeds, the speed options on the embedder, the optimiser and its
schedule, the margin warm-up of the classification head, model.json, and the loop
(sidkd.nnet.loop.fit: checkpoints, resume, averaging, DDP).

What differs is a ``TrainingTask``: the student (sidkd.nnet.trainer.StudentTask: AAM + distillation
on long speech) and the transfer (sidkd.nnet.transfer.TransferTask: sub-centre CE + KL on short
speech). A task checks its configuration against its data, names its inputs, builds its network
and batches (``prepare``), and computes the loss of a batch (``step``).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from sidkd.errors import DataError
from sidkd.io.datadir import atomic_write_text
from sidkd.nnet import checkpoint as ckpt
from sidkd.nnet.features import FeatureFrontEnd, frontend_from_config
from sidkd.nnet.loop import (Session, StepResult, claim_directory, fit, init_session, make_optimizer, make_scheduler,
                             seed_everything)
from sidkd.nnet.losses import AAMSoftmax, margin_at
from sidkd.nnet.speed import Prefetch, check_speed, prepare_embedder, speed_summary, try_compile

__all__ = ["TrainingTask", "Prepared", "run_task", "make_frontend", "make_batches", "fast_model",
           "model_description", "worker_init"]

log = logging.getLogger(__name__)


def make_frontend(features: dict, seed: int) -> FeatureFrontEnd:
    """The front end of a ``features:`` section for training: its dither noise is a random stream
    too, drawn from the training seed unless the section fixes ``dither_seed``."""
    frontend = frontend_from_config(features)
    frontend.options.setdefault("dither_seed", seed)
    return frontend


def worker_init(_):
    torch.set_num_threads(1)


def make_batches(dataset: torch.utils.data.Dataset, workers: int, prefetch: int):
    """The epoch's batches: made by ``workers`` loader processes, else in this process, ``prefetch``
    batches ahead in a background thread (0: serially, between network steps)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                                         worker_init_fn=worker_init if workers else None)
    return Prefetch(loader, prefetch) if prefetch > 0 and workers == 0 else loader


def fast_model(embedder: nn.Module, speed: dict, device: torch.device, example: torch.Tensor) -> str:
    """Apply the ``speed:`` options to ``embedder`` (in place, before the optimiser is made);
    ``example`` is one input batch for the compile trial. Returns a summary for the log."""
    check_speed(speed)
    dtype = prepare_embedder(embedder, speed, device)
    compiled = bool(speed["compile"]) and try_compile(embedder, example.to(device))
    return speed_summary(speed, dtype, compiled)


def model_description(features: dict, model: dict, head: dict, kd_normalisation: str, kd_target: str,
                      num_classes: int, speakers: list[str], teacher_dim: int | None) -> dict:
    """model.json: what embedding needs (the front end and the network) and what the heads were,
    from the recorded configuration's sections (``head``: its ``loss.aam`` or ``loss.msce``)."""
    return {"format": ckpt.CHECKPOINT_FORMAT, "version": ckpt.FORMAT_VERSION, "features": features, "model": model,
            "aam": head, "num_classes": num_classes, "teacher_dim": teacher_dim, "kd_normalisation": kd_normalisation,
            "kd_target": kd_target, "speakers": speakers}


@dataclass(eq=False)
class Prepared:
    """What a task built for one training."""

    model: nn.Module  # the network with all its heads (one module: DDP, checkpoints)
    embedder: nn.Module  # the part the speed options apply to
    head: AAMSoftmax  # the classification head whose margin warms up
    head_conf: dict  # its section: margin, margin_warmup_epochs
    frontend: FeatureFrontEnd
    example_samples: int  # input length of the compile trial
    batch_size: int  # the global batch
    steps_per_epoch: int
    description: dict  # model.json
    summary: str  # the training's line in the log
    trainable: list[nn.Parameter] | None = None  # None: every parameter of ``model``
    find_unused_parameters: bool = False  # DDP: some parameters get no gradient in some steps


class TrainingTask:
    """What one kind of training does differently. ``train_dir`` is its training data,
    ``teacher_rspec`` the teacher vectors of its distillation term (or None)."""

    def __init__(self, train_dir: str, teacher_rspec: str | None = None):
        self.train_dir, self.teacher_rspec = train_dir, teacher_rspec

    def check(self, config: dict) -> None:
        """Errors of the configuration against the task's inputs, before anything is written."""
        if float(config["loss"]["kd"]["weight"]) > 0 and not self.teacher_rspec:
            raise DataError("loss.kd.weight > 0 needs the teacher vectors (--teacher-scp)")

    def fit_sizes(self, config: dict) -> tuple[dict, list[str]]:
        """The configuration with the sizes the data cannot give fitted to it (sidkd.sizes), and
        notes of what was fitted."""
        return config, []

    def inputs(self, config: dict) -> dict:
        """What the training reads, with digests of their content (config.yaml's ``inputs:``)."""
        raise NotImplementedError

    def prepare(self, config: dict, session: Session, seed: int) -> Prepared:
        """Read the data, build the network and heads, keep what dataset() and step() need."""
        raise NotImplementedError

    def dataset(self, epoch: int) -> torch.utils.data.Dataset:
        """The batches of ``epoch``, one item a batch (run_task loads them as data.num_workers and
        speed.prefetch say)."""
        raise NotImplementedError

    def before_step(self, step: int) -> str:
        """Per-step settings besides the margin (frozen layers); text for the progress line."""
        return ""

    def step(self, module: nn.Module, batch, step: int) -> StepResult:
        raise NotImplementedError


def _margin_schedule(prepared: Prepared, task: TrainingTask) -> Callable[[int], str]:
    warm = prepared.head_conf["margin_warmup_epochs"]
    start, end = (int(round(float(epochs) * prepared.steps_per_epoch)) for epochs in warm)
    final = float(prepared.head_conf["margin"])

    def before_step(step: int) -> str:
        prepared.head.set_margin(margin_at(step, final, start, end))
        return f"margin {prepared.head.margin:.3f}" + task.before_step(step)

    return before_step


def run_task(task: TrainingTask, config: dict, out_dir: str, resume: bool = False, overwrite: bool = False,
             stop_after_epoch: int | None = None) -> tuple[str, nn.Module | None]:
    """Train; returns the path of final.pt (or of the last checkpoint when stopped early) and this
    process's trained (not averaged) model; None when the same configuration had finished earlier in
    ``out_dir``. ``out_dir/config.yaml`` records the configuration and its inputs; another one there
    is an error unless ``overwrite`` (sidkd.nnet.experiment)."""
    session = init_session(config["device"])
    task.check(config)
    # sizes the data cannot give, fitted once before the configuration is recorded: config.yaml
    # holds what was trained, run.sizes says why
    config, fitted = task.fit_sizes(config)
    for note in fitted:
        log.info("sizes fitted to %s: %s", task.train_dir, note)
    state = claim_directory(out_dir, config, task.inputs(config), session, resume, overwrite, sizes=fitted)
    if state == "done":
        return os.path.join(out_dir, "final.pt"), None
    seed = int(config["seed"])
    seed_everything(seed)
    prepared = task.prepare(config, session, seed)
    speed, optim_conf = config["speed"], config["optim"]
    example = torch.from_numpy(prepared.frontend(np.zeros(prepared.example_samples, np.float32)))[None].repeat(
        prepared.batch_size // session.world, 1, 1)
    log.info("speed: %s", fast_model(prepared.embedder, speed, session.device, example))
    params = prepared.trainable if prepared.trainable is not None else prepared.model.parameters()
    optimizer = make_optimizer(params, optim_conf, speed["optimizer_impl"])
    scheduler = make_scheduler(optimizer, optim_conf, prepared.steps_per_epoch)
    if session.rank == 0:
        os.makedirs(out_dir, exist_ok=True)
        atomic_write_text(os.path.join(out_dir, "model.json"), json.dumps(prepared.description, indent=1) + "\n")
    log.info("%s", prepared.summary)
    workers, prefetch = int(config["data"]["num_workers"]), int(speed["prefetch"])

    def batches(epoch: int):
        return make_batches(task.dataset(epoch), workers, prefetch)

    return fit(prepared.model, task.step, batches, optimizer, scheduler, out_dir, session,
               int(optim_conf["num_epochs"]), log_interval=int(optim_conf["log_interval"]),
               grad_clip=float(optim_conf["grad_clip"]), average_last=int(optim_conf["average_last"]),
               resume=state == "resume", stop_after_epoch=stop_after_epoch,
               before_step=_margin_schedule(prepared, task), find_unused_parameters=prepared.find_unused_parameters)
