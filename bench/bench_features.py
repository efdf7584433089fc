#!/usr/bin/env python3
"""Throughput of sidkd's MFCC (and fbank) against kaldi-native-fbank on the same real files.

Usage (from the repo root):
  OMP_NUM_THREADS=1 python bench/bench_features.py [--num-files 200] [--corpus-root ../shared/corpora]

One process, one thread. The audio is decoded once beforehand (not timed); each implementation
then turns all of it into features with conf/mfcc.conf (dither forced to 0 so outputs are
comparable) and the time is CPU time (process_time), best of --repeats passes. kaldi-native-fbank
is driven as its Python users do: accept_waveform, input_finished, get_frame for every frame,
stacked into one matrix (the result sidkd returns). Reported: seconds of audio per CPU second,
the ratio sidkd / kaldi-native-fbank, how far the outputs differ, and peak memory: tracemalloc's
peak of Python-visible allocations (numpy arrays and knf's returned frames) during one pass over
all files, plus the process's max RSS at the end.
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import sys
import time
import tracemalloc

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import kaldi_native_fbank as knf  # noqa: E402

from sidkd.feat import FbankOptions, MfccOptions, compute_fbank, compute_mfcc  # noqa: E402
from sidkd.io.audio import read_audio  # noqa: E402


def pick_files(root: str, count: int) -> list[str]:
    """A fixed mix: half speechocean762, a quarter each speechcommands and librispeech_subset."""
    plan = [("speechocean762", "opus", count - 2 * (count // 4)), ("speechcommands", "flac", count // 4),
            ("librispeech_subset", "opus", count // 4)]
    files = []
    for corpus, ext, n in plan:
        found = sorted(glob.glob(os.path.join(root, corpus, "*", f"*.{ext}")))
        step = max(1, len(found) // max(n, 1))
        files += found[::step][:n]
    return files


def knf_options(opts):
    k = knf.MfccOptions() if isinstance(opts, MfccOptions) else knf.FbankOptions()
    f = k.frame_opts
    f.samp_freq, f.frame_shift_ms, f.frame_length_ms = opts.sample_frequency, opts.frame_shift, opts.frame_length
    f.dither, f.preemph_coeff, f.remove_dc_offset = opts.dither, opts.preemphasis_coefficient, opts.remove_dc_offset
    f.window_type, f.round_to_power_of_two, f.snip_edges = opts.window_type, opts.round_to_power_of_two, opts.snip_edges
    k.mel_opts.num_bins, k.mel_opts.low_freq, k.mel_opts.high_freq = opts.num_mel_bins, opts.low_freq, opts.high_freq
    k.use_energy, k.raw_energy, k.energy_floor = opts.use_energy, opts.raw_energy, opts.energy_floor
    if isinstance(opts, MfccOptions):
        k.num_ceps, k.cepstral_lifter = opts.num_ceps, opts.cepstral_lifter
    else:
        k.use_log_fbank, k.use_power = opts.use_log_fbank, opts.use_power
    return k


def knf_compute(samples: np.ndarray, kopts, rate: float, online_class) -> np.ndarray:
    computer = online_class(kopts)
    computer.accept_waveform(rate, samples)
    computer.input_finished()
    n = computer.num_frames_ready
    if n == 0:
        return np.zeros((0, computer.dim), dtype=np.float32)
    return np.stack([computer.get_frame(i) for i in range(n)])


def timed(fn, signals, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        out = [fn(x) for x in signals]
        best = min(best, time.process_time() - start)
    return best, out


def peak_bytes(fn, signals):
    tracemalloc.start()
    for x in signals:
        fn(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def compare(name, opts, online_class, signals, audio_seconds, repeats):
    kopts = knf_options(opts)
    rate = opts.sample_frequency
    compute = compute_mfcc if isinstance(opts, MfccOptions) else compute_fbank
    ours_fn = lambda x: compute(x, opts)  # noqa: E731
    # kaldi-native-fbank converts its input element by element; a Python list is its fastest form.
    lists = [x.tolist() for x in signals]
    knf_fn = lambda x: knf_compute(x, kopts, rate, online_class)  # noqa: E731
    ours_fn(signals[0]), knf_fn(lists[0])  # warm caches and imports
    t_ours, out_ours = timed(ours_fn, signals, repeats)
    t_knf, out_knf = timed(knf_fn, lists, repeats)
    diffs = []
    for a, b in zip(out_ours, out_knf):
        if a.shape != b.shape:
            raise SystemExit(f"{name}: frame count or dim differs: {a.shape} vs {b.shape}")
        diffs.append(np.abs(a.astype(np.float64) - b).ravel())
    diff = np.concatenate(diffs)
    mem_ours = peak_bytes(ours_fn, signals)
    mem_knf = peak_bytes(knf_fn, lists)
    speed_ours, speed_knf = audio_seconds / t_ours, audio_seconds / t_knf
    print(f"{name}: sidkd {speed_ours:.0f} s audio / CPU s ({t_ours:.3f} s); "
          f"kaldi-native-fbank {speed_knf:.0f} ({t_knf:.3f} s); ratio {speed_ours / speed_knf:.2f}x")
    print(f"{name}: output difference: max {diff.max():.2e}, {np.mean(diff <= 2e-3):.4%} of "
          f"{diff.size} coefficients within 2e-3, 99.9th percentile {np.quantile(diff, 0.999):.2e}")
    print(f"{name}: peak traced memory during one pass: sidkd {mem_ours / 2**20:.1f} MiB, "
          f"kaldi-native-fbank {mem_knf / 2**20:.1f} MiB")
    return speed_ours / speed_knf


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-files", type=int, default=200)
    default_root = os.path.join(REPO, "..", "shared", "corpora")
    if not os.path.isdir(default_root):  # a git worktree one level further down
        default_root = os.path.join(REPO, "..", "..", "shared", "corpora")
    parser.add_argument("--corpus-root", default=os.path.normpath(default_root))
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per implementation; best is kept")
    parser.add_argument("--fbank", action="store_true", help="also compare conf/fbank.conf filterbanks")
    args = parser.parse_args()
    files = pick_files(args.corpus_root, args.num_files)
    if len(files) < args.num_files:
        raise SystemExit(f"found only {len(files)} files under {args.corpus_root}")
    signals = [read_audio(f) for f in files]
    audio_seconds = sum(len(x) for x in signals) / 16000.0
    print(f"{len(files)} files, {audio_seconds:.1f} s of audio, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    mfcc = MfccOptions.from_config(os.path.join(REPO, "conf", "mfcc.conf"), ["--dither=0"])
    compare("mfcc", mfcc, knf.OnlineMfcc, signals, audio_seconds, args.repeats)
    if args.fbank:
        fbank = FbankOptions.from_config(os.path.join(REPO, "conf", "fbank.conf"), ["--dither=0"])
        compare("fbank", fbank, knf.OnlineFbank, signals, audio_seconds, args.repeats)
    print(f"max RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
