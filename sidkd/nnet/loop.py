"""The training loop shared by the student and the transfer stage: per-step schedule, gradient
clipping, progress lines, a checkpoint per epoch, exact resume, averaging of the last checkpoints,
and DistributedDataParallel (gloo on CPU, nccl on GPU) when started by torchrun.

What is trained, and on what, stays with the caller: ``step_fn(module, batch, step)`` returns the
loss to minimise and what to report; ``batches(epoch)`` gives the epoch's batches, which must be a
function of the epoch alone (seeded), so that resuming at an epoch boundary replays exactly.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from sidkd.errors import DataError
from sidkd.nnet import checkpoint as ckpt
from sidkd.nnet.schedule import WarmupDecayLR
from sidkd.nnet.speed import optimizer_options

__all__ = ["Session", "init_session", "end_session", "seed_everything", "make_optimizer", "make_scheduler", "StepResult",
           "epoch_line", "fit"]

log = logging.getLogger(__name__)


@dataclass
class Session:
    """Where this process runs: its rank among ``world`` processes and its device."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def use_cuda(self) -> bool:
        return self.device.type == "cuda"


def init_session(device: str = "auto") -> Session:
    """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK and join the process group when world > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if device == "cuda" and not use_cuda:
        raise DataError("device: cuda asked for, but no GPU is visible")
    if device not in ("auto", "cuda", "cpu"):
        raise DataError(f"unknown device {device!r} (auto, cpu or cuda)")
    dev = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Session(rank, world, local, dev)


def end_session() -> None:
    """Take the process group down before the interpreter exits: a gloo group left to the exit
    handlers can abort a rank ("terminate called without an active exception") after training
    finished, and torchrun then reports the whole run as failed."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()  # DDP reducers still holding gloo work would outlive the group otherwise
        dist.destroy_process_group()  # fit() ends with a barrier; after an error no rank may wait


def claim_directory(out_dir: str, config: dict, inputs: dict, session: Session, resume: bool,
                    overwrite: bool, sizes: list[str] | None = None) -> str:
    """out_dir/config.yaml for this training (sidkd.nnet.experiment.claim): "done", "resume" or
    "fresh". The writing process decides first; the others follow after a barrier. ``sizes``: the
    sizes fitted to the data (sidkd.sizes), recorded as run.sizes beside the configuration."""
    from sidkd.nnet import experiment
    from sidkd.nnet.speed import autocast_dtype

    run = {"torch": torch.__version__, "device": str(session.device), "processes": session.world,
           "precision": "bf16" if autocast_dtype(config["speed"]["precision"], session.device) else "fp32"}
    if sizes:
        run["sizes"] = list(sizes)
    record = experiment.make_record(config, inputs, run)
    if session.rank == 0:
        state = experiment.claim(out_dir, record, resume, overwrite)
    if session.world > 1:
        dist.barrier()
    if session.rank > 0:
        state = experiment.claim(out_dir, record, resume, overwrite, write=False)
    if state == "done":
        log.info("%s/final.pt: this configuration (hash %s) finished training earlier; nothing to do "
                 "(--overwrite true trains it again)", out_dir, record["config_hash"])
    else:
        log.info("%s/%s: configuration hash %s (%s)", out_dir, experiment.CONFIG_FILE, record["config_hash"],
                 "resuming" if state == "resume" else "new training")
    return state


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(params, conf: dict, impl: str) -> torch.optim.Optimizer:
    """``impl``: single | foreach | fused (sidkd.nnet.speed.optimizer_options): the same update."""
    kind = conf["optimizer"]
    extra = optimizer_options(impl)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=float(conf["lr"]), weight_decay=float(conf["weight_decay"]), **extra)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=float(conf["lr"]), momentum=float(conf["momentum"]),
                               nesterov=bool(conf["nesterov"]), weight_decay=float(conf["weight_decay"]), **extra)
    raise DataError(f"unknown optimizer {kind!r} (adamw or sgd)")


