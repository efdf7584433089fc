#!/usr/bin/env python3
"""Verification trials of a data directory: all pairs, or a sample linear in the utterances.

All pairs (the default, and whenever the set has at most --all-pairs-max-utts utterances): every two
distinct utterances are paired once; the enrolment side is the utterance id that sorts first in the
C locale (the reference system's convention). Their number grows with the square of the set, so
beyond --all-pairs-max-utts each utterance instead draws --targets-per-utt partners of its own
speaker and --nontargets-per-utt of other speakers (seeded, without repeating a pair; VoxCeleb1's
test list is of this kind): at most (T + M) x utterances trials, each pair again enrolment = the id
that sorts first. Lines: ``enroll test target|nontarget``, sorted by enrolment then test id. Fails
if the set has no target or no nontarget pair.

Usage: local/make_trials.py [--all-pairs-max-utts N --targets-per-utt T --nontargets-per-utt M --seed S] DATA TRIALS
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from sidkd.errors import DataError
from sidkd.io.datadir import atomic_write_text, read_utt2spk


def all_pairs(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def sampled_pairs(speakers: list[str], targets: int, nontargets: int, seed: int) -> list[tuple[int, int]]:
    """Index pairs (i < j): per utterance up to ``targets`` same-speaker and ``nontargets`` other-speaker
    partners, drawn without replacement; a pair drawn from both ends counts once."""
    rng = np.random.default_rng(seed)
    labels = np.unique(np.asarray(speakers), return_inverse=True)[1]
    members = [np.flatnonzero(labels == k) for k in range(labels.max() + 1)]
    n = len(speakers)
    pairs = set()
    for i in range(n):
        own = members[labels[i]]
        own = own[own != i]
        for j in rng.choice(own, size=min(targets, len(own)), replace=False) if len(own) else ():
            pairs.add((min(i, int(j)), max(i, int(j))))
        others = n - len(members[labels[i]])
        drawn = set()
        while len(drawn) < min(nontargets, others):  # rejection: other speakers are nearly all of the set
            j = int(rng.integers(n))
            if labels[j] != labels[i]:
                drawn.add(j)
        pairs.update((min(i, j), max(i, j)) for j in drawn)
    return sorted(pairs)


def make_trials(utt2spk: dict[str, str], all_pairs_max_utts: int = 0, targets_per_utt: int = 10,
                nontargets_per_utt: int = 10, seed: int = 0) -> tuple[list[str], int, int]:
    utts = sorted(utt2spk, key=str.encode)
    speakers = [utt2spk[u] for u in utts]
    sample = 0 < all_pairs_max_utts < len(utts)
    pairs = sampled_pairs(speakers, targets_per_utt, nontargets_per_utt, seed) if sample else all_pairs(len(utts))
    lines, targets = [], 0
    for i, j in pairs:
        same = speakers[i] == speakers[j]
        targets += same
        lines.append(f"{utts[i]} {utts[j]} {'target' if same else 'nontarget'}\n")
    return lines, targets, len(lines) - targets


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all-pairs-max-utts", type=int, default=0,
                        help="sample the trials of a larger set (0: all pairs whatever the size)")
    parser.add_argument("--targets-per-utt", type=int, default=10)
    parser.add_argument("--nontargets-per-utt", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("data")
    parser.add_argument("trials")
    args = parser.parse_args(argv)
    prog = "make_trials.py"
    try:
        utt2spk = read_utt2spk(os.path.join(args.data, "utt2spk"))
        lines, targets, nontargets = make_trials(utt2spk, args.all_pairs_max_utts, args.targets_per_utt,
                                                 args.nontargets_per_utt, args.seed)
        if targets == 0 or nontargets == 0:
            raise DataError(f"{args.data}: {targets} target and {nontargets} nontarget trials; need both")
    except DataError as exc:
        print(f"ERROR ({prog}) {exc}", file=sys.stderr)
        return 1
    atomic_write_text(args.trials, "".join(lines))
    kind = (f"sampled ({args.targets_per_utt} target + {args.nontargets_per_utt} nontarget partners per utterance, "
            f"seed {args.seed}: more than {args.all_pairs_max_utts} utterances)"
            if 0 < args.all_pairs_max_utts < len(utt2spk) else "all pairs")
    print(f"LOG ({prog}) {args.trials}: {len(lines)} trials, {targets} target, {nontargets} nontarget; {kind}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
