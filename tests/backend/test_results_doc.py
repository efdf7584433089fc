"""docs/results.md is what local/results_doc.py prints from the committed ledgers, byte for byte, and
README's two results tables are the ones it prints under "In the README": a ledger, template or
README edit without the page regenerated fails here."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, tool_env

SCRIPT = os.path.join(REPO_ROOT, "local", "results_doc.py")


def printed(*args, cwd=REPO_ROOT):
    done = subprocess.run([sys.executable, SCRIPT, *args], cwd=cwd, env=tool_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def tables(markdown):
    """The markdown tables of a text, each as one string of its lines."""
    return [m.group(0) for m in re.finditer(r"(?m)^(?:\|.*\|\n)+", markdown)]


def test_committed_page_is_the_scripts_output():
    committed = open(os.path.join(REPO_ROOT, "docs", "results.md"), encoding="utf-8").read()
    assert printed() == committed, "docs/results.md is stale: python local/results_doc.py > docs/results.md"


def test_the_page_does_not_depend_on_the_working_directory(tmp_path):
    assert printed(cwd=str(tmp_path)) == printed()


def test_readme_tables_are_the_pages():
    page = open(os.path.join(REPO_ROOT, "docs", "results.md"), encoding="utf-8").read()
    readme = open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8").read()
    summary = page.split("\n## In the README\n", 1)[1].split("\n## ", 1)[0]
    found = tables(summary)
    assert len(found) == 2  # one per method
    for table in found:
        assert table in readme, f"README.md lacks this table of docs/results.md:\n{table}"


def test_a_changed_ledger_number_changes_the_page(tmp_path):
    """The check above catches a ledger edited without the page printed again."""
    root = tmp_path / "repo"
    shutil.copytree(os.path.join(REPO_ROOT, "studies"), root / "studies",
                    ignore=shutil.ignore_patterns("configs"))
    (root / "local").mkdir()
    shutil.copy(os.path.join(REPO_ROOT, "local", "results_doc.template.md"), root / "local")
    ledger = root / "studies" / "kd_final" / "results.tsv"
    text = ledger.read_text()
    first = text.split("\n")[1].split("\t")
    assert first[:3] == ["nokd_seed1", "cosine", "test"]
    ledger.write_text(text.replace("\t".join(first), "\t".join(first[:3] + ["9.99"] + first[4:]), 1))
    shutil.copy(SCRIPT, root / "local")
    # the copy's REPO_ROOT is tmp_path/repo; sidkd comes from PYTHONPATH
    changed = subprocess.run(
        [sys.executable, str(root / "local" / "results_doc.py")], cwd=str(root), env=tool_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout != printed()


@pytest.mark.parametrize("command", [
    "python -m sidkd.bin.results_table --systems a --columns test:cosine exp/results.tsv",
    "python -m sidkd.bin.results_table --systems a --columns test:cosine studies/kd_final/results.tsv | head",
])
def test_only_ledgers_and_the_one_filter(tmp_path, command):
    template = tmp_path / "t.md"
    template.write_text(f"```results\n{command}\n```\n")
    done = subprocess.run([sys.executable, SCRIPT, str(template)], env=tool_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert done.returncode != 0 and "results_doc" in done.stderr
