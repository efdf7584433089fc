"""Where one training step of a student config spends its time: reading and cropping the audio,
reverberation, babble, fbank (+ CMN), SpecAugment, forward, backward, optimiser (with clipping).

    OMP_NUM_THREADS=2 python bench/profile_student.py --config conf/student.yaml --train-data data/train \\
        [--steps 3] [--max-utts 600] [--speed precision=fp32,optimizer_impl=single]

Timers around each part (time.perf_counter), summed over --steps batches after one warm-up batch;
the batch parts repeat ChunkBatchDataset.augmented_features draw for draw, so the work is the
training's. The network parts use the config's speed: options (overridable with --speed), made
serially here: the table gives each part's share of the serial step, i.e. what a prefetch thread
could hide. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

import numpy as np
import torch
from bench_student import Setup, parse_speed, subset_audio

from sidkd.nnet.augment import mix_at_snr, reverberate, spec_augment, synthetic_rir
from sidkd.nnet.data import crop_or_repeat
from sidkd.nnet.streams import Stream, item_rng
from sidkd.nnet.config import load_config
from sidkd.nnet.losses import joint_loss

PARTS = ["read + crop", "reverb", "babble", "fbank + CMN", "SpecAugment", "forward", "backward", "optimiser"]


def timed_batch(setup: Setup, index: int, clock: dict) -> tuple[torch.Tensor, torch.Tensor]:
    data = setup.dataset([index])
    audio, a = setup.audio, setup.augment
    feats = []
    for j, utt in enumerate(data.batches[0]):
        rng = item_rng(data.seed, data.epoch, index, j, Stream.CROP)
        t0 = time.perf_counter()
        x = crop_or_repeat(audio.samples[utt], setup.chunk, rng)
        t1 = time.perf_counter()
        clock["read + crop"] += t1 - t0
        if a.reverb_prob > 0 and rng.random() < a.reverb_prob:
            x = reverberate(x, synthetic_rir(rng.uniform(*a.rt60), audio.sample_rate, rng))
        t2 = time.perf_counter()
        clock["reverb"] += t2 - t1
        if a.babble_prob > 0 and rng.random() < a.babble_prob:
            count = int(rng.integers(a.babble_speakers[0], a.babble_speakers[1] + 1))
            others = rng.integers(0, len(audio.utts), size=count)
            noise = np.zeros_like(x)
            for other in others:
                if other != utt:
                    noise += crop_or_repeat(audio.samples[other], len(x), rng)
            x = mix_at_snr(x, noise, rng.uniform(*a.snr_db))
        t3 = time.perf_counter()
        clock["babble"] += t3 - t2
        f = setup.frontend(x)
        t4 = time.perf_counter()
        clock["fbank + CMN"] += t4 - t3
        if a.specaugment_prob > 0 and rng.random() < a.specaugment_prob:
            f = spec_augment(f, rng, a.time_masks, a.max_time_width, a.freq_masks, a.max_freq_width)
        feats.append(f)
        clock["SpecAugment"] += time.perf_counter() - t4
    t0 = time.perf_counter()
    batch = torch.from_numpy(np.stack(feats)), torch.from_numpy(audio.labels[np.array(data.batches[0])])
    clock["read + crop"] += time.perf_counter() - t0  # the stacking into a batch
    return batch


def timed_step(setup: Setup, model, optimizer, batch, clock: dict) -> None:
    feats, labels = batch
    t0 = time.perf_counter()
    aam_loss, kd_loss, _ = model(feats, labels)
    loss = joint_loss(aam_loss, kd_loss, 0.0)
    t1 = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    t2 = time.perf_counter()
    torch.nn.utils.clip_grad_norm_(model.parameters(), setup.grad_clip)
    optimizer.step()
    t3 = time.perf_counter()
    clock["forward"] += t1 - t0
    clock["backward"] += t2 - t1
    clock["optimiser"] += t3 - t2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--train-data", required=True)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--max-utts", type=int, default=600)
    parser.add_argument("--speed", default="", help="overrides of the config's speed options")
    args = parser.parse_args()
    config = load_config(args.config)
    config["speed"] = dict(config["speed"], **parse_speed(args.speed))
    audio = subset_audio(args.train_data, args.max_utts, int(config["features"]["sample_rate"]))
    setup = Setup(config, audio, args.steps)
    model, optimizer, summary = setup.model(config["speed"])
    warm: dict = defaultdict(float)
    timed_step(setup, model, optimizer, timed_batch(setup, 0, warm), warm)
    clock: dict = defaultdict(float)
    for index in range(1, args.steps + 1):
        timed_step(setup, model, optimizer, timed_batch(setup, index, clock), clock)
    total = sum(clock.values())
    print(f"config {args.config}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, batch {setup.batch_size}, "
          f"{args.steps} steps; speed: {summary}")
    print("| part | ms per batch | share |")
    print("|---|---|---|")
    for part in PARTS:
        print(f"| {part} | {1000 * clock[part] / args.steps:.0f} | {100 * clock[part] / total:.1f} % |")
    print(f"| whole step | {1000 * total / args.steps:.0f} | {args.steps * setup.batch_size / total:.1f} samples/s |")


if __name__ == "__main__":
    main()
