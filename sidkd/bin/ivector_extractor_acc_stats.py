"""E-step of i-vector extractor training over utterance statistics (from compute_ivector_stats).

Usage: ivector_extractor_acc_stats [options] <extractor-in> <stats-rspecifier> <acc-out>
Utterances are processed in batches of --batch-size (stacked GEMMs). --second-order FILE copies
the split's S_c into the accumulator (needed for the variance update and the objective).
"""

import logging

from sidkd.cli import ArgumentParser, run_main
from sidkd.io.ark import iter_archive
from sidkd.ivector import IvectorAcc, IvectorExtractor, iter_stats_batches
from sidkd.ivector.stats import load_second_order

log = logging.getLogger("ivector_extractor_acc_stats")


def main(argv=None):
    parser = ArgumentParser(prog="ivector_extractor_acc_stats", description=__doc__)
    parser.add_argument("--batch-size", type=int, default=64, help="utterances per batched E-step")
    parser.add_argument("--second-order", default="", metavar="FILE", help="S_c of the same utterances")
    parser.add_argument("extractor_in")
    parser.add_argument("stats_rspecifier")
    parser.add_argument("acc_out")
    args = parser.parse_args(argv)
    model = IvectorExtractor.load(args.extractor_in)
    acc = IvectorAcc.zeros(model.num_gauss, model.feat_dim, model.ivector_dim)
    batches = iter_stats_batches(iter_archive(args.stats_rspecifier), model.num_gauss, model.feat_dim, args.batch_size)
    for _, gamma, first in batches:
        model.accumulate(gamma, first, acc)
    if args.second_order:
        acc.second = load_second_order(args.second_order)
    acc.save(args.acc_out)
    log.info("accumulated %d utterances, total count %.0f", acc.num_utts, acc.gamma.sum())


if __name__ == "__main__":
    run_main(main)
