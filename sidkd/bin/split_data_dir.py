"""Split a data directory into N parts (backs utils/split_data.sh)."""

import logging

from sidkd.cli import ArgumentParser, run_main
from sidkd.io.datadir_ops import split_data_dir


def main(argv=None):
    parser = ArgumentParser(prog="split_data.sh", description=__doc__)
    parser.add_bool("--per-utt", False, "split utterances evenly, ignoring speakers")
    parser.add_argument("data")
    parser.add_argument("num_splits", type=int)
    args = parser.parse_args(argv)
    out, reused = split_data_dir(args.data, args.num_splits, per_utt=args.per_utt)
    if reused:
        logging.info("%s is newer than %s's files: not splitting again", out, args.data)


if __name__ == "__main__":
    run_main(main)
