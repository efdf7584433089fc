"""Accumulate EM statistics for a diagonal GMM over features.

Usage: gmm_global_acc_stats [options] <model-in> <feats-rspecifier> <stats-out>
"""

import logging

from sidkd.cli import ArgumentParser, run_main
from sidkd.gmm import DiagGmm, DiagGmmStats, iter_chunks
from sidkd.io.ark import iter_archive

log = logging.getLogger("gmm_global_acc_stats")


def main(argv=None):
    parser = ArgumentParser(prog="gmm_global_acc_stats", description=__doc__)
    parser.add_argument("--subsample", type=int, default=1, help="use every n-th frame")
    parser.add_argument("model_in")
    parser.add_argument("feats_rspecifier")
    parser.add_argument("stats_out")
    args = parser.parse_args(argv)
    gmm = DiagGmm.load(args.model_in)
    stats = DiagGmmStats.zeros(gmm.num_gauss, gmm.dim)
    num_utts = 0
    for keys, _, frames in iter_chunks(iter_archive(args.feats_rspecifier), gmm.dim, subsample=args.subsample):
        gmm.accumulate(frames, stats)
        num_utts += len(keys)
    stats.save(args.stats_out)
    log.info("%d utterances, %d frames, avg log-likelihood per frame %.5f", num_utts, stats.num_frames,
             stats.loglik / max(stats.num_frames, 1))


if __name__ == "__main__":
    run_main(main)
