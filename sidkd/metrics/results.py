"""The results table: one tab-separated row per (system, back-end, trials), header first.
A study ledger (local/run_study.py: studies/<name>/results.tsv) has the same first six columns and
more after them (seed, config hash, commit, time, speed, date); it reads as a results table.

A row for a key already in the table is replaced (re-running a stage updates its row in place);
new keys are appended. The file is rewritten atomically.
"""

from __future__ import annotations

import os
import re
import statistics

from sidkd.errors import DataError
from sidkd.io.datadir import atomic_write_text

__all__ = ["RESULTS_HEADER", "update_results_table", "read_results_table", "markdown_table", "seed_systems",
           "mean_std", "seed_markdown_table",
           "seed_gain_table", "seed_pairs", "read_rows", "read_header_and_rows", "read_config_hashes", "append_column"]

RESULTS_HEADER = ["system", "backend", "trials", "EER%", "minDCF(0.01)", "minDCF(0.001)"]


def read_rows(path: str, ledger: bool = False, header: list[str] | None = None) -> list[list[str]]:
    """The rows under the header, each checked for its field count (errors name file:line);
    ``ledger``: more columns may follow the six of a results table; ``header``: exactly this one
    (a study ledger's). A missing or empty file has no rows yet."""
    return read_header_and_rows(path, ledger, header)[1]


