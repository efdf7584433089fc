#!/usr/bin/env python3
"""A deterministic speaker-disjoint train/test split for a corpus that comes without one.

Speakers with at least --min-test-utts utterances are candidates for test; a seeded shuffle of the
C-sorted candidates picks round(--test-fraction * all speakers) of them. Every other speaker goes to
train. Writes ``<out>/<name>.train.spk`` and ``<out>/<name>.test.spk`` (the layout of
../shared/corpora/splits), so a user's own lists can be dropped in instead.

Usage: local/make_speaker_split.py [--test-fraction F] [--min-test-utts N] [--seed S] CORPUS NAME OUTDIR
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections import Counter

from sidkd.errors import DataError
from sidkd.io.datadir import atomic_write_text, read_table


def split_speakers(spk_counts: Counter, test_fraction: float, min_test_utts: int, seed: int):
    speakers = sorted(spk_counts, key=str.encode)
    candidates = [s for s in speakers if spk_counts[s] >= min_test_utts]
    num_test = min(len(candidates), max(1, round(test_fraction * len(speakers))))
    random.Random(seed).shuffle(candidates)
    test = set(candidates[:num_test])
    return [s for s in speakers if s not in test], [s for s in speakers if s in test]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--min-test-utts", type=int, default=8)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("corpus")
    parser.add_argument("name")
    parser.add_argument("outdir")
    args = parser.parse_args(argv)
    prog = "make_speaker_split.py"
    try:
        entries = read_table(os.path.join(args.corpus, "utt2spk"), min_fields=2, max_fields=2, check_sorted=False)
        train, test = split_speakers(Counter(spk for _, spk in entries), args.test_fraction,
                                     args.min_test_utts, args.seed)
        if len(train) < 2 or len(test) < 2:
            raise DataError(f"{args.corpus}: split gives {len(train)} train and {len(test)} test speakers; need 2 each")
    except DataError as exc:
        print(f"ERROR ({prog}) {exc}", file=sys.stderr)
        return 1
    os.makedirs(args.outdir, exist_ok=True)
    for part, spks in (("train", train), ("test", test)):
        atomic_write_text(os.path.join(args.outdir, f"{args.name}.{part}.spk"), "".join(s + "\n" for s in spks))
    print(f"LOG ({prog}) {args.name}: {len(train)} train and {len(test)} test speakers (seed {args.seed})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
