"""Throughput of the student's training step on this machine, in one run and as ratios:

  (a) today's path: fp32, per-parameter AdamW, batches made serially between network steps
      (what conf/student.yaml did before its speed: section), glibc's default allocator;
  (b0) the config's path: its ``speed:`` section (precision, layout, compile, optimiser,
      prefetch), batch making included, glibc's default allocator;
  (b) the same under the recipe's allocator (path.sh's SIDKD_MALLOC: tcmalloc where installed,
      else glibc with mmap_max=0);
  (c) the ceiling: the network of (b) on random tensors (no audio, no augmentation, no fbank),
      under the recipe's allocator;
  and (b) under each other allocator of ``--allocators`` (e.g. ``glibc`` where tcmalloc is the default).

    OMP_NUM_THREADS=2 python bench/bench_student.py --config conf/student.yaml --train-data data/train \\
        [--steps 3] [--rounds 3] [--max-utts 400] [--speed precision=fp32,prefetch=0] [--allocators glibc]

An allocator is chosen when a process starts, so every path is a worker process of its own with
the environment path.sh gives for its setting; the workers take turns, one stepping at a time, for
``--rounds`` rounds on the same batches (the ratios are medians over rounds). Every path runs the
loop's own step (zero_grad, backward, gradient clipping, optimiser step) on ``--steps`` batches of
the config's batch size per round after one untimed warm-up batch; the timed batches are made
fresh, so a prefetch thread starts empty as at the start of an epoch. Each worker also reports the
kernel's share of its CPU time and its minor page faults per second over the timed steps, and its
peak RSS. The distillation head is left out (it needs the teacher vectors; its cost is one 256 x
200 linear layer). ``--speed`` overrides single options of (b0), (b) and (c). Loads at most
--max-utts utterances (through a temporary data dir, so that only those are decoded).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import yaml

from sidkd.io.datadir import DataDir
from sidkd.nnet.data import AugmentConfig, ChunkBatchDataset, SpeakerBalancedBatches, TrainingAudio
from sidkd.nnet.loop import make_optimizer, seed_everything
from sidkd.nnet.losses import AAMSoftmax
from sidkd.nnet.config import load_config
from sidkd.nnet.features import frontend_from_config
from sidkd.nnet.losses import joint_loss
from sidkd.nnet.models import StudentWithHeads, build_model
from sidkd.nnet.task import fast_model, make_batches

# (a): the training as it was before the speed: options
TODAY = dict(precision="fp32", channels_last=False, compile=False, optimizer_impl="single", prefetch=0)


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
        aam = self.config["loss"]["aam"]
        model = StudentWithHeads(embedder, AAMSoftmax(embedder.embedding_dim, len(self.audio.speakers),
                                                      float(aam["margin"]), float(aam["scale"])))
        example = self.dataset([0])[0][0]
        summary = fast_model(embedder, speed, torch.device("cpu"), example)
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


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALLOCATOR_VARS = ("LD_PRELOAD", "GLIBC_TUNABLES", "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD", "SIDKD_MALLOC")


def allocator_env(setting: str) -> dict:
    """This process's environment with the allocator variables that path.sh exports for
    SIDKD_MALLOC=setting ("system": none of them)."""
    env = {k: v for k, v in os.environ.items() if k not in ALLOCATOR_VARS}
    probe = subprocess.run(["bash", "-c", f'. "{REPO}/path.sh" >&2 && env -0'], capture_output=True, check=True,
                           env=dict(env, SIDKD_MALLOC=setting, SIDKD_NO_VENV="1"))
    sourced = dict(item.split("=", 1) for item in probe.stdout.decode().split("\0") if "=" in item)
    env.update({k: sourced[k] for k in ALLOCATOR_VARS if k in sourced})
    return env


def worker(args: argparse.Namespace) -> None:
    """One path in this process: set up, warm up, then time the rounds the parent asks for on stdin
    ("i j k" batch indices) and answer one JSON line each."""
    config = load_config(args.config)
    speed = dict(config["speed"], **parse_speed(args.speed)) if args.worker != "a" else copy.deepcopy(TODAY)
    audio = subset_audio(args.train_data, args.max_utts, int(config["features"]["sample_rate"]))
    setup = Setup(config, audio, args.steps * args.rounds)
    path = setup.path(speed, random_input=args.worker == "c")
    shape = tuple(setup.dataset([0])[0][0].shape)
    print(json.dumps({"summary": path.summary, "batch": setup.batch_size,
                      "shape": shape, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        indices = [int(i) for i in line.split()]
        if not indices:
            prep = setup.preparation(list(range(1, 1 + args.steps)))
            print(json.dumps({"preparation": prep}), flush=True)
            continue
        cpu0, usage0 = os.times(), resource.getrusage(resource.RUSAGE_SELF)
        rate = path.run(indices)
        cpu1, usage1 = os.times(), resource.getrusage(resource.RUSAGE_SELF)
        user, system = cpu1.user - cpu0.user, cpu1.system - cpu0.system
        wall = len(indices) * setup.batch_size / rate
        print(json.dumps({"rate": rate, "system_share": system / max(user + system, 1e-9),
                          "faults_per_s": (usage1.ru_minflt - usage0.ru_minflt) / wall,
                          "peak_rss_mb": usage1.ru_maxrss / 1024}), flush=True)


class Worker:
    """A worker process (``--worker key``) under the allocator of ``setting``."""

    def __init__(self, key: str, setting: str, argv: list[str]):
        self.key = key
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), *argv, "--worker", key],
                                     env=allocator_env(setting), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def ask(self, line: str | None) -> dict:
        """Send ``line`` (None: nothing, only read the answer the worker gives when ready)."""
        if line is not None:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise SystemExit(f"bench worker ({self.key}) ended (exit {self.proc.wait()}); its error is above")
        return json.loads(answer)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--train-data", required=True)
    parser.add_argument("--steps", type=int, default=3, help="timed batches per path and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds in which the paths take turns")
    parser.add_argument("--max-utts", type=int, default=600)
    parser.add_argument("--speed", default="", help="overrides of (b)'s speed options, e.g. precision=bf16,prefetch=0")
    parser.add_argument("--allocators", default="",
                        help="more SIDKD_MALLOC settings to run (b) under, e.g. 'glibc tcmalloc'")
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    argv = sys.argv[1:]
    recipe = "tcmalloc" if "libtcmalloc" in allocator_env("auto").get("LD_PRELOAD", "") else "glibc"
    plan = [("a", "system", "(a) today's fp32 serial path, glibc default"),
            ("b0", "system", "(b0) the config's path, glibc default"),
            ("b", recipe, f"(b) the config's path, recipe's allocator ({recipe})"),
            ("c", recipe, f"(c) network on random input, {recipe}")]
    plan += [(f"b-{name}", name, f"(b) the config's path, {name}") for name in args.allocators.split()
             if name != recipe]
    workers = {key: Worker(key, setting, argv) for key, setting, _ in plan}
    names = {key: name for key, _, name in plan}
    for key, work in workers.items():  # all set up (in parallel) before any timing starts
        ready = work.ask(None)
        print(f"{names[key]}: {ready['summary']}", flush=True)
    print(f"config {args.config}: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} torch threads "
          f"{ready['threads']}, batch {ready['batch']}, {args.steps} timed steps, feature shape {tuple(ready['shape'])}",
          flush=True)
    answers: dict = {key: [] for key in workers}
    for r in range(args.rounds):
        # the paths take turns on the same batches, so that a change in the machine's load falls on all
        indices = " ".join(str(i) for i in range(1 + r * args.steps, 1 + (r + 1) * args.steps))
        for key, work in workers.items():
            answers[key].append(work.ask(indices))
        print(f"round {r + 1}: " + ", ".join(f"({k}) {v[-1]['rate']:.1f}" for k, v in answers.items()) +
              f" samples/s; (b)/(a) {answers['b'][-1]['rate'] / answers['a'][-1]['rate']:.2f}x", flush=True)
    prep = workers["b"].ask("")["preparation"]
    for work in workers.values():
        work.close()

    def median(key, field):
        return float(np.median([a[field] for a in answers[key]]))

    def ratio(num, den):
        return float(np.median([x["rate"] / y["rate"] for x, y in zip(answers[num], answers[den])]))

    print(f"batch preparation alone: {prep:.1f} samples/s (one thread)")
    print("| path | samples/s | x (a) | system share of CPU | minor faults/s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for key in workers:
        print(f"| {names[key]} | {median(key, 'rate'):.1f} | {ratio(key, 'a'):.2f} | "
              f"{100 * median(key, 'system_share'):.0f} % | {median(key, 'faults_per_s'):.0f} | "
              f"{answers[key][-1]['peak_rss_mb']:.0f} |")
    print(f"ratios (median over {args.rounds} rounds): (b)/(a) {ratio('b', 'a'):.2f}x, (b)/(b0) {ratio('b', 'b0'):.2f}x, "
          f"(c)/(a) {ratio('c', 'a'):.2f}x, (b)/(c) {ratio('b', 'c'):.2f}")


if __name__ == "__main__":
    main()
