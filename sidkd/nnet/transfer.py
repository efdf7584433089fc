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
from sidkd.nnet.loop import StepResult, fit, init_session, make_optimizer, make_scheduler, seed_everything
from sidkd.nnet.losses import AAMSoftmax, TeacherDistillation, long_short_kl, margin_at
from sidkd.nnet.models import build_model
from sidkd.nnet.trainer import DEFAULTS as STUDENT_DEFAULTS
from sidkd.nnet.trainer import fast_model, frontend_from_config, make_batches, model_description

__all__ = ["DEFAULTS", "LONG_VIEWS", "TransferNet", "concatenated_view", "embedder_blocks", "set_frozen",
           "load_source", "transfer"]

log = logging.getLogger(__name__)

LONG_VIEWS = ("concat", "source")

DEFAULTS = {
    "seed": 777,
    "device": "auto",
    "short_seconds": 1.0,  # the training crops (speechcommands clips are 1 s)
    "freeze": {"blocks": 0, "epochs": 0},
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


class TransferNet(nn.Module):
    """Embedder + new head (+ distillation head, + fixed source head for the ``source`` long view)."""

    def __init__(self, embedder: nn.Module, head: AAMSoftmax, kd: TeacherDistillation | None = None,
                 source_head: AAMSoftmax | None = None):
        super().__init__()
        self.embedder, self.head, self.kd, self.source_head = embedder, head, kd, source_head
        if source_head is not None:
            source_head.weight.requires_grad_(False)

    def forward(self, short, labels, long=None, kl_short=None, temperature: float = 1.0, teacher=None,
                teacher_mask=None):
        """(L_msce, L_kl or 0, L_mse or 0, margin logits). ``long``: the long views; their short
        counterparts are ``kl_short`` when given (the ``source`` view), else ``short`` itself."""
        z = self.embedder(short)
        ce, logits = self.head(z, labels)
        zero = ce.new_zeros(())
        kl = zero
        if long is not None:
            kl_head = self.source_head if self.source_head is not None else self.head
            z_short = z if kl_short is None else self.embedder(kl_short)
            with torch.no_grad():
                logits_long = kl_head.logits(self.embedder(long))
            kl = long_short_kl(logits_long, kl_head.logits(z_short), temperature)
        mse = zero
        if self.kd is not None and teacher is not None and bool(teacher_mask.any()):
            mse = self.kd(z[teacher_mask], teacher[teacher_mask])
        return ce, kl, mse, logits


class TransferBatchDataset(ChunkBatchDataset):
    """Item = one batch: dict of short feats, labels, teacher (+ mask), long views, source short crops."""

    def __init__(self, audio, frontend, short_samples, augment, batches, batch_ids, seed, epoch, positions,
                 teacher, teacher_mask, long_view: str | None, long_samples: int,
                 source: ChunkBatchDataset | None = None, source_probs: np.ndarray | None = None):
        super().__init__(audio, frontend, short_samples, augment, batches, batch_ids, seed, epoch, positions, teacher)
        self.teacher_mask, self.long_view, self.long_samples = teacher_mask, long_view, long_samples
        self.source, self.source_probs = source, source_probs
        self.speaker_utts = [np.flatnonzero(audio.labels == s) for s in range(len(audio.speakers))]

    def __getitem__(self, i: int):
        feats, labels, teacher = super().__getitem__(i)
        batch, batch_id = self.batches[i], self.batch_ids[i]
        positions = range(len(batch))[self.positions]
        out = {"short": feats, "labels": labels, "teacher": teacher, "teacher_mask": None, "long": None,
               "kl_short": None}
        if teacher is not None:
            out["teacher_mask"] = torch.from_numpy(self.teacher_mask[[batch[j] for j in positions]])
        if self.long_view == "concat":
            longs = []
            for j in positions:
                rng = np.random.default_rng([self.seed, self.epoch, batch_id, j, 3])
                utt = batch[j]
                x, _ = concatenated_view(self.audio.samples, self.speaker_utts[self.audio.labels[utt]], utt,
                                         self.long_samples, rng)
                longs.append(self.augmented_features(x, rng, utt))
            out["long"] = torch.from_numpy(np.stack(longs))
        elif self.long_view == "source":
            longs, shorts = [], []
            for j in positions:
                rng = np.random.default_rng([self.seed, self.epoch, batch_id, j, 4])
                utt = int(rng.choice(len(self.source_probs), p=self.source_probs))
                x = crop_or_repeat(self.source.audio.samples[utt], self.long_samples, rng)
                start = int(rng.integers(0, self.long_samples - self.chunk_samples + 1))
                shorts.append(self.source.augmented_features(x[start:start + self.chunk_samples], rng, utt))
                longs.append(self.source.augmented_features(x, rng, utt))
            out["long"], out["kl_short"] = torch.from_numpy(np.stack(longs)), torch.from_numpy(np.stack(shorts))
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


def transfer(config: dict, source_dir: str, train_dir: str, out_dir: str, long_dir: str | None = None,
             teacher_rspec: str | None = None, resume: bool = False, stop_after_epoch: int | None = None):
    """Fine-tune the source model on ``train_dir``; returns (final.pt or the last checkpoint when
    stopped early, this process's trained model)."""
    session = init_session(config["device"])
    seed = int(config["seed"])
    seed_everything(seed)
    loss_conf, data_conf, optim_conf = config["loss"], config["data"], config["optim"]
    msce_conf, kl_conf, kd_conf = loss_conf["msce"], loss_conf["kl"], loss_conf["kd"]
    kl_weight, kd_weight = float(kl_conf["weight"]), float(kd_conf["weight"])
    long_view = kl_conf["long_view"] if kl_weight > 0 else None
    if long_view is not None and long_view not in LONG_VIEWS:
        raise DataError(f"loss.kl.long_view {long_view!r}: expected one of {LONG_VIEWS}")
    if long_view == "source" and not long_dir:
        raise DataError("loss.kl.long_view source needs the long source-domain data (--long-data)")

    source_desc, source_state = load_source(source_dir)
    feat_conf = source_desc["features"]  # the source's front end: the embedder was trained on it
    frontend = frontend_from_config(feat_conf)
    rate = int(feat_conf.get("sample_rate", 16000))
    short_samples = int(round(float(config["short_seconds"]) * rate))
    long_samples = int(round(float(kl_conf["long_seconds"]) * rate))
    if long_view is not None and long_samples <= short_samples:
        raise DataError(f"loss.kl.long_seconds {kl_conf['long_seconds']} must exceed short_seconds "
                        f"{config['short_seconds']}")

    audio = TrainingAudio(train_dir, rate)
    teacher = teacher_mask = None
    if kd_weight > 0:
        if not teacher_rspec:
            raise DataError("kd weight > 0 needs the teacher vectors (--teacher-scp)")
        teacher, teacher_mask = load_teacher_vectors(teacher_rspec, audio.utts)
        log.info("teacher vectors from %s: %d of %d utterances have one (the others have no distillation term)",
                 teacher_rspec, int(teacher_mask.sum()), len(teacher_mask))
    sampler = SpeakerBalancedBatches.from_conf(audio, data_conf, short_samples, session.world, seed)
    batch_size, steps_per_epoch = sampler.batch_size, sampler.num_batches
    num_classes = len(audio.speakers)

    embedder = build_model(source_desc["model"], frontend.num_bins)
    embedder.load_state_dict(ckpt.sub_state_dict(source_state, "embedder."))
    head = AAMSoftmax(embedder.embedding_dim, num_classes, float(msce_conf["margin"]), float(msce_conf["scale"]),
                      int(msce_conf["sub_centers"]))
    kd = None
    if teacher is not None:
        kd = TeacherDistillation(embedder.embedding_dim, teacher.shape[1], kd_conf["normalisation"])
        kd.normalizer.fit(teacher[teacher_mask])
    source_head = source = source_probs = None
    if long_view == "source":
        src_aam = source_desc["aam"]
        source_head = AAMSoftmax(embedder.embedding_dim, int(source_desc["num_classes"]), 0.0,
                                 float(src_aam["scale"]), int(src_aam["sub_centers"]))
        source_head.weight.data.copy_(source_state["aam.weight"])
        source_audio = TrainingAudio(long_dir, rate)
        source_durations = np.array([len(s) for s in source_audio.samples], dtype=np.float64)
        source_probs = source_durations / source_durations.sum()  # every second of speech equally likely
        source = ChunkBatchDataset(source_audio, frontend, short_samples, AugmentConfig.from_dict(config.get("augment")),
                                   [], [], seed, 0)
    model = TransferNet(embedder, head, kd, source_head).to(session.device)
    speed = config["speed"]
    example = torch.from_numpy(frontend(np.zeros(short_samples, np.float32)))[None].repeat(
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
    if session.rank == 0:
        os.makedirs(out_dir, exist_ok=True)
        desc = model_description({"features": feat_conf, "model": source_desc["model"],
                                   "loss": {"aam": msce_conf, "kd": kd_conf}}, num_classes, audio.speakers,
                                  None if teacher is None else teacher.shape[1])
        desc["transfer"] = {"source": source_dir, "short_seconds": config["short_seconds"], "freeze": config["freeze"],
                            "kl": kl_conf, "kd_weight": kd_weight}
        atomic_write_text(os.path.join(out_dir, "model.json"), json.dumps(desc, indent=1) + "\n")
    per_rank = batch_size // session.world
    positions = slice(session.rank * per_rank, (session.rank + 1) * per_rank)
    log.info("transfer from %s: %d speakers, %d utterances, %d steps/epoch x %d epochs, batch %d, K %d, "
             "kl weight %g (long view %s), kd weight %g, first %d blocks frozen for %d steps, device %s",
             source_dir, num_classes, len(audio.utts), steps_per_epoch, num_epochs, batch_size, head.sub_centers,
             kl_weight, long_view, kd_weight, freeze_blocks, freeze_steps, session.device)
    augment = AugmentConfig.from_dict(config.get("augment"))
    workers = int(data_conf["num_workers"])
    temperature = float(kl_conf["temperature"])

    def batches(epoch: int):
        chosen = sampler.epoch(epoch)
        dataset = TransferBatchDataset(audio, frontend, short_samples, augment, chosen, list(range(len(chosen))),
                                       seed, epoch, positions, teacher, teacher_mask, long_view, long_samples,
                                       source, source_probs)
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
                                     temperature, moved["teacher"], moved["teacher_mask"])
        loss = ce
        parts = {"msce": ce.item()}
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
