#!/usr/bin/env python3
"""The held-out speakers of a validation split inside a training set (local/make_dev_split.sh).

Candidates: the speakers of SPK2UTT whose id starts with none of --exclude-prefixes (the prefixed
extra corpora, e.g. librispeech_subset's ``ls``: the validation trials are to be of the test
domain) and who have at least --min-utts utterances. A seeded shuffle of the C-sorted candidates
picks --num-speakers of them. Prints them, C-sorted, one a line.

Usage: local/pick_dev_speakers.py [--num-speakers N] [--seed S] [--exclude-prefixes "ls"] [--min-utts M] SPK2UTT
"""

from __future__ import annotations

import argparse
import random
import sys

from sidkd.errors import DataError
from sidkd.io.datadir import read_spk2utt


def pick_speakers(spk2utt: dict[str, list[str]], num: int, seed: int, exclude_prefixes: list[str],
                  min_utts: int) -> list[str]:
    candidates = sorted((s for s, utts in spk2utt.items()
                         if len(utts) >= min_utts and not any(s.startswith(p) for p in exclude_prefixes)),
                        key=str.encode)
    if num > len(candidates) - 1:  # at least one candidate speaker stays in training
        raise DataError(f"asked for {num} held-out speakers, only {len(candidates)} candidates "
                        f"(>= {min_utts} utterances, not prefixed {' '.join(exclude_prefixes) or '-'})")
    random.Random(seed).shuffle(candidates)
    return sorted(candidates[:num], key=str.encode)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-speakers", type=int, default=30)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--exclude-prefixes", default="ls", help="space-separated speaker-id prefixes")
    parser.add_argument("--min-utts", type=int, default=2, help="a held-out speaker needs target trials")
    parser.add_argument("spk2utt")
    args = parser.parse_args(argv)
    prog = "pick_dev_speakers.py"
    try:
        if args.num_speakers < 2 or args.min_utts < 2:
            raise DataError(f"--num-speakers and --min-utts must be >= 2, got {args.num_speakers}, {args.min_utts}")
        chosen = pick_speakers(read_spk2utt(args.spk2utt), args.num_speakers, args.seed,
                               args.exclude_prefixes.split(), args.min_utts)
    except DataError as exc:
        print(f"ERROR ({prog}) {args.spk2utt}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write("".join(s + "\n" for s in chosen))
    print(f"LOG ({prog}) {len(chosen)} held-out speakers (seed {args.seed})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
