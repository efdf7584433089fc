"""The back-end registry (sidkd/backend/backends.py) is what names the columns everywhere: the
program run.sh reads, the study runner and results_table agree with it, and the column names are
the ones the committed ledgers hold."""

import glob
import os
import subprocess
import sys

import pytest

from sidkd.backend.backends import BACKENDS, backend_of_column, columns
from sidkd.cli import ProgramError
from tests.conftest import REPO_ROOT, tool_env


def test_columns_in_both_orders_and_the_program():
    assert columns(150) == ["cosine", "lda150+plda", "cosine+asnorm", "lda150+plda+asnorm"]
    assert columns(100, asnorm=False) == ["cosine", "lda100+plda"]
    assert columns(150, each_then_norm=True) == ["cosine", "cosine+asnorm", "lda150+plda", "lda150+plda+asnorm"]
    out = subprocess.run([sys.executable, "-m", "sidkd.bin.backends", "columns", "--lda-dim", "60", "--sets", "a b"],
                         env=tool_env(), capture_output=True, text=True, check=True).stdout.split()
    assert out == [f"{s}:{c}" for s in ("a", "b") for c in ("cosine", "cosine+asnorm", "lda60+plda", "lda60+plda+asnorm")]
    listed = subprocess.run([sys.executable, "-m", "sidkd.bin.backends", "list", "--lda-dim", "3"], env=tool_env(),
                            capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.split()[0] for line in listed] == list(BACKENDS)
    for line in listed:
        name, column, model, step, scorer, norm_model, norm_column = line.split()
        assert os.path.isfile(os.path.join(REPO_ROOT, step)) and norm_column == column + "+asnorm"
        assert model in ("train-vectors", "plda-dir") and norm_model in ("true", "false")


def test_every_committed_ledger_column_is_a_registered_back_end_and_the_runner_agrees():
    sys.path.insert(0, os.path.join(REPO_ROOT, "local"))
    import run_study

    seen = set()
    for path in glob.glob(os.path.join(REPO_ROOT, "studies", "*", "results.tsv")):
        for line in list(open(path))[1:]:
            seen.add(line.split("\t")[1])
    assert seen and all(backend_of_column(b)[0] is not None for b in seen), seen
    assert backend_of_column("lda150+plda+asnorm") == (BACKENDS["plda"], True)
    assert backend_of_column("plda") == (None, False)
    study = {"lda_dim": 100, "asnorm": False}
    assert run_study.backends_of(study, {"lda_dim": 7}) == ["cosine", "lda7+plda"]
    assert run_study.backends_of({"lda_dim": 100}, {}) == columns(100)


def test_results_table_refuses_a_column_of_no_back_end(tmp_path):
    from sidkd.bin import results_table

    table = tmp_path / "r.tsv"
    table.write_text("system\tbackend\ttrials\tEER%\tminDCF(0.01)\tminDCF(0.001)\ns\tcosine\tt\t1.0\t0.1\t0.2\n")
    assert results_table.main(["--systems", "s", "--columns", "t:cosine", str(table)]) == 0
    with pytest.raises(ProgramError, match=r"'t:plda150': 'plda150' is no back-end's column; the back-ends "
                                           r"\(sidkd/backend/backends.py\): cosine, lda<D>\+plda, each also with \+asnorm"):
        results_table.main(["--systems", "s", "--columns", "t:plda150", str(table)])
