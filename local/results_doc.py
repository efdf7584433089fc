#!/usr/bin/env python3
"""Print docs/results.md: the study tables, each printed from its committed ledger
(studies/<name>/results.tsv) by the results_table command written above it.

Usage: python local/results_doc.py [TEMPLATE] > docs/results.md
TEMPLATE (default local/results_doc.template.md) is markdown with the findings text; each fenced
block with the info string `results` holds one `python -m sidkd.bin.results_table ...` command
(backslash continuations allowed, optionally ending `| sed 's/ ± n\\/a//g'`), which becomes a `sh`
block with that command followed by the table it prints. Only ledgers under studies/ are read, so
the output does not depend on exp/; tests/backend/test_results_doc.py checks that the committed
docs/results.md is this script's output.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from sidkd.bin import results_table  # noqa: E402

PROGRAM = ["python", "-m", "sidkd.bin.results_table"]
# the one filter a command may end with: one-seed rows print no spread
NO_SPREAD = ["|", "sed", "s/ ± n\\/a//g"]
BLOCK = re.compile(r"^```results\n(.*?)^```\n", re.S | re.M)


def run_command(command: str) -> str:
    """The table that `command` prints, run in this process from the repository root."""
    words = shlex.split(command.replace("\\\n", " "))
    strip_na = words[-len(NO_SPREAD):] == NO_SPREAD
    if strip_na:
        words = words[:-len(NO_SPREAD)]
    if words[:len(PROGRAM)] != PROGRAM or "|" in words:
        raise SystemExit(f"results_doc: not a results_table command: {command!r}")
    ledger = words[-1]
    if not re.fullmatch(r"studies/[^/]+/results\.tsv", ledger):
        raise SystemExit(f"results_doc: {ledger}: only committed ledgers (studies/<name>/results.tsv) are read")
    out = io.StringIO()
    cwd = os.getcwd()
    try:
        os.chdir(REPO_ROOT)
        with contextlib.redirect_stdout(out):
            code = results_table.main(words[len(PROGRAM):])
    finally:
        os.chdir(cwd)
    if code:
        raise SystemExit(f"results_doc: exit {code}: {command!r}")
    text = out.getvalue()
    return text.replace(" ± n/a", "") if strip_na else text


def render(template: str) -> str:
    def table(match: re.Match) -> str:
        command = match.group(1)
        return f"```sh\n{command}```\n\n{run_command(command)}"
    return BLOCK.sub(table, template)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else os.path.join(REPO_ROOT, "local", "results_doc.template.md")
    with open(path, encoding="utf-8") as handle:
        sys.stdout.write(render(handle.read()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
