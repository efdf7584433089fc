"""Draw the DET curves of several scored systems on one trial list into a PNG.

Usage: python -m sidkd.bin.plot_det [options] TRIALS OUT.png SCORES1 [SCORES2 ...]
"""

from __future__ import annotations

import os

from sidkd.cli import ArgumentParser, ProgramError, run_main
from sidkd.io.trials import read_trials, scores_for_trials
from sidkd.metrics import split_scores
from sidkd.metrics.plot import plot_det


def main(argv=None) -> int:
    parser = ArgumentParser(prog="plot_det", description=__doc__.split("\n")[1])
    parser.add_argument("--names", default="", help="comma-separated curve names (default: the scores files' directory names)")
    parser.add_argument("--title", default="DET", help="plot title")
    parser.add_argument("trials", help="trials file with target|nontarget labels")
    parser.add_argument("out", help="output PNG")
    parser.add_argument("scores", nargs="+", help="scores files")
    args = parser.parse_args(argv)
    names = [n for n in args.names.split(",") if n] if args.names else [
        os.path.basename(os.path.dirname(os.path.abspath(p))) or p for p in args.scores
    ]
    if len(names) != len(args.scores):
        raise ProgramError(f"--names gives {len(names)} names for {len(args.scores)} scores files")
    trials = read_trials(args.trials, require_labels=True)
    systems = []
    for name, path in zip(names, args.scores):
        target, nontarget = split_scores(scores_for_trials(trials, path), trials.is_target)
        systems.append((name, target, nontarget))
    directory = os.path.dirname(args.out)
    if directory:
        os.makedirs(directory, exist_ok=True)
    plot_det(systems, args.out, title=args.title)
    return 0


if __name__ == "__main__":
    run_main(main)