def make_scheduler(optimizer: torch.optim.Optimizer, conf: dict, steps_per_epoch: int) -> WarmupDecayLR:
    return WarmupDecayLR(optimizer, float(conf["lr"]), float(conf["final_lr"]),
                         int(round(float(conf["warmup_epochs"]) * steps_per_epoch)),
                         int(conf["num_epochs"]) * steps_per_epoch, conf["decay"])


@dataclass
class StepResult:
    loss: torch.Tensor  # what is minimised
    parts: dict  # name -> float, batch means of the loss terms, for the progress line
    correct: int  # for the accuracy in the progress line
    count: int  # samples in this process's batch


def _save_checkpoint(path, model, optimizer, scheduler, epoch, step) -> None:
    ckpt.save_atomic({"format": ckpt.CHECKPOINT_FORMAT, "version": ckpt.FORMAT_VERSION, "epoch": epoch,
                      "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "rng": ckpt.rng_state()}, path)


def _check_replicas(model: nn.Module, session: Session, epoch: int) -> None:
    """DDP keeps the processes' parameters identical by construction; a desynchronised run (a
    process that skipped a step, a non-deterministic collective) would silently average garbage.
    Every process's parameter digest goes to rank 0, which logs them and stops on a mismatch."""
    digests: list = [None] * session.world
    dist.all_gather_object(digests, ckpt.parameter_digest(model.named_parameters()))
    if session.rank == 0:
        log.info("epoch %d: parameter digests of the %d processes: %s", epoch, session.world, " ".join(digests))
    if len(set(digests)) != 1:
        raise RuntimeError(f"epoch {epoch}: the {session.world} processes hold different parameters "
                           f"(sha256 {' '.join(d[:12] for d in digests)})")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def epoch_line(epoch: int, num_epochs: int, sums: dict, correct: int, count: int, rate: float, elapsed: float,
               eta: float) -> str:
    """The one progress line of an epoch (loss parts and accuracy: means over this process's
    samples); steps/lib/run_training.sh copies it to the terminal (it matches "epoch E/N:")."""
    count = max(1, count)
    parts = ", ".join(f"{name} {value / count:.4f}" for name, value in sums.items())
    return (f"epoch {epoch}/{num_epochs}: {parts}, acc {correct / count:.3f}, {rate:.1f} samples/s, "
            f"elapsed {_minutes(elapsed)}, ETA {_minutes(eta)}")


def _resume(ckpt_dir: str, model: nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: WarmupDecayLR) -> tuple[int, int]:
    """Load the last checkpoint of ``ckpt_dir`` (model, optimiser, schedule, random state); returns
    (the first epoch to train, the step count); (1, 0) when there is none."""
    found = ckpt.list_checkpoints(ckpt_dir)
    if not found:
        return 1, 0
    state = ckpt.load(found[-1][1])
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError) as exc:
        raise DataError(f"{found[-1][1]} does not fit this configuration ({str(exc).splitlines()[0]}); "
                        f"remove {ckpt_dir} to start afresh") from exc
    scheduler.load_state_dict(state["scheduler"])
    ckpt.set_rng_state(state["rng"])
    log.info("resumed from %s (epoch %d, step %d)", found[-1][1], state["epoch"], int(state["step"]))
    return int(state["epoch"]) + 1, int(state["step"])


def _write_average(ckpt_dir: str, num_epochs: int, average_last: int, final: str) -> None:
    """final.pt: the mean of the last ``average_last`` epoch checkpoints."""
    chosen = [(e, p) for e, p in ckpt.list_checkpoints(ckpt_dir) if e <= num_epochs][-average_last:]
    averaged = ckpt.average_state_dicts([ckpt.load(p)["model"] for _, p in chosen])
    ckpt.save_atomic({"format": ckpt.CHECKPOINT_FORMAT, "version": ckpt.FORMAT_VERSION, "model": averaged,
                      "averaged_epochs": [e for e, _ in chosen]}, final)
    log.info("wrote %s: average of epochs %s", final, [e for e, _ in chosen])


def fit(model: nn.Module, step_fn: Callable[[nn.Module, object, int], StepResult],
        batches: Callable[[int], Iterable], optimizer: torch.optim.Optimizer, scheduler: WarmupDecayLR,
        out_dir: str, session: Session, num_epochs: int, *, log_interval: int, grad_clip: float,
        average_last: int, resume: bool = False, stop_after_epoch: int | None = None,
        before_step: Callable[[int], str] | None = None, find_unused_parameters: bool = False,
        ) -> tuple[str, nn.Module]:
    """Train ``model`` (already on session.device); returns (final.pt or the last checkpoint when
    stopped early, the model). ``before_step(step)`` may change per-step settings (margin, frozen
    layers) and returns text for the progress line."""
    ckpt_dir = os.path.join(out_dir, "checkpoints")
    start_epoch, step = _resume(ckpt_dir, model, optimizer, scheduler) if resume else (1, 0)
    module = model
    if session.world > 1:
        module = nn.parallel.DistributedDataParallel(
            model, device_ids=[session.local_rank] if session.use_cuda else None,
            find_unused_parameters=find_unused_parameters)
    last_epoch = num_epochs if stop_after_epoch is None else min(num_epochs, stop_after_epoch)
    run_start = time.time()
    for epoch in range(start_epoch, last_epoch + 1):
        model.train()
        sums: dict[str, float] = {}
        correct = count = 0
        tick = epoch_start = time.time()
        epoch_sums: dict[str, float] = {}
        epoch_correct = epoch_count = 0
        for batch in batches(epoch):
            status = before_step(step) if before_step is not None else ""
            result = step_fn(module, batch, step)
            optimizer.zero_grad(set_to_none=True)
            result.loss.backward()
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            lr = scheduler.lr
            scheduler.step()
            step += 1
            for name, value in result.parts.items():
                sums[name] = sums.get(name, 0.0) + value * result.count
                epoch_sums[name] = epoch_sums.get(name, 0.0) + value * result.count
            correct += result.correct
            count += result.count
            epoch_correct += result.correct
            epoch_count += result.count
            if step % log_interval == 0 and session.rank == 0:
                rate = count * session.world / max(time.time() - tick, 1e-9)
                parts = ", ".join(f"{name} {value / count:.4f}" for name, value in sums.items())
                log.info("epoch %d step %d: %s acc %.3f lr %.3g%s samples/s %.1f", epoch, step, parts,
                         correct / count, lr, f" {status}" if status else "", rate)
                sums, correct, count, tick = {}, 0, 0, time.time()
        if session.rank == 0:
            path = os.path.join(ckpt_dir, f"epoch_{epoch}.pt")
            _save_checkpoint(path, model, optimizer, scheduler, epoch, step)
            log.info("epoch %d done: wrote %s", epoch, path)
            now = time.time()
            # the ETA extrapolates this run's epochs (a resumed run counts only its own)
            eta = (now - run_start) / (epoch - start_epoch + 1) * (last_epoch - epoch)
            log.info("%s", epoch_line(epoch, num_epochs, epoch_sums, epoch_correct, epoch_count,
                                      epoch_count * session.world / max(now - epoch_start, 1e-9),
                                      now - run_start, eta))
        if session.world > 1:
            _check_replicas(model, session, epoch)
            dist.barrier()
    if last_epoch < num_epochs:
        return os.path.join(ckpt_dir, f"epoch_{last_epoch}.pt"), model
    final = os.path.join(out_dir, "final.pt")
    if session.rank == 0:
        _write_average(ckpt_dir, num_epochs, average_last, final)
    if session.world > 1:
        dist.barrier()
    return final, model
