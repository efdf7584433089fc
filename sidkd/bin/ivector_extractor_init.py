"""Initialise an i-vector extractor from a full-covariance UBM (Kaldi's formulation).

Usage: ivector_extractor_init [options] <full-ubm> <extractor-out>
"""

from sidkd.cli import ArgumentParser, run_main
from sidkd.gmm import FullGmm
from sidkd.ivector import IvectorExtractor


def main(argv=None):
    parser = ArgumentParser(prog="ivector_extractor_init", description=__doc__)
    parser.add_argument("--ivector-dim", type=int, default=200, help="i-vector dimension")
    parser.add_argument("--prior-offset", type=float, default=100.0, help="initial prior offset (Kaldi: 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the initial subspace")
    parser.add_argument("full_ubm")
    parser.add_argument("extractor_out")
    args = parser.parse_args(argv)
    model = IvectorExtractor.init_from_ubm(FullGmm.load(args.full_ubm), args.ivector_dim, args.prior_offset, args.seed)
    model.save(args.extractor_out)


if __name__ == "__main__":
    run_main(main)
