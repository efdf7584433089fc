"""Shared by the feature tests: where the corpora are (../shared/corpora from the repo root; one
level further up from a git worktree under a sibling folder)."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def corpora_dir() -> str:
    for candidate in (os.path.join(REPO, "..", "shared", "corpora"), os.path.join(REPO, "..", "..", "shared", "corpora")):
        if os.path.isdir(candidate):
            return os.path.normpath(candidate)
    raise AssertionError(f"no ../shared/corpora next to {REPO}")
