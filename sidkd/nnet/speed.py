"""Speed options of the student's and the transfer stage's training: the yaml's ``speed:`` section.

- ``precision``: ``fp32``, ``bf16`` or ``auto``. With bf16 the convolutional trunk of the embedder
  runs under ``torch.autocast`` (bfloat16 matmuls and convolutions, fp32 master weights); the
  statistics pooling, the embedding layer and every loss stay in fp32 (autocast is off there), as
  the variance of the pooling and the softmax over hundreds of classes lose too much in 8 mantissa
  bits. ``auto`` is bf16 only where the hardware computes bf16 natively (a CUDA GPU with bf16, or a
  CPU with AVX512-BF16/AMX as oneDNN reports it): elsewhere bf16 is emulated and several times
  slower than fp32 (measured: docs/student.md).
- ``channels_last``: the 4-d weights (and so the convolution outputs) in NHWC layout.
- ``compile``: ``torch.compile`` of the embedder, tried on one batch first; any failure (no C++
  compiler, an unsupported op) logs a warning and trains eagerly.
- ``optimizer_impl``: ``foreach`` (one kernel over all tensors of a kind), ``fused`` or ``single``
  (a loop over parameters, the former default). All three compute the same update; the state dict
  is the same, so a checkpoint resumes under any of them.
- ``prefetch``: batches made ahead in a background thread while the network steps (0: made in
  turn, serially). Batch b is a function of (seed, epoch, b) alone, so the thread changes no number.

All of these leave checkpoints as they are (plain fp32 state dicts, weights_only loadable).
"""

from __future__ import annotations

import copy
import logging
import os
import queue
import threading
import types
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from sidkd.errors import DataError

__all__ = ["PRECISIONS", "OPTIMIZER_IMPLS", "check_speed", "autocast_dtype", "prepare_embedder",
           "try_compile", "optimizer_options", "Prefetch", "speed_summary", "allocator_in_use"]

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")
OPTIMIZER_IMPLS = ("single", "foreach", "fused")

def check_speed(speed: dict) -> None:
    if speed["precision"] not in PRECISIONS:
        raise DataError(f"speed.precision {speed['precision']!r}: expected one of {PRECISIONS}")
    if speed["optimizer_impl"] not in OPTIMIZER_IMPLS:
        raise DataError(f"speed.optimizer_impl {speed['optimizer_impl']!r}: expected one of {OPTIMIZER_IMPLS}")
    if int(speed["prefetch"]) < 0:
        raise DataError(f"speed.prefetch must be >= 0, got {speed['prefetch']}")


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 convolutions run in hardware here (else autocast emulates them, slowly)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an old or oneDNN-less build: take it as not native
        return False


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the trunk, or None for fp32."""
    if precision == "bf16" or (precision == "auto" and native_bf16(device)):
        return torch.bfloat16
    return None


def _mixed_forward(self, feats: torch.Tensor) -> torch.Tensor:
    # the trunk under autocast; the pooling statistics (second moments minus squared means) and
    # the embedding layer in fp32, so autocast is left before them
    with torch.autocast(self.autocast_device, dtype=self.autocast_dtype):
        frames = self.frame_features(feats)
    return self.segment_embedding(frames.float())


def prepare_embedder(embedder: nn.Module, speed: dict, device: torch.device) -> torch.dtype | None:
    """Apply precision and layout to the embedder in place; returns the autocast dtype (None: fp32).

    The mixed-precision forward is bound to this instance (a method, so that ``copy.deepcopy``
    gives the copy its own): the module class, its state dict and TorchScript export are unchanged.
    """
    dtype = autocast_dtype(speed["precision"], device)
    if speed["channels_last"]:
        embedder.to(memory_format=torch.channels_last)
    if dtype is not None:
        embedder.autocast_device, embedder.autocast_dtype = device.type, dtype
        embedder.forward = types.MethodType(_mixed_forward, embedder)
    return dtype


def try_compile(embedder: nn.Module, example: torch.Tensor) -> bool:
    """``torch.compile`` the embedder in place and run one forward and backward on ``example``;
    on any failure fall back to eager. The trial leaves parameters, buffers (batch-norm statistics)
    and gradients as they were, so training is unchanged by it."""
    if not hasattr(embedder, "compile"):
        log.warning("speed.compile: this torch has no nn.Module.compile; training eagerly")
        return False
    saved = copy.deepcopy(embedder.state_dict())
    try:
        embedder.compile()
        embedder(example).float().sum().backward()
        ok = True
    except Exception as exc:  # noqa: BLE001 - any compiler failure means: train eagerly
        log.warning("speed.compile: torch.compile failed (%s); training eagerly", str(exc).splitlines()[0][:200])
        embedder._compiled_call_impl = None  # what nn.Module.compile set
        ok = False
    embedder.load_state_dict(saved)
    embedder.zero_grad(set_to_none=True)
    return ok


def optimizer_options(impl: str) -> dict:
    """Keyword arguments of torch.optim.AdamW / SGD for ``optimizer_impl``."""
    if impl == "foreach":
        return {"foreach": True}
    if impl == "fused":
        return {"fused": True}
    return {"foreach": False}


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


_END = object()


class Prefetch:
    """Iterate ``iterable`` in a daemon thread, at most ``depth`` items ahead of the consumer.

    The batch maker is numpy/scipy code that releases the GIL in its array work, so it runs beside
    the network step; ``depth`` bounds the memory. An exception in the thread is raised in the
    consumer; leaving the loop early (an error in the step) stops the thread."""

    def __init__(self, iterable: Iterable, depth: int):
        self.iterable, self.depth = iterable, max(1, int(depth))

    def __len__(self) -> int:
        return len(self.iterable)

    def __iter__(self) -> Iterator:
        items: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    items.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def work() -> None:
            try:
                for item in self.iterable:
                    if not put(item):
                        return
                put(_END)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                put(_Failure(exc))

        thread = threading.Thread(target=work, name="sidkd-batches", daemon=True)
        thread.start()
        try:
            while True:
                item = items.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                yield item
        finally:
            stop.set()
            thread.join(timeout=10.0)


def allocator_in_use() -> str:
    """The process's malloc as path.sh set it (SIDKD_MALLOC): tcmalloc if it is mapped, glibc with
    or without the tunables that keep freed memory."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            if "libtcmalloc" in maps.read():
                return "tcmalloc"
    except OSError:  # not Linux: no /proc
        pass
    if "glibc.malloc.mmap_max=0" in os.environ.get("GLIBC_TUNABLES", ""):
        return "glibc (mmap_max=0)"
    return "glibc default"


def speed_summary(speed: dict, dtype: torch.dtype | None, compiled: bool) -> str:
    return (f"precision {'bf16' if dtype is torch.bfloat16 else 'fp32'} (asked: {speed['precision']}), "
            f"channels_last {bool(speed['channels_last'])}, compiled {compiled}, "
            f"optimizer {speed['optimizer_impl']}, prefetch {int(speed['prefetch'])}, allocator {allocator_in_use()}")
