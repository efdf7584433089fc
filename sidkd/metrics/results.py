"""The results table: one tab-separated row per (system, back-end, trials), header first.

A row for a key already in the table is replaced (re-running a stage updates its row in place);
new keys are appended. The file is rewritten atomically.
"""

from __future__ import annotations

import os

from sidkd.errors import DataError
from sidkd.io.datadir import atomic_write_text

__all__ = ["RESULTS_HEADER", "update_results_table", "read_results_table", "markdown_table"]

RESULTS_HEADER = ["system", "backend", "trials", "EER%", "minDCF(0.01)", "minDCF(0.001)"]


def _read_rows(path: str) -> list[list[str]]:
    """The rows under the header, each checked for its field count (errors name file:line)."""
    with open(path, encoding="utf-8") as handle:
        lines = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    if not lines:
        return []  # an empty file: no results yet
    if lines[0] != RESULTS_HEADER:
        raise DataError(f"{path}: not a results table (header {lines[0]!r})")
    for number, fields in enumerate(lines[1:], start=2):
        if len(fields) != len(RESULTS_HEADER):
            raise DataError(f"{path}:{number}: {len(fields)} fields, expected {len(RESULTS_HEADER)}")
    return lines[1:]


def update_results_table(path: str, row: list[str]) -> None:
    if len(row) != len(RESULTS_HEADER):
        raise ValueError(f"results row needs {len(RESULTS_HEADER)} fields")
    rows = _read_rows(path) if os.path.exists(path) else []
    rows = [r for r in rows if r[:3] != row[:3]] + [row]
    atomic_write_text(path, "".join("\t".join(r) + "\n" for r in [RESULTS_HEADER] + rows))


def read_results_table(path: str) -> dict[tuple[str, str, str], list[str]]:
    """(system, backend, trials) -> [EER%, minDCF(0.01), minDCF(0.001)]."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such results table")
    return {tuple(fields[:3]): fields[3:] for fields in _read_rows(path)}


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