def read_header_and_rows(path: str, ledger: bool = False,
                         header: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """read_rows, with the header found (empty where the file is missing or empty)."""
    if not os.path.exists(path):
        return [], []
    with open(path, encoding="utf-8") as handle:
        lines = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    if not lines:
        return [], []
    found = lines[0]
    if header is not None and found != header:
        raise DataError(f"{path}: not a results ledger (header {found!r}, expected {header!r})")
    if found[:len(RESULTS_HEADER)] != RESULTS_HEADER or (not ledger and header is None and found != RESULTS_HEADER):
        raise DataError(f"{path}: not a results table (header {found!r})")
    for number, fields in enumerate(lines[1:], start=2):
        if len(fields) != len(found):
            raise DataError(f"{path}:{number}: {len(fields)} fields, expected {len(found)}")
    return found, lines[1:]


def update_results_table(path: str, row: list[str]) -> None:
    if len(row) != len(RESULTS_HEADER):
        raise ValueError(f"results row needs {len(RESULTS_HEADER)} fields")
    rows = read_rows(path)
    rows = [r for r in rows if r[:3] != row[:3]] + [row]
    atomic_write_text(path, "".join("\t".join(r) + "\n" for r in [RESULTS_HEADER] + rows))


def read_results_table(path: str) -> dict[tuple[str, str, str], list[str]]:
    """(system, backend, trials) -> [EER%, minDCF(0.01), minDCF(0.001)], from a results table or a
    study ledger (a key there twice, under two configuration hashes: the later row)."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such results table")
    return {tuple(fields[:3]): fields[3:6] for fields in read_rows(path, ledger=True)}


def read_config_hashes(path: str) -> dict[str, str]:
    """system -> its configuration hash, from a study ledger (the later row where a system has two)."""
    header, rows = read_header_and_rows(path, ledger=True)
    if "config_hash" not in header:
        raise DataError(f"{path}: no config_hash column: not a study ledger (studies/<name>/results.tsv)")
    column = header.index("config_hash")
    return {row[0]: row[column] for row in rows}


def append_column(markdown: str, title: str, values: list[str]) -> str:
    """The markdown table with one more column: ``values`` one per row under the separator."""
    lines = markdown.rstrip("\n").split("\n")
    if len(lines) != len(values) + 2:
        raise ValueError(f"{len(values)} values for {len(lines) - 2} rows")
    out = [lines[0] + f" {title} |", lines[1] + "---|"] + [line + f" {v} |" for line, v in zip(lines[2:], values)]
    return "\n".join(out) + "\n"


def markdown_table(table: dict[tuple[str, str, str], list[str]], systems: list[str],
                   columns: list[tuple[str, str]]) -> str:
    """A markdown table: one row per system, one column per (trials, backend), each cell
    "EER% / minDCF(0.01)"; a result missing from the table is "n/a"."""
    head = "| system | " + " | ".join(f"{trials} {backend}" for trials, backend in columns) + " |"
    lines = [head, "|---" * (len(columns) + 1) + "|"]
    for system in systems:
        cells = []
        for trials, backend in columns:
            got = table.get((system, backend, trials))
            cells.append(f"{got[0]} / {got[1]}" if got else "n/a")
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def seed_systems(table: dict[tuple[str, str, str], list[str]], name: str) -> list[tuple[int, str]]:
    """(seed, system) of every system ``<name>_seed<k>`` in the table, by seed."""
    pattern = re.compile(re.escape(name) + r"_seed(\d+)")
    found = {(int(m.group(1)), system) for system, _, _ in table if (m := pattern.fullmatch(system))}
    return sorted(found)


def seed_pairs(table: dict[tuple[str, str, str], list[str]], name: str, base: str) -> list[tuple[int, str, str]]:
    """(seed, system, base system) for each seed k that both ``<name>_seed<k>`` and ``<base>_seed<k>`` have."""
    base_of = dict(seed_systems(table, base))
    return [(k, system, base_of[k]) for k, system in seed_systems(table, name) if k in base_of]


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n − 1 in the denominator; None for one value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataError(f"results table: {where}: {text!r} is not a number") from None


def seed_markdown_table(table: dict[tuple[str, str, str], list[str]], names: list[str],
                        columns: list[tuple[str, str]], relative_to: str | None = None) -> str:
    """A markdown table of systems trained with several seeds: one row per name, aggregating the
    systems ``<name>_seed<k>``; each cell "mean ± std of EER% / mean ± std of minDCF(0.01)" over the
    seeds that have that result (sample std; "(n=k)" when fewer than the row's seeds have it).
    ``relative_to`` a name: a last column, the mean over the columns of the row's mean EER relative
    to that name's (100·(EER / EER_base − 1), %; negative is better), over the columns both have."""
    head = "| system | seeds | " + " | ".join(f"{trials} {backend}" for trials, backend in columns)
    head += f" | EER vs {relative_to} |" if relative_to else " |"
    lines = [head, "|---" * (len(columns) + 2 + bool(relative_to)) + "|"]

    def mean_eers(name: str) -> dict[tuple[str, str], float]:
        out = {}
        for trials, backend in columns:
            values = [_number(table[(s, backend, trials)][0], f"{s} {backend} {trials} EER")
                      for _, s in seed_systems(table, name) if (s, backend, trials) in table]
            if values:
                out[(trials, backend)] = statistics.fmean(values)
        return out

    base = mean_eers(relative_to) if relative_to else {}
    for name in names:
        systems = seed_systems(table, name)
        cells = []
        for trials, backend in columns:
            rows = [(system, table[(system, backend, trials)]) for _, system in systems
                    if (system, backend, trials) in table]
            if not rows:
                cells.append("n/a")
                continue
            eer = mean_std([_number(r[0], f"{s} {backend} {trials} EER") for s, r in rows])
            dcf = mean_std([_number(r[1], f"{s} {backend} {trials} minDCF(0.01)") for s, r in rows])
            cell = (f"{eer[0]:.2f} ± {'n/a' if eer[1] is None else f'{eer[1]:.2f}'} / "
                    f"{dcf[0]:.4f} ± {'n/a' if dcf[1] is None else f'{dcf[1]:.4f}'}")
            cells.append(cell + (f" (n={len(rows)})" if len(rows) != len(systems) else ""))
        if relative_to:
            own = mean_eers(name)
            shared = [c for c in own if c in base and base[c] > 0]
            cells.append(f"{statistics.fmean(100 * (own[c] / base[c] - 1) for c in shared):+.1f} %"
                         + (f" (of {len(shared)})" if len(shared) != len(columns) else "") if shared else "n/a")
        seeds = ",".join(str(k) for k, _ in systems) or "none"
        lines.append(f"| {name} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def seed_gain_table(table: dict[tuple[str, str, str], list[str]], names: list[str], columns: list[tuple[str, str]],
                    base: str) -> str:
    """Each name's change against ``base``, seed by seed: in every column, for each seed k that both
    ``<name>_seed<k>`` and ``<base>_seed<k>`` have, 100·(EER / EER_base − 1) and the same of
    minDCF(0.01) (%, negative is better); each cell "mean ± sample std of the EER changes / of the
    minDCF changes" over those seeds. Pairing by seed compares models that saw the same data order
    and initialisation (the seed reaches every random stream), so the spread is the variant's own.
    A last column "EER vs <base>": for each seed, the mean of its EER changes over the columns both
    models have; mean ± std of those over the seeds (a variant's overall effect, with its seed spread),
    followed by each seed's number of columns where some seed lacks one of them."""
    head = "| system | seeds | " + " | ".join(f"{trials} {backend}" for trials, backend in columns)
    head += f" | EER vs {base} |"
    lines = [head, "|---" * (len(columns) + 3) + "|"]

    def spread(values: list[float]) -> str:
        mean, std = mean_std(values)
        return f"{mean:+.1f} ± {'n/a' if std is None else f'{std:.1f}'}"

    for name in names:
        pairs = seed_pairs(table, name, base)
        cells = []
        per_seed: dict[int, list[float]] = {k: [] for k, _, _ in pairs}  # seed -> its columns' EER changes
        for trials, backend in columns:
            eers, dcfs = [], []
            for k, system, reference in pairs:
                if (system, backend, trials) not in table or (reference, backend, trials) not in table:
                    continue
                own, ref = table[(system, backend, trials)], table[(reference, backend, trials)]
                for out, field, label in ((eers, 0, "EER"), (dcfs, 1, "minDCF(0.01)")):
                    a = _number(own[field], f"{system} {backend} {trials} {label}")
                    b = _number(ref[field], f"{reference} {backend} {trials} {label}")
                    out.append(100 * (a / b - 1) if b > 0 else float("nan"))
                per_seed[k].append(eers[-1])
            cells.append(f"{spread(eers)} / {spread(dcfs)} %" + (f" (n={len(eers)})" if len(eers) != len(pairs) else "")
                         if eers else "n/a")
        overall = [statistics.fmean(changes) for changes in per_seed.values() if changes]
        counts = [len(changes) for changes in per_seed.values() if changes]
        # seeds averaged over different columns are not quite comparable: say so
        partial = f" (columns per seed: {', '.join(map(str, counts))})" if set(counts) != {len(columns)} else ""
        cells.append(f"{spread(overall)} %{partial}" if overall else "n/a")
        seeds = ",".join(str(k) for k, _, _ in pairs) or "none"
        lines.append(f"| {name} vs {base} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
