"""Accumulate EM statistics for a full-covariance GMM, scoring only the top --num-gselect
components of the diagonal model per frame (Gaussian selection, Kaldi: 20).

Usage: full_gmm_acc_stats [options] <diag-model> <full-model-in> <feats-rspecifier> <stats-out>
The selection depends only on the (fixed) diagonal model, so, as Kaldi's gmm-gselect, it can be
computed once: --write-gselect FILE stores it (with the utterance keys and frame counts) and
--read-gselect FILE reuses it in later iterations, checked against the frames read.
"""

import logging

import numpy as np

from sidkd.cli import ArgumentParser, ProgramError, run_main
from sidkd.gmm import DiagGmm, FullGmm, FullGmmStats, iter_chunks
from sidkd.io.ark import iter_archive
from sidkd.io.npz import load_npz, save_npz

log = logging.getLogger("full_gmm_acc_stats")

GSELECT_FORMAT = "sidkd-gselect"


def main(argv=None):
    parser = ArgumentParser(prog="full_gmm_acc_stats", description=__doc__)
    parser.add_argument("--num-gselect", type=int, default=20, help="components scored per frame")
    parser.add_argument("--subsample", type=int, default=1, help="use every n-th frame")
    parser.add_argument("--write-gselect", default="", metavar="FILE", help="store the Gaussian selection here")
    parser.add_argument("--read-gselect", default="", metavar="FILE", help="reuse a stored Gaussian selection")
    parser.add_argument("diag_model")
    parser.add_argument("model_in")
    parser.add_argument("feats_rspecifier")
    parser.add_argument("stats_out")
    args = parser.parse_args(argv)
    diag, full = DiagGmm.load(args.diag_model), FullGmm.load(args.model_in)
    if diag.num_gauss != full.num_gauss or diag.dim != full.dim:
        raise ProgramError(f"{args.diag_model} and {args.model_in} have different sizes")
    stored = None
    if args.read_gselect:
        header, arrays = load_npz(args.read_gselect, GSELECT_FORMAT)
        if header["num_gselect"] != args.num_gselect or header["subsample"] != args.subsample:
            raise ProgramError(f"{args.read_gselect}: made with --num-gselect {header['num_gselect']} --subsample "
                               f"{header['subsample']}, not {args.num_gselect} / {args.subsample}")
        stored = (list(arrays["keys"]), arrays["lengths"], arrays["gselect"])
    keys_seen, lengths_seen, selections = [], [], []
    offset = 0
    stats = FullGmmStats.zeros(full.num_gauss, full.dim)
    for keys, lengths, frames in iter_chunks(iter_archive(args.feats_rspecifier), full.dim, subsample=args.subsample):
        if stored is None:
            gselect = diag.gselect(frames, args.num_gselect, sort=False)
        else:
            first = len(keys_seen)
            if stored[0][first:first + len(keys)] != keys or not np.array_equal(stored[1][first:first + len(keys)],
                                                                                  lengths):
                raise ProgramError(f"{args.read_gselect}: stored selection does not match the features at utterance "
                                   f"{keys[0]} (made from other features?)")
            gselect = stored[2][offset:offset + frames.shape[0]].astype(np.intp)
        offset += frames.shape[0]
        full.accumulate(frames, gselect, stats)
        keys_seen += keys
        lengths_seen.append(lengths)
        if args.write_gselect:
            selections.append(gselect.astype(np.int16 if full.num_gauss <= 32767 else np.int32))
    if stored is not None and len(keys_seen) != len(stored[0]):
        raise ProgramError(f"{args.read_gselect}: has {len(stored[0])} utterances, the features {len(keys_seen)}")
    if args.write_gselect:
        save_npz(args.write_gselect, GSELECT_FORMAT, 1,
                 {"keys": np.array(keys_seen), "lengths": np.concatenate(lengths_seen),
                  "gselect": np.concatenate(selections)}, num_gselect=args.num_gselect, subsample=args.subsample)
    stats.save(args.stats_out)
    log.info("%d utterances, %d frames, avg log-likelihood per frame %.5f (over selected Gaussians)",
             len(keys_seen), stats.num_frames, stats.loglik / max(stats.num_frames, 1))


if __name__ == "__main__":
    run_main(main)
