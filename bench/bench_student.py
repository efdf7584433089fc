"""Throughput of the student's training step on this machine, in one run and as ratios:

  (a) today's path: fp32, per-parameter AdamW, batches made serially between network steps
      (what conf/student.yaml did before its speed: section);
  (b) the config's path: its ``speed:`` section (precision, layout, compile, optimiser,
      prefetch), batch making included;
  (c) the ceiling: the same network and speed options as (b) on random tensors (no audio, no
      augmentation, no fbank).

    OMP_NUM_THREADS=2 python bench/bench_student.py --config conf/student.yaml --train-data data/train \\
        [--steps 3] [--rounds 3] [--max-utts 600] [--speed precision=bf16,prefetch=0]

Every path runs the loop's own step (zero_grad, backward, gradient clipping, optimiser step) on
``--steps`` batches of the config's batch size per round after one untimed warm-up batch, the paths
taking turns for ``--rounds`` rounds (the ratios are medians over rounds); the timed batches are
made fresh, so a prefetch thread starts empty as at the start of an epoch. The distillation head is
left out (it needs the teacher vectors; its cost is one 256 x 200 linear layer). ``--speed`` overrides
single options of (b) to measure one of them. Loads at most --max-utts utterances (through a
temporary data dir, so that only those are decoded).
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time

import numpy as np
import torch
import yaml

from sidkd.io.datadir import DataDir
from sidkd.nnet.data import AugmentConfig, ChunkBatchDataset, SpeakerBalancedBatches, TrainingAudio
from sidkd.nnet.loop import make_optimizer, seed_everything
from sidkd.nnet.losses import AAMSoftmax
from sidkd.nnet.models import build_model
from sidkd.nnet.speed import SPEED_DEFAULTS
from sidkd.nnet.trainer import StudentWithHeads, fast_model, frontend_from_config, joint_loss, load_config, make_batches

# (a): the training as it was before the speed: options
TODAY = dict(SPEED_DEFAULTS, precision="fp32", channels_last=False, compile=False, optimizer_impl="single",
             prefetch=0)


def subset_audio(train_dir: str, max_utts: int, rate: int) -> TrainingAudio:
    data = DataDir(train_dir)
    utts = data.utts
    chosen = [utts[i] for i in np.linspace(0, len(utts) - 1, min(max_utts, len(utts))).astype(int)]
    wav = dict(line.rstrip("\n").split(maxsplit=1) for line in open(data.file("wav.scp"), encoding="utf-8"))
    utt2spk = data.utt2spk
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "wav.scp"), "w", encoding="utf-8") as out:
            out.writelines(f"{u} {wav[u]}\n" for u in sorted(chosen))
        with open(os.path.join(tmp, "utt2spk"), "w", encoding="utf-8") as out:
            out.writelines(f"{u} {utt2spk[u]}\n" for u in sorted(chosen))
        return TrainingAudio(tmp, rate)


def parse_speed(text: str) -> dict:
    out = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=", 1)
        out[key] = yaml.safe_load(value)
    return out


class Setup:
    def __init__(self, config: dict, audio: TrainingAudio, steps: int):
        self.config, self.audio, self.steps = config, audio, steps
        feat = config["features"]
        self.frontend = frontend_from_config(feat)
        self.chunk = int(round(float(feat["chunk_seconds"]) * int(feat["sample_rate"])))
        self.batch_size = int(config["data"]["batch_size"])
        durations = np.array([len(s) for s in audio.samples], float)
        sampler = SpeakerBalancedBatches(audio.labels, durations, self.batch_size,
                                         int(config["data"]["utts_per_speaker"]), steps + 1,
                                         float(config["data"]["speaker_weight_power"]))
        self.batches = sampler.epoch(1)
        self.augment = AugmentConfig.from_dict(config["augment"])
        self.grad_clip = float(config["optim"]["grad_clip"])

    def dataset(self, indices: list[int]) -> ChunkBatchDataset:
        return ChunkBatchDataset(self.audio, self.frontend, self.chunk, self.augment,
                                 [self.batches[i] for i in indices], indices, 0, 1)

    def model(self, speed: dict):
        seed_everything(0)
        embedder = build_model(self.config["model"], self.frontend.num_bins)
        model = StudentWithHeads(embedder, AAMSoftmax(embedder.embedding_dim, len(self.audio.speakers)))
        example = self.dataset([0])[0][0]
        summary = fast_model(model, embedder, speed, torch.device("cpu"), example)
        optimizer = make_optimizer(model.parameters(), self.config["optim"], speed["optimizer_impl"])
        return model, optimizer, summary

    def step(self, model, optimizer, batch) -> None:
        feats, labels, _ = batch
        aam_loss, kd_loss, _ = model(feats, labels)
        optimizer.zero_grad(set_to_none=True)
        joint_loss(aam_loss, kd_loss, 0.0).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
        optimizer.step()

    def path(self, speed: dict, random_input: bool = False) -> Path:
        return Path(self, speed, random_input)

    def preparation(self, indices: list[int]) -> float:
        """samples/s of batch making alone, in this thread."""
        data = self.dataset(indices)
        tick = time.time()
        for i in range(len(data)):
            data[i]
        return len(indices) * self.batch_size / (time.time() - tick)


class Path:
    """One way of training, set up once (model, optimiser, compile trial) and warmed up on batch 0;
    ``run(indices)`` times those batches, made afresh (a prefetch thread starts empty)."""

    def __init__(self, setup: Setup, speed: dict, random_input: bool):
        self.setup, self.speed, self.random_input = setup, speed, random_input
        tick = time.time()
        self.model, self.optimizer, summary = setup.model(speed)
        self.summary = summary + f", set-up {time.time() - tick:.0f} s"
        self.run([0])

    def batches(self, indices: list[int]):
        if not self.random_input:
            return make_batches(self.setup.dataset(indices), 0, int(self.speed["prefetch"]))
        frames, bins = self.setup.dataset([0])[0][0].shape[1:]
        out = []
        for i in indices:
            gen = torch.Generator().manual_seed(i)
            out.append((torch.randn(self.setup.batch_size, frames, bins, generator=gen),
                        torch.randint(0, len(self.setup.audio.speakers), (self.setup.batch_size,), generator=gen),
                        None))
        return out

    def run(self, indices: list[int]) -> float:
        batches = self.batches(indices)
        tick = time.time()
        for batch in batches:
            self.setup.step(self.model, self.optimizer, batch)
        return len(indices) * self.setup.batch_size / (time.time() - tick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--train-data", required=True)
    parser.add_argument("--steps", type=int, default=3, help="timed batches per path and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds in which the paths take turns")
    parser.add_argument("--max-utts", type=int, default=600)
    parser.add_argument("--speed", default="", help="overrides of (b)'s speed options, e.g. precision=bf16,prefetch=0")
    args = parser.parse_args()
    config = load_config(args.config)
    speed = dict(config["speed"], **parse_speed(args.speed))
    audio = subset_audio(args.train_data, args.max_utts, int(config["features"]["sample_rate"]))
    setup = Setup(config, audio, args.steps * args.rounds)
    print(f"config {args.config}: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} torch threads "
          f"{torch.get_num_threads()}, batch {setup.batch_size}, {args.steps} timed steps, "
          f"feature shape {tuple(setup.dataset([0])[0][0].shape)}", flush=True)
    paths = {"a": setup.path(copy.deepcopy(TODAY)), "b": setup.path(copy.deepcopy(speed)),
             "c": setup.path(copy.deepcopy(speed), random_input=True)}
    names = {"a": "(a) today's fp32 serial path", "b": "(b) the config's path", "c": "(c) network, random input"}
    for key, path in paths.items():
        print(f"{names[key]}: {path.summary}", flush=True)
    rates: dict = {key: [] for key in paths}
    for r in range(args.rounds):
        # the paths take turns on the same batches, so that a change in the machine's load falls on all
        indices = list(range(1 + r * args.steps, 1 + (r + 1) * args.steps))
        for key, path in paths.items():
            rates[key].append(path.run(indices))
        print(f"round {r + 1}: " + ", ".join(f"({k}) {v[-1]:.1f}" for k, v in rates.items()) + " samples/s; "
              f"(b)/(a) {rates['b'][-1] / rates['a'][-1]:.2f}x", flush=True)
    prep = setup.preparation(list(range(1, 1 + args.steps)))
    median = {key: float(np.median(v)) for key, v in rates.items()}
    ratio_ba = float(np.median([b / a for a, b in zip(rates["a"], rates["b"])]))
    ratio_ca = float(np.median([c / a for a, c in zip(rates["a"], rates["c"])]))
    ratio_bc = float(np.median([b / c for b, c in zip(rates["b"], rates["c"])]))
    print(f"batch preparation alone: {prep:.1f} samples/s (one thread)")
    for key in paths:
        print(f"{names[key]}: {median[key]:.1f} samples/s (median of {args.rounds} rounds)")
    print(f"ratios (median over rounds): (b)/(a) {ratio_ba:.2f}x, (c)/(a) {ratio_ca:.2f}x, (b)/(c) {ratio_bc:.2f}")


if __name__ == "__main__":
    main()
