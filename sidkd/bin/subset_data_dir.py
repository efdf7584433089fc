"""Copy a subset of a data directory (backs utils/subset_data_dir.sh)."""

import logging

from sidkd.cli import ArgumentParser, run_main
from sidkd.io.datadir_ops import subset_data_dir


def main(argv=None):
    parser = ArgumentParser(prog="subset_data_dir.sh", description=__doc__)
    parser.add_argument("--mode", choices=["random", "first", "last", "shortest"], default="random")
    parser.add_argument("--utt-list")
    parser.add_argument("--spk-list")
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--num", type=int)
    parser.add_argument("src")
    parser.add_argument("dest")
    args = parser.parse_args(argv)
    kept = subset_data_dir(args.src, args.dest, num=args.num, mode=args.mode, utt_list=args.utt_list,
                           spk_list=args.spk_list, seed=args.seed)
    logging.info("%s: %d utterances from %s", args.dest, kept, args.src)


if __name__ == "__main__":
    run_main(main)
