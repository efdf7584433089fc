"""Train an LDA transform on vectors with speaker labels (as Kaldi's ivector-compute-lda).

Usage: python -m sidkd.bin.compute_lda [options] VECTORS-RSPECIFIER UTT2SPK LDA.npz
--mean is subtracted first; the LDA then also centres on the mean of its own input (its offset).
"""

from sidkd.backend.lda import compute_lda
from sidkd.backend.vectors import labelled_subset, load_mean, read_vectors, subtract_mean
from sidkd.cli import ArgumentParser, run_main
from sidkd.errors import DataError
from sidkd.io.datadir import read_utt2spk


def main(argv=None) -> int:
    parser = ArgumentParser(prog="compute_lda", description=__doc__.split("\n")[0])
    parser.add_argument("--dim", type=int, default=150, help="output dimension")
    parser.add_argument("--total-covariance-factor", type=float, default=0.0,
                        help="normalise f*total + (1-f)*within covariance (0: within-class covariance becomes unit)")
    parser.add_argument("--covariance-floor", type=float, default=1e-6, help="eigenvalue floor, relative to the largest")
    parser.add_argument("--mean", default="", help="mean vector (.npz) to subtract first")
    parser.add_argument("--min-utts-per-spk", type=int, default=2, help="drop speakers with fewer vectors")
    parser.add_argument("vectors", help="vectors rspecifier")
    parser.add_argument("utt2spk", help="utt2spk of the training utterances")
    parser.add_argument("lda", help="output LDA (.npz)")
    args = parser.parse_args(argv)
    table, labels = labelled_subset(read_vectors(args.vectors), read_utt2spk(args.utt2spk), args.min_utts_per_spk)
    num_speakers = len(set(labels))
    if args.dim >= num_speakers:
        # the between-class scatter of S speakers has rank S - 1: the other directions are noise
        raise DataError(f"--dim {args.dim} needs more speakers than that: {args.utt2spk} has {num_speakers} with "
                        f">= {args.min_utts_per_spk} vectors; choose --dim < {num_speakers} (run.sh fits its lda_dim, "
                        f"dev_lda_dim and transfer_lda_dim to the data; steps/train_plda.sh: --lda-dim)")
    vectors = subtract_mean(table.matrix, load_mean(args.mean)) if args.mean else table.matrix
    compute_lda(vectors, labels, args.dim, args.total_covariance_factor, args.covariance_floor).save(args.lda)
    return 0


if __name__ == "__main__":
    run_main(main)
