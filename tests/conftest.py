"""Shared test fixtures: the repository root, the shared corpora, and tiny audio made on the spot."""

import os
import sys

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPORA = os.path.join(REPO_ROOT, "..", "shared", "corpora")
# Tests import this checkout's sidkd, whatever else is installed.
sys.path.insert(0, REPO_ROOT)


@pytest.fixture
def repo_root():
    return REPO_ROOT


@pytest.fixture
def corpora():
    assert os.path.isdir(CORPORA), f"tests read a few files from {CORPORA}; put ../shared beside the repo"
    return CORPORA


def tool_env():
    """Environment for running steps/utils/programs: this checkout first on PATH and PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PATH"] = os.pathsep.join(
        [os.path.join(REPO_ROOT, "utils"), os.path.join(REPO_ROOT, "steps"), os.path.dirname(sys.executable), env["PATH"]]
    )
    env["LC_ALL"] = "C"
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.fixture
def subprocess_env():
    return tool_env()


def tone(seconds=0.5, rate=16000, freq=440.0, amplitude=0.3, seed=0):
    """A tone plus a little noise, float in [-1, 1]."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    return amplitude * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
