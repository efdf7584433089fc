"""Benchmark of the i-vector teacher on real features.

Times one EM iteration of each model (diagonal UBM, full UBM, extractor), the Baum-Welch
statistics and i-vector extraction throughput, with the peak memory. Every dense product of the
EM code goes through sidkd.blas, whose meter records its wall time and flops; so each row says
which share of the stage's wall time is BLAS/LAPACK and which is everything else (gathers,
exp/log, Python loops), and the achieved GFLOP/s (BLAS flops / stage wall time) as a share of a
plain numpy matmul (2048³) of the same dtype measured in the same run: the GMMs compute in
float32, the extractor in float64. It also times what the programs pay outside the maths: the
recipe's feature pipeline (three processes), reading a float32 archive, a process start-up.

Usage (from the recipe root, after run.sh stage 1 made data/train/{feats,vad}.scp):
  OMP_NUM_THREADS=1 python bench/bench_ivector.py --data data/train --max-utts 1000
The features go through the recipe's own pipeline (deltas, sliding CMN, voiced frames; see
steps/lib/ivector_feats.sh) and are held in memory for the benchmark only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sidkd import blas  # noqa: E402
from sidkd.gmm import DiagGmmStats, FullGmm, FullGmmStats, estimate_diag, estimate_full, init_diag_gmm  # noqa: E402
from sidkd.io.ark import ArchiveWriter, iter_archive  # noqa: E402
from sidkd.ivector import IvectorAcc, IvectorExtractor, estimate_extractor, iter_utterance_stats  # noqa: E402


def feats_rspec(data: str, deltas_conf: str, cmvn_conf: str) -> str:
    return (f"ark,s,cs:python -m sidkd.bin.add_deltas --config={deltas_conf} scp:{data}/feats.scp ark:- | "
            f"python -m sidkd.bin.apply_cmvn_sliding --config={cmvn_conf} ark:- ark:- | "
            f"python -m sidkd.bin.select_voiced_frames ark:- scp,s,cs:{data}/vad.scp ark:- |")


def matmul_gflops(dtype, n: int = 2048, repeats: int = 3) -> float:
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(dtype)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def metered(fn):
    """(result, wall seconds, BLAS seconds, BLAS flops) of fn()."""
    with blas.metered() as meter:
        out, seconds = timed(fn)
    return out, seconds, meter.seconds, meter.flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/train")
    parser.add_argument("--max-utts", type=int, default=1000, help="utterances read (every k-th of the data dir)")
    parser.add_argument("--num-gauss", type=int, default=256)
    parser.add_argument("--ivector-dim", type=int, default=200)
    parser.add_argument("--num-gselect", type=int, default=20)
    parser.add_argument("--min-post", type=float, default=0.025)
    parser.add_argument("--batch-size", type=int, default=256, help="utterances per batched E-step / extraction")
    parser.add_argument("--init-iters", type=int, default=8, help="diag init passes (not the timed part)")
    parser.add_argument("--deltas-config", default="conf/ivector_deltas.conf")
    parser.add_argument("--cmvn-config", default="conf/ivector_cmvn.conf")
    parser.add_argument("--json", default="", help="also write the numbers here")
    args = parser.parse_args()

    with open(f"{args.data}/feats.scp", encoding="utf-8") as handle:
        total = sum(1 for _ in handle)
    step = max(1, total // args.max_utts)
    utts, load_s = timed(lambda: [(k, v) for i, (k, v) in enumerate(
        iter_archive(feats_rspec(args.data, args.deltas_config, args.cmvn_config))) if i % step == 0][: args.max_utts])
    frames = np.concatenate([v for _, v in utts]).astype(np.float32)
    t_frames, dim = frames.shape
    c, n, r = args.num_gauss, args.num_gselect, args.ivector_dim
    peaks = {"float32": matmul_gflops(np.float32), "float64": matmul_gflops(np.float64)}
    rows = []

    def report(name, dtype, seconds, blas_s, flops, unit):
        gflops = flops / seconds / 1e9
        rows.append({"what": name, "dtype": dtype, "seconds": round(seconds, 3), "blas_share": round(blas_s / seconds, 3),
                     "blas_gflops": round(flops / max(blas_s, 1e-9) / 1e9, 2), "gflops": round(gflops, 2),
                     "fraction_of_matmul": round(gflops / peaks[dtype], 3), **unit})

    rng_frames = frames[np.random.default_rng(0).permutation(t_frames)[: min(t_frames, 200000)]]
    diag, init_s = timed(lambda: init_diag_gmm(rng_frames, c, args.init_iters))

    def diag_iter():
        stats = DiagGmmStats.zeros(c, dim)
        for s in range(0, t_frames, 20000):
            diag.accumulate(frames[s:s + 20000], stats)
        return estimate_diag(diag, stats)[0]

    diag, *m = metered(diag_iter)
    report("diag UBM EM iteration", "float32", *m, {"frames_per_s": round(t_frames / m[0])})

    full = FullGmm.from_diag(diag)

    def full_iter():
        stats = FullGmmStats.zeros(c, dim)
        for s in range(0, t_frames, 20000):
            x = frames[s:s + 20000]
            full.accumulate(x, diag.gselect(x, n, sort=False), stats)
        return estimate_full(full, stats)

    full, *m = metered(full_iter)
    report("full UBM EM iteration (gselect included)", "float32", *m, {"frames_per_s": round(t_frames / m[0])})

    second = np.zeros((c, dim, dim))
    stats, *m_stats = metered(lambda: list(iter_utterance_stats(utts, diag, full, num_gselect=n,
                                                                 min_post=args.min_post, second=second)))
    report("Baum-Welch stats (+ second order)", "float32", *m_stats, {"utts_per_s": round(len(utts) / m_stats[0], 1)})
    gamma = np.stack([g for _, g, _ in stats]).astype(np.float64)
    first = np.stack([f for _, _, f in stats]).astype(np.float64)
    u = len(stats)
    batch = args.batch_size

    extractor = IvectorExtractor.init_from_ubm(full, r)

    def extractor_iter():
        acc = IvectorAcc.zeros(c, dim, r)
        for s in range(0, u, batch):
            extractor.accumulate(gamma[s:s + batch], first[s:s + batch], acc)
        acc.second = second
        return estimate_extractor(extractor, acc, gaussian_min_count=10)[0]

    extractor, *m = metered(extractor_iter)
    report("extractor EM iteration", "float64", *m, {"utts_per_s": round(u / m[0], 1)})

    def extract_only():
        return [extractor.extract(gamma[s:s + batch], first[s:s + batch]) for s in range(0, u, batch)]

    _, *m_ext = metered(extract_only)
    report("i-vector extraction from stats", "float64", *m_ext, {"utts_per_s": round(u / m_ext[0], 1)})

    # What the programs pay outside the maths, per frame and per process.
    with tempfile.TemporaryDirectory() as tmp:
        ark = os.path.join(tmp, "feats.ark")
        with ArchiveWriter(f"ark:{ark}") as writer:
            for key, value in utts:
                writer[key] = value
        _, read_s = timed(lambda: sum(v.shape[0] for _, v in iter_archive(f"ark:{ark}")))
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    _, start_s = timed(lambda: subprocess.run([sys.executable, "-c", "import sidkd.gmm, sidkd.io.ark, sidkd.ivector"],
                                              check=True, env=env))
    overheads = {"feature_pipeline_frames_per_s": round(t_frames / load_s), "float32_ark_read_frames_per_s":
                 round(t_frames / read_s), "process_start_s": round(start_s, 2)}

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    info = {"data": args.data, "utts": u, "frames": t_frames, "dim": dim, "num_gauss": c, "ivector_dim": r,
            "num_gselect": n, "batch_size": batch, "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
            "feature_load_s": round(load_s, 1), "diag_init_s": round(init_s, 1),
            "numpy_matmul_gflops": {k: round(v, 2) for k, v in peaks.items()}, "peak_rss_mb": round(peak_mb),
            "overheads": overheads, "rows": rows}
    print(f"# {u} utterances, {t_frames} voiced frames, dim {dim}; C={c}, R={r}, gselect={n}; "
          f"OMP_NUM_THREADS={info['omp_num_threads']}")
    print(f"# numpy matmul (2048^3): float32 {peaks['float32']:.1f}, float64 {peaks['float64']:.1f} GFLOP/s; "
          f"peak RSS {peak_mb:.0f} MB (features in memory for the benchmark)")
    print(f"# outside the maths: feature pipeline {overheads['feature_pipeline_frames_per_s']} frames/s, "
          f"float32 ark read {overheads['float32_ark_read_frames_per_s']} frames/s, "
          f"process start-up {overheads['process_start_s']} s")
    print("| what | dtype | wall s | throughput | BLAS share of wall | GFLOP/s inside BLAS | GFLOP/s of the stage | share of matmul |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        rate = row.get("frames_per_s") and f"{row['frames_per_s']} frames/s" or f"{row['utts_per_s']} utt/s"
        print(f"| {row['what']} | {row['dtype']} | {row['seconds']} | {rate} | {row['blas_share']:.0%} | "
              f"{row['blas_gflops']} | {row['gflops']} | {row['fraction_of_matmul']:.0%} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=1)


if __name__ == "__main__":
    main()
