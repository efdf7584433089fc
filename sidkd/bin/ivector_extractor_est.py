"""Sum i-vector extractor accumulators and re-estimate the extractor (one EM M-step).

Usage: ivector_extractor_est [options] <extractor-in> <acc-in> [<acc-in> ...] <extractor-out>
Logs the objective of <extractor-in> (log-likelihood per frame of the data given its alignment,
i-vector integrated out; it must not decrease over iterations) and the M-step's auxiliary gain.
"""

import logging

from sidkd.cli import ArgumentParser, run_main
from sidkd.ivector import IvectorAcc, IvectorExtractor, estimate_extractor

log = logging.getLogger("ivector_extractor_est")


def main(argv=None):
    parser = ArgumentParser(prog="ivector_extractor_est", description=__doc__)
    parser.add_bool("--update-variances", True, "re-estimate the covariances Σ_c")
    parser.add_argument("--variance-floor-factor", type=float, default=0.1,
                        help="floor each Σ_c at this times the count-weighted average covariance")
    parser.add_argument("--gaussian-min-count", type=float, default=100.0,
                        help="Gaussians with less count keep their covariance")
    parser.add_bool("--update-prior", True, "minimum-divergence re-estimation of the prior")
    parser.add_argument("extractor_in")
    parser.add_argument("acc_in", nargs="+")
    parser.add_argument("extractor_out")
    args = parser.parse_args(argv)
    model = IvectorExtractor.load(args.extractor_in)
    acc = IvectorAcc.load(args.acc_in[0])
    for path in args.acc_in[1:]:
        acc += IvectorAcc.load(path)
    new, info = estimate_extractor(model, acc, update_variances=args.update_variances,
                                   variance_floor_factor=args.variance_floor_factor,
                                   gaussian_min_count=args.gaussian_min_count, update_prior=args.update_prior)
    frames = max(info["frames"], 1e-10)
    if info["objective"] is not None:
        log.info("objective (log-likelihood per frame) %.6f over %.0f frames, %d utterances",
                 info["objective"] / frames, frames, info["num_utts"])
    log.info("auxiliary gain of the M-step per frame %.6f; prior offset now %.4f", info["aux_gain"] / frames,
             info["prior_offset"])
    new.save(args.extractor_out)


if __name__ == "__main__":
    run_main(main)
