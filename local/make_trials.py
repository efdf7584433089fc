#!/usr/bin/env python3
"""All-pairs verification trials of a data directory.

Every two distinct utterances are paired once; the enrolment side is the utterance id that sorts
first in the C locale (the reference system's convention). Lines: ``enroll test target|nontarget``,
sorted by enrolment then test id. Fails if the set has no target or no nontarget pair.

Usage: local/make_trials.py DATA TRIALS
"""

from __future__ import annotations

import argparse
import os
import sys

from sidkd.errors import DataError
from sidkd.io.datadir import atomic_write_text, read_utt2spk


def make_trials(utt2spk: dict[str, str]) -> tuple[list[str], int, int]:
    utts = sorted(utt2spk, key=str.encode)
    lines, targets = [], 0
    for i, enroll in enumerate(utts):
        spk = utt2spk[enroll]
        for test in utts[i + 1 :]:
            same = utt2spk[test] == spk
            targets += same
            lines.append(f"{enroll} {test} {'target' if same else 'nontarget'}\n")
    return lines, targets, len(lines) - targets


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("trials")
    args = parser.parse_args(argv)
    prog = "make_trials.py"
    try:
        lines, targets, nontargets = make_trials(read_utt2spk(os.path.join(args.data, "utt2spk")))
        if targets == 0 or nontargets == 0:
            raise DataError(f"{args.data}: {targets} target and {nontargets} nontarget trials; need both")
    except DataError as exc:
        print(f"ERROR ({prog}) {exc}", file=sys.stderr)
        return 1
    atomic_write_text(args.trials, "".join(lines))
    print(f"LOG ({prog}) {args.trials}: {len(lines)} trials, {targets} target, {nontargets} nontarget", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
