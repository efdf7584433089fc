"""Sum diagonal-GMM statistics and re-estimate the model (one EM M-step).

Usage: gmm_global_est [options] <model-in> <stats-in> [<stats-in> ...] <model-out>
Logs the average log-likelihood per frame of <model-in> on the accumulated data.
"""

import logging

import numpy as np

from sidkd.cli import ArgumentParser, run_main
from sidkd.gmm import DiagGmm, DiagGmmStats, estimate_diag

log = logging.getLogger("gmm_global_est")


def main(argv=None):
    parser = ArgumentParser(prog="gmm_global_est", description=__doc__)
    parser.add_argument("--min-variance", type=float, default=0.001, help="variance floor")
    parser.add_argument("--min-count", type=float, default=3.0,
                        help="a Gaussian with less occupancy is re-seeded by splitting the heaviest")
    parser.add_argument("--seed", type=int, default=0, help="random seed for re-seeding splits")
    parser.add_argument("model_in")
    parser.add_argument("stats_in", nargs="+")
    parser.add_argument("model_out")
    args = parser.parse_args(argv)
    gmm = DiagGmm.load(args.model_in)
    stats = DiagGmmStats.zeros(gmm.num_gauss, gmm.dim)
    for path in args.stats_in:
        stats += DiagGmmStats.load(path)
    log.info("avg log-likelihood per frame %.5f over %d frames", stats.loglik / max(stats.num_frames, 1),
             stats.num_frames)
    new, _ = estimate_diag(gmm, stats, min_variance=args.min_variance, min_count=args.min_count,
                           rng=np.random.default_rng(args.seed))
    new.save(args.model_out)


if __name__ == "__main__":
    run_main(main)
