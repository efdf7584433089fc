import os
import stat

from utils_helpers import read, run_script

FAKE_SBATCH = r"""#!/usr/bin/env bash
# Test double for sbatch: records its arguments, runs the array tasks at once (skipping the
# ids in $SKIP_TASKS, as if Slurm had killed them) and prints a job id like --parsable.
echo "$*" >> "$SBATCH_LOG"
range=; script=
for a in "$@"; do
  case "$a" in --array=*) range=${a#--array=}; range=${range%%\%*} ;; esac
  script=$a
done
if [ -z "$range" ]; then bash "$script" > /dev/null 2>&1
else
  for ((i=${range%-*}; i<=${range#*-}; i++)); do
    case " ${SKIP_TASKS:-} " in *" $i "*) continue ;; esac
    SLURM_ARRAY_TASK_ID=$i bash "$script" > /dev/null 2>&1
  done
fi
echo 4242
"""


def fake_slurm(tmp_path):
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("squeue", "#!/usr/bin/env bash\nexit 0\n")):
        path = bindir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "SBATCH_LOG": str(tmp_path / "sbatch.args")}


def write_conf(tmp_path):
    conf = tmp_path / "slurm.conf"
    conf.write_text(
        "command sbatch --export=PATH -p cpu\n"
        "option mem=* --mem=$0\noption mem=0\n"
        "option num_threads=* --cpus-per-task=$0\n"
        "option gpu=* --gres=gpu:$0 -p gpu\noption gpu=0\ndefault gpu=0\n"
    )
    return str(conf)


def test_dry_run_prints_exact_sbatch_command_and_script(tmp_path):
    conf = write_conf(tmp_path)
    out = run_script("slurm.pl", "--config", conf, "--dry-run", "true", "--mem", "4G", "--gpu", "1",
                     "--num-threads", "2", "--max-jobs-run", "2", "JOB=1:4", "exp/log/train.JOB.log",
                     "python", "-m", "x", "data/split4/JOB", "a b", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == (
        "sbatch --export=PATH -p cpu --gres=gpu:1 -p gpu --mem=4G --cpus-per-task=2 --job-name=train"
        " --array=1-4%2 --output=exp/log/q/train.%a.out exp/log/q/train.sh"
    )
    script = "\n".join(lines[1:])
    assert script.startswith("#!/usr/bin/env bash")
    assert "cmd_template='python -m x data/split4/JOB '\\''a b'\\'''" in script
    assert "threads=2" in script
    assert not os.path.exists(tmp_path / "exp")  # nothing written in a dry run


def test_default_options_and_unmapped_option(tmp_path):
    conf = write_conf(tmp_path)
    out = run_script("slurm.pl", "--config", conf, "log/one.log", "true", cwd=tmp_path,
                     env={"SIDKD_SLURM_DRY_RUN": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == (
        "sbatch --export=PATH -p cpu --job-name=one --output=log/q/one.out log/q/one.sh"
    )
    out = run_script("slurm.pl", "--config", conf, "--queue", "x", "log/one.log", "true", cwd=tmp_path,
                     env={"SIDKD_SLURM_DRY_RUN": "1"})
    assert out.returncode != 0 and "--queue is not mapped" in out.stderr


def test_repo_default_conf_is_used(tmp_path):
    repo_conf = os.path.join(os.path.dirname(__file__), "..", "..", "conf", "slurm.conf")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "slurm.conf").write_text(open(repo_conf).read())
    out = run_script("slurm.pl", "--dry-run", "true", "--mem", "1G", "--gpu", "1", "JOB=1:2", "l/a.JOB.log",
                     "true", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith("sbatch --export=PATH")
    assert "--mem=1G" in first and "--gres=gpu:1" in first and "--array=1-2 " in first


def test_runs_waits_and_reports_failures_with_fake_sbatch(tmp_path):
    env = fake_slurm(tmp_path)
    conf = write_conf(tmp_path)
    out = run_script("slurm.pl", "--config", conf, "--poll-interval", "0", "JOB=1:3", "exp/log/t.JOB.log",
                     "echo hello JOB; test JOB -ne 3", cwd=tmp_path, env=env)
    assert out.returncode != 0
    assert "slurm.pl: 1 / 3 failed, log is in exp/log/t.3.log" in out.stderr
    for j in (1, 2, 3):
        lines = read(tmp_path / "exp" / "log" / f"t.{j}.log")
        assert lines[0] == f"# echo hello {j}; test {j} -ne 3"
        assert f"hello {j}" in lines
        assert lines[-1].startswith(f"# Ended (code {1 if j == 3 else 0}) at")
    assert read(tmp_path / "sbatch.args")[0].endswith("--array=1-3 --output=exp/log/q/t.%a.out exp/log/q/t.sh")


def test_task_killed_without_marker_counts_as_failed(tmp_path):
    env = fake_slurm(tmp_path)
    env["SKIP_TASKS"] = "2"
    out = run_script("slurm.pl", "--config", write_conf(tmp_path), "--poll-interval", "0", "--gone-grace", "0",
                     "JOB=1:2", "log/k.JOB.log", "true", cwd=tmp_path, env=env)
    assert out.returncode != 0
    assert "task 2 of Slurm job 4242 ended without reporting a status" in out.stderr
    assert "1 / 2 failed, log is in log/k.2.log" in out.stderr
