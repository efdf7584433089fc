"""Throughput of the student's training on this machine: batch preparation (crop, augmentation,
fbank) and network step (forward + backward + update), each in samples per second, for a config.

    OMP_NUM_THREADS=2 python bench/bench_student.py --config conf/student.yaml --train-data data/train \\
        [--steps 8] [--max-utts 600]

Loads at most --max-utts utterances (enough for batches), times --steps batches of each part after
one warm-up batch, and prints the rates and the implied time per epoch of the full data.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from sidkd.io.datadir import DataDir
from sidkd.nnet.data import AugmentConfig, ChunkBatchDataset, SpeakerBalancedBatches, TrainingAudio
from sidkd.nnet.losses import AAMSoftmax
from sidkd.nnet.models import build_model
from sidkd.nnet.trainer import StudentWithHeads, frontend_from_config, joint_loss, load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--train-data", required=True)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--max-utts", type=int, default=600)
    args = parser.parse_args()
    config = load_config(args.config)
    feat = config["features"]
    frontend = frontend_from_config(feat)
    rate = int(feat["sample_rate"])
    chunk = int(float(feat["chunk_seconds"]) * rate)
    utts = DataDir(args.train_data).utts
    subset = [utts[i] for i in np.linspace(0, len(utts) - 1, min(args.max_utts, len(utts))).astype(int)]
    audio = TrainingAudio(args.train_data, rate, utts=subset)
    bs = int(config["data"]["batch_size"])
    durations = np.array([len(s) for s in audio.samples], float)
    sampler = SpeakerBalancedBatches(audio.labels, durations, bs, int(config["data"]["utts_per_speaker"]),
                                     args.steps + 1, float(config["data"]["speaker_weight_power"]))
    batches = sampler.epoch(1)
    data = ChunkBatchDataset(audio, frontend, chunk, AugmentConfig.from_dict(config["augment"]), batches,
                             list(range(len(batches))), 0, 1)
    data[0]
    tick = time.time()
    prepared = [data[i] for i in range(1, args.steps + 1)]
    data_rate = args.steps * bs / (time.time() - tick)
    embedder = build_model(config["model"], frontend.num_bins)
    model = StudentWithHeads(embedder, AAMSoftmax(embedder.embedding_dim, len(audio.speakers)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(batch):
        feats, labels, _ = batch
        aam_loss, kd_loss, _ = model(feats, labels)
        optimizer.zero_grad()
        joint_loss(aam_loss, kd_loss, 0.0).backward()
        optimizer.step()

    step(prepared[0])
    tick = time.time()
    for batch in prepared:
        step(batch)
    net_rate = args.steps * bs / (time.time() - tick)
    total_seconds = durations.sum() / rate * len(utts) / len(audio.utts)
    chunks = total_seconds / float(feat["chunk_seconds"])
    both = 1.0 / (1.0 / data_rate + 1.0 / net_rate)
    print(f"config {args.config}: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} torch threads "
          f"{torch.get_num_threads()}, feature shape {tuple(prepared[0][0].shape)}")
    print(f"batch preparation: {data_rate:.1f} samples/s (one process)")
    print(f"network step:      {net_rate:.1f} samples/s")
    print(f"serial (no loader worker): {both:.1f} samples/s; an epoch of ~{chunks:.0f} crops takes "
          f"{chunks / both / 60:.1f} min serial, {chunks / min(data_rate, net_rate) / 60:.1f} min if fully overlapped")


if __name__ == "__main__":
    main()
