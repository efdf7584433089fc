"""Throughput of the student's training step on this machine, in one run and as ratios:

  (a) today's path: fp32, per-parameter AdamW, batches made serially between network steps
      (what conf/student.yaml did before its speed: section);
  (b) the config's path: its ``speed:`` section (precision, layout, compile, optimiser,
      prefetch), batch making included;
  (c) the ceiling: the same network and speed options as (b) on random tensors (no audio, no
      augmentation, no fbank).

    OMP_NUM_THREADS=2 python bench/bench_student.py --config conf/student.yaml --train-data data/train \\
        [--steps 6] [--max-utts 600] [--speed precision=bf16,prefetch=0]

Every path runs the loop's own step (zero_grad, backward, gradient clipping, optimiser step) on
``--steps`` batches of the config's batch size after one untimed warm-up batch; the timed batches are
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

    def real(self, speed: dict) -> tuple[float, str]:
        """samples/s of the whole path: batch making (as the speed options make it) and the step."""
        model, optimizer, summary = self.model(speed)
        for batch in make_batches(self.dataset([0]), 0, 0):
            self.step(model, optimizer, batch)
        tick = time.time()
        for batch in make_batches(self.dataset(list(range(1, self.steps + 1))), 0, int(speed["prefetch"])):
            self.step(model, optimizer, batch)
        return self.steps * self.batch_size / (time.time() - tick), summary

    def ceiling(self, speed: dict) -> float:
        """samples/s of the network alone on random tensors of the batches' shape."""
        model, optimizer, _ = self.model(speed)
        frames, bins = self.dataset([0])[0][0].shape[1:]
        gen = torch.Generator().manual_seed(0)
        batches = [(torch.randn(self.batch_size, frames, bins, generator=gen),
                    torch.randint(0, len(self.audio.speakers), (self.batch_size,), generator=gen), None)
                   for _ in range(self.steps + 1)]
        self.step(model, optimizer, batches[0])
        tick = time.time()
        for batch in batches[1:]:
            self.step(model, optimizer, batch)
        return self.steps * self.batch_size / (time.time() - tick)

    def preparation(self) -> float:
        """samples/s of batch making alone, in this thread."""
        data = self.dataset(list(range(1, self.steps + 1)))
        tick = time.time()
        for i in range(len(data)):
            data[i]
        return self.steps * self.batch_size / (time.time() - tick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--train-data", required=True)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--max-utts", type=int, default=600)
    parser.add_argument("--speed", default="", help="overrides of (b)'s speed options, e.g. precision=bf16,prefetch=0")
    args = parser.parse_args()
    config = load_config(args.config)
    speed = dict(config["speed"], **parse_speed(args.speed))
    audio = subset_audio(args.train_data, args.max_utts, int(config["features"]["sample_rate"]))
    setup = Setup(config, audio, args.steps)
    print(f"config {args.config}: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} torch threads "
          f"{torch.get_num_threads()}, batch {setup.batch_size}, {args.steps} timed steps, "
          f"feature shape {tuple(setup.dataset([0])[0][0].shape)}", flush=True)
    prep = setup.preparation()
    print(f"batch preparation alone: {prep:.1f} samples/s", flush=True)
    today, today_summary = setup.real(copy.deepcopy(TODAY))
    print(f"(a) today's fp32 serial path: {today:.1f} samples/s  [{today_summary}]", flush=True)
    new, new_summary = setup.real(copy.deepcopy(speed))
    print(f"(b) the config's path:        {new:.1f} samples/s  [{new_summary}]", flush=True)
    top = setup.ceiling(copy.deepcopy(speed))
    print(f"(c) network on random input:  {top:.1f} samples/s (the ceiling of (b))", flush=True)
    print(f"ratios: (b)/(a) {new / today:.2f}x, (c)/(a) {top / today:.2f}x, (b)/(c) {new / top:.2f}")


if __name__ == "__main__":
    main()
