"""Mean of a set of vectors, written as a sidkd-mean .npz (as Kaldi's ivector-mean).

Usage: python -m sidkd.bin.compute_mean_vector [options] VECTORS-RSPECIFIER MEAN.npz
With --utt2spk, only utterances listed there whose speaker has >= --min-utts-per-spk vectors count.
"""

import logging

from sidkd.backend.vectors import labelled_subset, read_vectors, save_mean
from sidkd.cli import ArgumentParser, run_main
from sidkd.io.datadir import read_utt2spk


def main(argv=None) -> int:
    parser = ArgumentParser(prog="compute_mean_vector", description=__doc__.split("\n")[0])
    parser.add_argument("--utt2spk", default="", help="restrict to the utterances of this utt2spk")
    parser.add_argument("--min-utts-per-spk", type=int, default=1, help="with --utt2spk: drop speakers with fewer vectors")
    parser.add_argument("vectors", help="vectors rspecifier (scp:ivector.scp or a path to an scp)")
    parser.add_argument("mean", help="output mean (.npz)")
    args = parser.parse_args(argv)
    table = read_vectors(args.vectors)
    if args.utt2spk:
        table, _ = labelled_subset(table, read_utt2spk(args.utt2spk), args.min_utts_per_spk)
    mean = table.matrix.mean(axis=0)
    save_mean(args.mean, mean, len(table.keys))
    logging.getLogger().info("mean of %d vectors of dimension %d; its norm is %.4f", len(table.keys), table.dim, float((mean**2).sum() ** 0.5))
    return 0


if __name__ == "__main__":
    run_main(main)
