"""Extract i-vectors (posterior means, prior offset removed from dim 0) from utterance statistics.

Usage: extract_ivectors [options] <extractor> <stats-rspecifier> <ivector-wspecifier>
Typical: compute_ivector_stats final.dubm final.ubm "$feats" ark:- |
         extract_ivectors final.ie ark:- ark,scp:ivector.1.ark,ivector.1.scp
"""

import logging

import numpy as np

from sidkd.cli import ArgumentParser, run_main
from sidkd.io.ark import ArchiveWriter, iter_archive
from sidkd.ivector import IvectorExtractor, iter_stats_batches

log = logging.getLogger("extract_ivectors")


def main(argv=None):
    parser = ArgumentParser(prog="extract_ivectors", description=__doc__)
    parser.add_argument("--batch-size", type=int, default=64, help="utterances per batched solve")
    parser.add_argument("extractor")
    parser.add_argument("stats_rspecifier")
    parser.add_argument("ivector_wspecifier")
    args = parser.parse_args(argv)
    model = IvectorExtractor.load(args.extractor)
    with ArchiveWriter(args.ivector_wspecifier) as writer:
        batches = iter_stats_batches(iter_archive(args.stats_rspecifier), model.num_gauss, model.feat_dim,
                                     args.batch_size)
        for keys, gamma, first in batches:
            for key, ivector in zip(keys, model.extract(gamma, first)):
                writer[key] = ivector.astype(np.float32)
        count = writer.count
    log.info("extracted %d i-vectors of dim %d", count, model.ivector_dim)


if __name__ == "__main__":
    run_main(main)
