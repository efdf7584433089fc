"""Print part of the results table (exp/results.tsv) as a markdown table.

Usage: python -m sidkd.bin.results_table [options] RESULTS
One row per --systems entry, one column per --columns entry (trials:backend), each cell
"EER% / minDCF(0.01)"; a result the table lacks prints as n/a.
--aggregate-seeds true: each --systems entry NAME is a row over the systems NAME_seed<k> of the
table, each cell the mean ± sample std of EER% / minDCF(0.01) over the seeds; --relative-to NAME
adds the mean relative EER change against NAME's seed means over the columns (a study's ranking);
--gains true with --relative-to NAME: each cell the change against NAME's model of the same seed,
relative EER / relative minDCF(0.01) in %, mean ± sample std over the seeds both have; a last
column, each seed's mean relative EER change over the columns, mean ± std over the seeds.
--hashes true (a study ledger): a last column, the configuration hash (first 12 hex digits) of each
row's models, seed by seed, so that every row is traceable to studies/<name>/configs/<hash>.yaml.
e.g. python -m sidkd.bin.results_table --systems source,transfer_ce \\
       --columns sc_test:cosine,sc_test:lda100+plda exp/results.tsv
     python -m sidkd.bin.results_table --aggregate-seeds true --systems "student_nokd student_kd" \\
       --columns "test:cosine test:lda150+plda" exp/results.tsv
"""

from __future__ import annotations

from sidkd.backend.backends import ASNORM, BACKENDS, backend_of_column
from sidkd.cli import ArgumentParser, ProgramError, run_main
from sidkd.metrics.results import (append_column, markdown_table, read_config_hashes, read_results_table,
                                   seed_gain_table, seed_markdown_table, seed_pairs,
                                   seed_systems)


def _names(text: str, option: str) -> list[str]:
    names = [name for name in text.replace(",", " ").split() if name]
    if not names:
        raise ProgramError(f"{option}: empty")
    return names


def main(argv=None) -> int:
    parser = ArgumentParser(prog="results_table", description=__doc__.split("\n")[1])
    parser.add_argument("--systems", required=True, help="rows: comma- or space-separated system names")
    parser.add_argument("--columns", required=True, help="columns: comma- or space-separated trials:backend")
    parser.add_bool("--aggregate-seeds", False, "rows over the systems <name>_seed<k>: mean ± std")
    parser.add_argument("--relative-to", default="", help="with --aggregate-seeds: a last column, the mean "
                        "relative EER change against this name's over the columns (%%)")
    parser.add_bool("--gains", False, "with --relative-to: per-seed relative changes against that name, "
                    "mean ± std over the seeds")
    parser.add_bool("--hashes", False, "a last column: each row's configuration hashes (a study ledger)")
    parser.add_argument("results", help="the results table (tab-separated, sidkd.metrics.results)")
    args = parser.parse_args(argv)
    columns = []
    for column in _names(args.columns, "--columns"):
        trials, sep, backend = column.partition(":")
        if not sep or not trials or not backend:
            raise ProgramError(f"--columns: expected trials:backend, got {column!r}")
        if backend_of_column(backend)[0] is None:
            known = ", ".join(b.shape for b in BACKENDS.values())
            raise ProgramError(f"--columns: {column!r}: {backend!r} is no back-end's column; the back-ends "
                               f"(sidkd/backend/backends.py): {known}, each also with {ASNORM}")
        columns.append((trials, backend))
    table = read_results_table(args.results)
    systems = _names(args.systems, "--systems")
    if args.relative_to and not args.aggregate_seeds:
        raise ProgramError("--relative-to compares seed means: give it with --aggregate-seeds true")
    if args.gains and not args.relative_to:
        raise ProgramError("--gains true needs --relative-to NAME (and --aggregate-seeds true)")
    if args.gains:
        text = seed_gain_table(table, systems, columns, args.relative_to)
        rows = [[s for _, s, _ in seed_pairs(table, name, args.relative_to)] for name in systems]
    elif args.aggregate_seeds:
        text = seed_markdown_table(table, systems, columns, args.relative_to or None)
        rows = [[s for _, s in seed_systems(table, name)] for name in systems]
    else:
        text = markdown_table(table, systems, columns)
        rows = [[name] for name in systems]
    if args.hashes:
        hashes = read_config_hashes(args.results)
        text = append_column(text, "config hash", [", ".join(hashes[s][:12] for s in row if s in hashes) or "n/a"
                                                   for row in rows])
    print(text, end="")
    return 0


if __name__ == "__main__":
    run_main(main)
