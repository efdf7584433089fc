"""Skips the real-Slurm test with a stated reason where Slurm cannot be had (see slurm_policy.py)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: install packages only if the test runs
def pytest_collection_modifyitems(config, items):
    real = [item for item in items if item.name == "test_real_slurm"]
    if not real:
        return
    from slurm_policy import skip_reason

    reason = skip_reason()
    if reason:
        for item in real:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def trained_student(tmp_path_factory):
    """(recipe folder, new-speaker recordings) with a tiny student trained in exp/student_kd
    (tests/ops/tiny_student.py); shared by the verify and export tests."""
    from tiny_student import make_student_recipe

    root = tmp_path_factory.mktemp("student_recipe")
    return root, make_student_recipe(str(root))
