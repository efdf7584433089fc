"""Concatenate data directories (backs utils/combine_data.sh)."""

import logging

from sidkd.cli import ArgumentParser, run_main
from sidkd.io.datadir_ops import combine_data_dirs


def main(argv=None):
    parser = ArgumentParser(prog="combine_data.sh", description=__doc__)
    parser.add_argument("dest")
    parser.add_argument("srcs", nargs="+")
    args = parser.parse_args(argv)
    count, dropped = combine_data_dirs(args.dest, args.srcs)
    for name in dropped:
        logging.warning("%s: not in every source, not combined", name)
    logging.info("%s: %d utterances from %d directories", args.dest, count, len(args.srcs))


if __name__ == "__main__":
    run_main(main)
