"""Baum-Welch statistics for the i-vector extractor: full-UBM posteriors over the diagonal UBM's
top --num-gselect Gaussians, pruned at --min-post, scaled by --posterior-scale.

Usage: compute_ivector_stats [options] <diag-ubm> <full-ubm> <feats-rspecifier> <stats-wspecifier>
One float32 matrix (C, 1 + D) per utterance: column 0 the counts γ_c, then f_c = Σ_t γ_tc x_t.
--second-order FILE also writes the summed S_c = Σ_t γ_tc x_t x_tᵀ (for the variance update).
"""

import logging

import numpy as np

from sidkd.cli import ArgumentParser, ProgramError, run_main
from sidkd.gmm import DiagGmm, FullGmm
from sidkd.io.ark import ArchiveWriter, iter_archive
from sidkd.ivector.stats import iter_utterance_stats, pack_stats, save_second_order

log = logging.getLogger("compute_ivector_stats")


def main(argv=None):
    parser = ArgumentParser(prog="compute_ivector_stats", description=__doc__)
    parser.add_argument("--num-gselect", type=int, default=20, help="Gaussians scored per frame")
    parser.add_argument("--min-post", type=float, default=0.025, help="drop posteriors below this, renormalise")
    parser.add_argument("--posterior-scale", type=float, default=1.0, help="scale on the posteriors")
    parser.add_argument("--second-order", default="", metavar="FILE", help="write summed S_c here (npz)")
    parser.add_argument("diag_ubm")
    parser.add_argument("full_ubm")
    parser.add_argument("feats_rspecifier")
    parser.add_argument("stats_wspecifier")
    args = parser.parse_args(argv)
    diag, full = DiagGmm.load(args.diag_ubm), FullGmm.load(args.full_ubm)
    if diag.num_gauss != full.num_gauss:
        raise ProgramError(f"{args.diag_ubm} and {args.full_ubm} have different numbers of Gaussians")
    second = np.zeros((full.num_gauss, full.dim, full.dim)) if args.second_order else None
    frames = 0.0
    with ArchiveWriter(args.stats_wspecifier) as writer:
        for key, gamma, first in iter_utterance_stats(
                iter_archive(args.feats_rspecifier), diag, full, num_gselect=args.num_gselect,
                min_post=args.min_post, posterior_scale=args.posterior_scale, second=second):
            writer[key] = pack_stats(gamma, first)
            frames += gamma.sum()
        count = writer.count
    if second is not None:
        save_second_order(args.second_order, second, count)
    log.info("wrote stats for %d utterances (total count %.0f)", count, frames)


if __name__ == "__main__":
    run_main(main)
