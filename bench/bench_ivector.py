"""Benchmark of the i-vector teacher on real features.

Times one EM iteration of each model (diagonal UBM, full UBM, extractor), the Baum-Welch
statistics and i-vector extraction throughput, with the peak memory, and converts each to
achieved GFLOP/s (counting the dominant matrix products) next to a plain numpy float64 matmul
measured in the same run: the ratio says how much of the machine's BLAS speed the code reaches.

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
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sidkd.gmm import DiagGmmStats, FullGmm, FullGmmStats, estimate_diag, estimate_full, init_diag_gmm  # noqa: E402
from sidkd.io.ark import iter_archive  # noqa: E402
from sidkd.ivector import IvectorAcc, IvectorExtractor, estimate_extractor, iter_utterance_stats  # noqa: E402


def feats_rspec(data: str, deltas_conf: str, cmvn_conf: str) -> str:
    return (f"ark,s,cs:python -m sidkd.bin.add_deltas --config={deltas_conf} scp:{data}/feats.scp ark:- | "
            f"python -m sidkd.bin.apply_cmvn_sliding --config={cmvn_conf} ark:- ark:- | "
            f"python -m sidkd.bin.select_voiced_frames ark:- scp,s,cs:{data}/vad.scp ark:- |")


def matmul_gflops(n: int = 2048, repeats: int = 3) -> float:
    a = np.random.default_rng(0).standard_normal((n, n))
    b = np.random.default_rng(1).standard_normal((n, n))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/train")
    parser.add_argument("--max-utts", type=int, default=1000, help="utterances read (every k-th of the data dir)")
    parser.add_argument("--num-gauss", type=int, default=256)
    parser.add_argument("--ivector-dim", type=int, default=200)
    parser.add_argument("--num-gselect", type=int, default=20)
    parser.add_argument("--min-post", type=float, default=0.025)
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
    frames = np.concatenate([v for _, v in utts]).astype(np.float64)
    t_frames, dim = frames.shape
    c, n, r = args.num_gauss, args.num_gselect, args.ivector_dim
    peak_gflops = matmul_gflops()
    rows = []

    def report(name, seconds, flops, unit=None):
        rows.append({"what": name, "seconds": round(seconds, 3), "gflops": round(flops / seconds / 1e9, 2),
                     "fraction_of_matmul": round(flops / seconds / 1e9 / peak_gflops, 3), **(unit or {})})

    rng_frames = frames[np.random.default_rng(0).permutation(t_frames)[: min(t_frames, 200000)]]
    diag, init_s = timed(lambda: init_diag_gmm(rng_frames, c, args.init_iters))

    def diag_iter():
        stats = DiagGmmStats.zeros(c, dim)
        for s in range(0, t_frames, 20000):
            diag.accumulate(frames[s:s + 20000], stats)
        return estimate_diag(diag, stats)[0]

    diag, diag_s = timed(diag_iter)
    report("diag UBM EM iteration", diag_s, t_frames * 8.0 * c * dim, {"frames_per_s": round(t_frames / diag_s)})

    full = FullGmm.from_diag(diag)

    def full_iter():
        stats = FullGmmStats.zeros(c, dim)
        for s in range(0, t_frames, 20000):
            x = frames[s:s + 20000]
            full.accumulate(x, diag.gselect(x, n), stats)
        return estimate_full(full, stats)

    full, full_s = timed(full_iter)
    full_flops = t_frames * (4.0 * c * dim + 4.0 * n * dim * dim)
    report("full UBM EM iteration", full_s, full_flops, {"frames_per_s": round(t_frames / full_s)})

    second = np.zeros((c, dim, dim))
    stats, stats_s = timed(lambda: list(iter_utterance_stats(utts, diag, full, num_gselect=n, min_post=args.min_post,
                                                             second=second)))
    # gselect (diag GEMM) + full-covariance scores of the n selected; the pruned second order is small
    report("Baum-Welch stats (+second order)", stats_s, t_frames * (4.0 * c * dim + 2.0 * n * dim * dim),
           {"utts_per_s": round(len(utts) / stats_s, 1)})
    gamma = np.stack([g for _, g, _ in stats])
    first = np.stack([f for _, _, f in stats])
    u = len(stats)

    extractor = IvectorExtractor.init_from_ubm(full, r)
    packed = r * (r + 1) / 2
    # per utterance: P and A_c on packed triangles (2·C·R(R+1)/2 each), b and Y (2·C·D·R each),
    # Cholesky (R³/3) and the inverse from it (2R³/3)
    estep_flops = u * (4.0 * c * packed + 4.0 * c * dim * r + r**3)
    # extraction: P, b, Cholesky and two triangular solves
    extract_flops = u * (2.0 * c * packed + 2.0 * c * dim * r + r**3 / 3 + 2.0 * r * r)

    def extractor_iter():
        acc = IvectorAcc.zeros(c, dim, r)
        for s in range(0, u, 64):
            extractor.accumulate(gamma[s:s + 64], first[s:s + 64], acc)
        acc.second = second
        return estimate_extractor(extractor, acc, gaussian_min_count=10)[0]

    extractor, ext_s = timed(extractor_iter)
    # M-step: C SPD solves with D right-hand sides, and the auxiliary function twice
    report("extractor EM iteration", ext_s, estep_flops + c * (2.0 * r**3 / 3 + 2.0 * dim * r * r + 8.0 * dim * r * r),
           {"utts_per_s": round(u / ext_s, 1)})

    def extract_only():
        return [extractor.extract(gamma[s:s + 64], first[s:s + 64]) for s in range(0, u, 64)]

    _, extract_s = timed(extract_only)
    report("i-vector extraction from stats", extract_s, extract_flops,
           {"utts_per_s": round(u / extract_s, 1)})
    report("i-vector extraction from features (stats + extract)", stats_s + extract_s,
           t_frames * (4.0 * c * dim + 2.0 * n * dim * dim) + extract_flops,
           {"utts_per_s": round(u / (stats_s + extract_s), 1)})

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    info = {"data": args.data, "utts": u, "frames": t_frames, "dim": dim, "num_gauss": c, "ivector_dim": r,
            "num_gselect": n, "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
            "feature_load_s": round(load_s, 1), "diag_init_s": round(init_s, 1),
            "numpy_matmul_gflops": round(peak_gflops, 2), "peak_rss_mb": round(peak_mb), "rows": rows}
    print(f"# {u} utterances, {t_frames} voiced frames, dim {dim}; C={c}, R={r}, gselect={n}; "
          f"OMP_NUM_THREADS={info['omp_num_threads']}")
    print(f"# numpy float64 matmul (2048^3): {peak_gflops:.1f} GFLOP/s; peak RSS {peak_mb:.0f} MB "
          f"(features in memory for the benchmark)")
    print("| what | wall s | throughput | GFLOP/s | share of matmul |")
    print("|---|---|---|---|---|")
    for row in rows:
        rate = row.get("frames_per_s") and f"{row['frames_per_s']} frames/s" or f"{row['utts_per_s']} utt/s"
        print(f"| {row['what']} | {row['seconds']} | {rate} | {row['gflops']} | {row['fraction_of_matmul']:.0%} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=1)


if __name__ == "__main__":
    main()
