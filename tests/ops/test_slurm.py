"""slurm.pl against a real Slurm (local/test_slurm.sh), and its queue-watching with a fake squeue."""

import os
import stat
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_real_slurm():
    """Runs only where slurm_policy.skip_reason() is None (else skipped with the reason)."""
    env = dict(os.environ, PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]),
               SIDKD_SLURM_TIMEOUT="600", LC_ALL="C", OMP_NUM_THREADS="1")
    proc = subprocess.run(["local/test_slurm.sh"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=700)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert "features through slurm.pl equal those through run.pl" in proc.stdout
    if os.path.exists(os.path.join(REPO_ROOT, "steps", "extract_ivectors.sh")):
        assert "i-vectors through slurm.pl equal those through run.pl" in proc.stdout
    assert "task 1 of Slurm job" in proc.stdout and "ended without reporting a status" in proc.stdout
    assert "scale bench through slurm.pl: 9 stages measured" in proc.stdout
    assert proc.stdout.rstrip().endswith("PASS")


def fake_queue(tmp_path, squeue_body):
    """sbatch that submits nothing (prints a job id) and a scripted squeue."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    scripts = {"sbatch": "#!/usr/bin/env bash\necho 77\n", "squeue": "#!/usr/bin/env bash\n" + squeue_body}
    for name, text in scripts.items():
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755 | stat.S_IEXEC)
    (tmp_path / "slurm.conf").write_text("command sbatch --export=PATH\n")
    return dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}", LC_ALL="C")


def run_slurm_pl(tmp_path, env):
    return subprocess.run([os.path.join(REPO_ROOT, "utils", "slurm.pl"), "--config", "slurm.conf",
                           "--poll-interval", "0", "--gone-grace", "0", "JOB=1:2", "log/t.JOB.log", "true"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def test_purged_job_counts_as_gone(tmp_path):
    # Real squeue, once the job's record is purged (MinJobAge after it ends), fails like this:
    env = fake_queue(tmp_path, 'echo "slurm_load_jobs error: Invalid job id specified" >&2\nexit 1\n')
    proc = run_slurm_pl(tmp_path, env)
    assert proc.returncode != 0
    assert proc.stderr.count("of Slurm job 77 ended without reporting a status") == 2, proc.stderr


def test_squeue_failing_otherwise_is_not_gone(tmp_path):
    # The controller is unreachable for three polls, during which both tasks finish: success.
    body = ('n=$(cat calls 2>/dev/null || echo 0); echo $((n + 1)) > calls\n'
            'if [ "$n" -lt 3 ]; then\n'
            '  [ "$n" = 2 ] && { mkdir -p log/q; echo 0 > log/q/done.t.1; echo 0 > log/q/done.t.2; }\n'
            '  echo "squeue: error: Unable to contact slurm controller (connect failure)" >&2; exit 1\n'
            'fi\n')
    proc = run_slurm_pl(tmp_path, fake_queue(tmp_path, body))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "calls").read_text().strip() == "3"
