"""Sum full-covariance GMM statistics and re-estimate the model (one EM M-step).

Usage: full_gmm_est [options] <model-in> <stats-in> [<stats-in> ...] <model-out>
Logs the average log-likelihood per frame of <model-in> (over the selected Gaussians).
"""

import logging

from sidkd.cli import ArgumentParser, run_main
from sidkd.gmm import FullGmm, FullGmmStats, estimate_full

log = logging.getLogger("full_gmm_est")


def main(argv=None):
    parser = ArgumentParser(prog="full_gmm_est", description=__doc__)
    parser.add_argument("--min-variance", type=float, default=0.001, help="floor on covariance eigenvalues")
    parser.add_argument("--max-condition", type=float, default=1e4, help="largest/smallest eigenvalue limit")
    parser.add_argument("--min-count", type=float, default=10.0,
                        help="a Gaussian with less occupancy keeps its mean and covariance")
    parser.add_argument("model_in")
    parser.add_argument("stats_in", nargs="+")
    parser.add_argument("model_out")
    args = parser.parse_args(argv)
    full = FullGmm.load(args.model_in)
    stats = FullGmmStats.zeros(full.num_gauss, full.dim)
    for path in args.stats_in:
        stats += FullGmmStats.load(path)
    log.info("avg log-likelihood per frame %.5f over %d frames", stats.loglik / max(stats.num_frames, 1),
             stats.num_frames)
    new = estimate_full(full, stats, min_variance=args.min_variance, max_condition=args.max_condition,
                        min_count=args.min_count)
    new.save(args.model_out)


if __name__ == "__main__":
    run_main(main)
