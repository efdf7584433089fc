"""Print part of the results table (exp/results.tsv) as a markdown table.

Usage: python -m sidkd.bin.results_table [options] RESULTS
One row per --systems entry, one column per --trials x --backends pair, each cell
"EER% / minDCF(0.01)"; a pair the table lacks prints as n/a.
e.g. python -m sidkd.bin.results_table --systems source,transfer_ce --trials sc_test,test_1s \\
       --backends cosine,lda100+plda exp/results.tsv
"""

from __future__ import annotations

from sidkd.cli import ArgumentParser, ProgramError, run_main
from sidkd.metrics.results import markdown_table, read_results_table


def _names(text: str, option: str) -> list[str]:
    names = [name for name in text.replace(",", " ").split() if name]
    if not names:
        raise ProgramError(f"{option}: empty")
    return names


def main(argv=None) -> int:
    parser = ArgumentParser(prog="results_table", description=__doc__.split("\n")[1])
    parser.add_argument("--systems", required=True, help="rows: comma- or space-separated system names")
    parser.add_argument("--trials", required=True, help="trial-set names of the columns")
    parser.add_argument("--backends", required=True, help="back-end names of the columns (per trial set)")
    parser.add_argument("results", help="the results table (tab-separated, sidkd.metrics.results)")
    args = parser.parse_args(argv)
    columns = [(t, b) for t in _names(args.trials, "--trials") for b in _names(args.backends, "--backends")]
    table = read_results_table(args.results)
    print(markdown_table(table, _names(args.systems, "--systems"), columns), end="")
    return 0


if __name__ == "__main__":
    run_main(main)
