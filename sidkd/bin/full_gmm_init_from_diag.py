"""Make a full-covariance GMM from a diagonal one (same components, same order).

Usage: full_gmm_init_from_diag <diag-model-in> <full-model-out>
"""

from sidkd.cli import ArgumentParser, run_main
from sidkd.gmm import DiagGmm, FullGmm


def main(argv=None):
    parser = ArgumentParser(prog="full_gmm_init_from_diag", description=__doc__)
    parser.add_argument("diag_in")
    parser.add_argument("full_out")
    args = parser.parse_args(argv)
    FullGmm.from_diag(DiagGmm.load(args.diag_in)).save(args.full_out)


if __name__ == "__main__":
    run_main(main)
