"""Accumulate EM statistics for a full-covariance GMM, scoring only the top --num-gselect
components of the diagonal model per frame (Gaussian selection, Kaldi: 20).

Usage: full_gmm_acc_stats [options] <diag-model> <full-model-in> <feats-rspecifier> <stats-out>
"""

import logging

from sidkd.cli import ArgumentParser, ProgramError, run_main
from sidkd.gmm import DiagGmm, FullGmm, FullGmmStats, iter_chunks
from sidkd.io.ark import iter_archive

log = logging.getLogger("full_gmm_acc_stats")


def main(argv=None):
    parser = ArgumentParser(prog="full_gmm_acc_stats", description=__doc__)
    parser.add_argument("--num-gselect", type=int, default=20, help="components scored per frame")
    parser.add_argument("--subsample", type=int, default=1, help="use every n-th frame")
    parser.add_argument("diag_model")
    parser.add_argument("model_in")
    parser.add_argument("feats_rspecifier")
    parser.add_argument("stats_out")
    args = parser.parse_args(argv)
    diag, full = DiagGmm.load(args.diag_model), FullGmm.load(args.model_in)
    if diag.num_gauss != full.num_gauss or diag.dim != full.dim:
        raise ProgramError(f"{args.diag_model} and {args.model_in} have different sizes")
    stats = FullGmmStats.zeros(full.num_gauss, full.dim)
    num_utts = 0
    for keys, _, frames in iter_chunks(iter_archive(args.feats_rspecifier), full.dim, subsample=args.subsample):
        full.accumulate(frames, diag.gselect(frames, args.num_gselect), stats)
        num_utts += len(keys)
    stats.save(args.stats_out)
    log.info("%d utterances, %d frames, avg log-likelihood per frame %.5f (over selected Gaussians)", num_utts,
             stats.num_frames, stats.loglik / max(stats.num_frames, 1))


if __name__ == "__main__":
    run_main(main)
