"""When the real-Slurm test runs (tests/ops/test_slurm.py::test_real_slurm), decided once per session.

- ``SIDKD_TEST_SLURM=0``: skipped.
- ``SIDKD_TEST_SLURM=1``: always run (fails, with the reason, where Slurm cannot be set up).
- otherwise: run as root where munged/slurmctld/slurmd/sbatch are installed, or where
  ``apt-get install slurm-wlm munge`` finishes within INSTALL_BUDGET_S (CI: root, network to
  Debian's mirror); else skipped, with the reason, counted as skipped.
"""

import os
import shutil
import subprocess

INSTALL_BUDGET_S = 120
PROGRAMS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel")


def _missing() -> list[str]:
    return [p for p in PROGRAMS if shutil.which(p) is None and not os.path.exists(f"/usr/sbin/{p}")]


def _install() -> str | None:
    """apt-get the packages within the budget; None on success, else why not."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    command = ("apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge")
    try:
        proc = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True,
                              timeout=INSTALL_BUDGET_S)
    except subprocess.TimeoutExpired:
        return f"apt-get install slurm-wlm munge did not finish within {INSTALL_BUDGET_S} s"
    if proc.returncode != 0:
        return f"apt-get install slurm-wlm munge failed: {(proc.stderr or proc.stdout).strip()[-300:]}"
    return None


def skip_reason() -> str | None:
    """Why the real-Slurm test cannot run here (None: it runs)."""
    choice = os.environ.get("SIDKD_TEST_SLURM", "")
    if choice == "0":
        return "SIDKD_TEST_SLURM=0"
    if choice == "1":
        return None
    if os.geteuid() != 0:
        return "the real-Slurm test needs root (it runs slurmd and installs slurm-wlm); SIDKD_TEST_SLURM=1 forces it"
    if not _missing():
        return None
    if shutil.which("apt-get") is None:
        return f"Slurm is not installed ({', '.join(_missing())} missing) and there is no apt-get"
    why = _install()
    if why is None and _missing():
        why = f"after apt-get install, still missing: {', '.join(_missing())}"
    return why
