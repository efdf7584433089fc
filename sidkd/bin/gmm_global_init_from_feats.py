"""Initialise a diagonal GMM (the diagonal UBM) from features by mixing up.

Usage: gmm_global_init_from_feats [options] <feats-rspecifier> <model-out>
A uniform random subset of at most --num-frames frames is kept in memory (reservoir sampling
while streaming), then --num-iters EM passes grow the model from 1 Gaussian to --num-gauss by
splitting the heaviest ones (see sidkd.gmm.diag.init_diag_gmm for why mixing-up).
"""

import logging

from sidkd.cli import ArgumentParser, ProgramError, run_main
from sidkd.gmm import ReservoirSampler, init_diag_gmm
from sidkd.io.ark import check_finite, iter_archive

log = logging.getLogger("gmm_global_init_from_feats")


def main(argv=None):
    parser = ArgumentParser(prog="gmm_global_init_from_feats", description=__doc__)
    parser.add_argument("--num-gauss", type=int, default=256, help="number of Gaussians")
    parser.add_argument("--num-iters", type=int, default=20, help="EM passes (the first half also mix up)")
    parser.add_argument("--num-frames", type=int, default=500000, help="at most this many frames kept in memory")
    parser.add_argument("--min-variance", type=float, default=0.001, help="variance floor")
    parser.add_argument("--seed", type=int, default=0, help="random seed (frame subset, split directions)")
    parser.add_argument("feats_rspecifier")
    parser.add_argument("model_out")
    args = parser.parse_args(argv)
    sampler = None
    num_utts = 0
    for key, feats in iter_archive(args.feats_rspecifier):
        if feats.ndim != 2 or feats.shape[0] == 0:
            log.warning("%s: no frames or not a matrix (shape %s), skipped", key, feats.shape)
            continue
        check_finite(key, feats)
        if sampler is None:
            sampler = ReservoirSampler(args.num_frames, feats.shape[1], seed=args.seed)
        sampler.add(feats)
        num_utts += 1
    if sampler is None:
        raise ProgramError(f"no features read from {args.feats_rspecifier}")
    frames = sampler.frames()
    log.info("read %d utterances, %d frames; keeping %d", num_utts, sampler.seen, frames.shape[0])
    gmm = init_diag_gmm(frames, args.num_gauss, args.num_iters, min_variance=args.min_variance, seed=args.seed)
    gmm.save(args.model_out)
    log.info("wrote %s (%d Gaussians, dim %d)", args.model_out, gmm.num_gauss, gmm.dim)


if __name__ == "__main__":
    run_main(main)
