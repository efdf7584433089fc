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
