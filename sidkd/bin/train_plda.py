"""Train a two-covariance PLDA by EM (as Kaldi's ivector-compute-plda).

Usage: python -m sidkd.bin.train_plda [options] VECTORS-RSPECIFIER UTT2SPK PLDA.npz
Vectors go through --mean, --lda and --length-norm (norm sqrt(dim)) first, in that order.
"""

from sidkd.backend.lda import Lda
from sidkd.backend.plda import train_plda
from sidkd.backend.vectors import labelled_subset, length_normalize, load_mean, read_vectors, subtract_mean
from sidkd.cli import ArgumentParser, run_main
from sidkd.io.datadir import read_utt2spk


def main(argv=None) -> int:
    parser = ArgumentParser(prog="train_plda", description=__doc__.split("\n")[0])
    parser.add_argument("--num-iters", type=int, default=10, help="EM iterations")
    parser.add_argument("--mean", default="", help="mean vector (.npz) to subtract first")
    parser.add_argument("--lda", default="", help="LDA transform (.npz) applied after the mean")
    parser.add_bool("--length-norm", True, "scale vectors to norm sqrt(dim) before training")
    parser.add_argument("--min-utts-per-spk", type=int, default=2, help="drop speakers with fewer vectors")
    parser.add_argument("vectors", help="vectors rspecifier")
    parser.add_argument("utt2spk", help="utt2spk of the training utterances")
    parser.add_argument("plda", help="output PLDA (.npz)")
    args = parser.parse_args(argv)
    table, labels = labelled_subset(read_vectors(args.vectors), read_utt2spk(args.utt2spk), max(2, args.min_utts_per_spk))
    vectors = table.matrix
    if args.mean:
        vectors = subtract_mean(vectors, load_mean(args.mean))
    if args.lda:
        vectors = Lda.load(args.lda).apply(vectors)
    if args.length_norm:
        vectors = length_normalize(vectors)
    train_plda(vectors, labels, args.num_iters).save(args.plda)
    return 0


if __name__ == "__main__":
    run_main(main)
