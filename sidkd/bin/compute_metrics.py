"""Print EER and minDCF of a scored trial list.

Usage: python -m sidkd.bin.compute_metrics [options] TRIALS SCORES
TRIALS lines: ``enroll test target|nontarget``; SCORES lines: ``enroll test score``.
Prints ``EER: <percent>`` and ``minDCF(<p>): <value>`` for each p of --p-target, in that order;
``actDCF(<p>): <value>`` as well when --threshold is given.
"""

from __future__ import annotations

import os

from sidkd.cli import ArgumentParser, ProgramError, run_main
from sidkd.io.trials import read_trials, scores_for_trials
from sidkd.metrics import actual_dcf, equal_error_rate, min_dcf, split_scores
from sidkd.metrics.results import update_results_table


def parse_p_targets(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ProgramError(f"--p-target: expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise ProgramError("--p-target: empty")
    return values


def main(argv=None) -> int:
    parser = ArgumentParser(prog="compute_metrics", description=__doc__.split("\n")[1])
    parser.add_argument("--p-target", default="0.01,0.001", help="comma-separated target priors for minDCF")
    parser.add_argument("--c-miss", type=float, default=1.0, help="cost of a miss")
    parser.add_argument("--c-fa", type=float, default=1.0, help="cost of a false alarm")
    parser.add_argument("--threshold", type=float, default=None, help="also print the actual DCF at this threshold")
    parser.add_argument("--results", default="", help="update this results table (system, backend, trials, EER, minDCFs)")
    parser.add_argument("--system", default="system", help="system name for --results")
    parser.add_argument("--backend", default="", help="back-end name for --results")
    parser.add_argument("--trials-name", default="", help="trials name for --results (default: TRIALS path)")
    parser.add_argument("trials", help="trials file")
    parser.add_argument("scores", help="scores file")
    args = parser.parse_args(argv)
    p_targets = parse_p_targets(args.p_target)
    trials = read_trials(args.trials, require_labels=True)
    scores = scores_for_trials(trials, args.scores)
    target, nontarget = split_scores(scores, trials.is_target)
    eer, _ = equal_error_rate(target, nontarget)
    lines = [f"EER: {100 * eer:.6f}"]
    dcfs = {}
    for p in p_targets:
        dcfs[p], _ = min_dcf(target, nontarget, p, args.c_miss, args.c_fa)
        lines.append(f"minDCF({p:g}): {dcfs[p]:.6f}")
    if args.threshold is not None:
        for p in p_targets:
            value = actual_dcf(target, nontarget, args.threshold, p, args.c_miss, args.c_fa)
            lines.append(f"actDCF({p:g}): {value:.6f}")
    print("\n".join(lines), flush=True)
    if args.results:
        missing = [p for p in (0.01, 0.001) if p not in dcfs]
        for p in missing:
            dcfs[p], _ = min_dcf(target, nontarget, p, args.c_miss, args.c_fa)
        trials_name = args.trials_name or os.path.normpath(args.trials)
        row = [args.system, args.backend or "-", trials_name, f"{100 * eer:.2f}", f"{dcfs[0.01]:.4f}", f"{dcfs[0.001]:.4f}"]
        update_results_table(args.results, row)
    return 0


if __name__ == "__main__":
    run_main(main)
