"""SIGKILL a step part-way, check what it left, run it again: shared by the kill-and-resume tests."""

import os
import signal
import subprocess
import time

from tests.conftest import tool_env


def env():
    """This checkout's utils/, steps/ and sidkd first; one BLAS thread."""
    return tool_env()


def kill_and_rerun(root, command, check, rng, reference_seconds, num_kills, started=None, resume=None):
    """SIGKILL ``command`` (its whole process group: step, run.pl, jobs) ``num_kills`` times and call
    ``check()`` after each kill; then run ``resume()`` (a command; default: ``command`` again) to the
    end. The first kill comes a seeded delay after ``started()`` turns true (e.g. an output begins
    to be written; None: at once), the others at seeded fractions of the reference run's time. A run
    that ends before its kill (the machine got faster) is tried again with half the delay, so the
    kills happen whatever the load. Returns how many kills interrupted a running command."""
    plan = [("started", rng.uniform(0.0, 0.4))] + [("start", f * reference_seconds) for f in rng.uniform(0.2, 0.8, num_kills - 1)]
    killed_while_running = 0
    for event, delay in plan:
        for _attempt in range(8):
            proc = subprocess.Popen(command if resume is None else resume(), cwd=root, env=env(),
                                    start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 120
            while event == "started" and started is not None and proc.poll() is None and time.monotonic() < deadline:
                if started():
                    break
                time.sleep(0.005)
            killed = False
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
            proc.wait(timeout=60)
            time.sleep(0.2)  # jobs of the group are gone by now; nothing of theirs writes after this
            check()
            if killed:
                killed_while_running += 1
                break
            delay /= 2
    final = command if resume is None else resume()
    proc = subprocess.run(final, cwd=root, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(final)}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return killed_while_running
