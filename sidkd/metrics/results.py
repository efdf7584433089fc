"""The results table: one tab-separated row per (system, back-end, trials), header first.

A row for a key already in the table is replaced (re-running a stage updates its row in place);
new keys are appended. The file is rewritten atomically.
"""

from __future__ import annotations

import os

from sidkd.errors import DataError
from sidkd.io.datadir import atomic_write_text

__all__ = ["RESULTS_HEADER", "update_results_table"]

RESULTS_HEADER = ["system", "backend", "trials", "EER%", "minDCF(0.01)", "minDCF(0.001)"]


def update_results_table(path: str, row: list[str]) -> None:
    if len(row) != len(RESULTS_HEADER):
        raise ValueError(f"results row needs {len(RESULTS_HEADER)} fields")
    rows: list[list[str]] = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            lines = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
        if lines and lines[0] != RESULTS_HEADER:
            raise DataError(f"{path}: not a results table (header {lines[0]!r})")
        rows = lines[1:]
    rows = [r for r in rows if r[:3] != row[:3]] + [row]
    atomic_write_text(path, "".join("\t".join(r) + "\n" for r in [RESULTS_HEADER] + rows))
