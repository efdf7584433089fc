import os
import re

from utils_helpers import read, run_script


def test_array_job_with_one_failure_names_the_log(tmp_path):
    out = run_script("run.pl", "JOB=1:3", "log/x.JOB.log", "echo job JOB; test JOB -ne 2", cwd=tmp_path)
    assert out.returncode != 0
    assert "run.pl: 1 / 3 failed, log is in log/x.2.log" in out.stderr
    for j in (1, 2, 3):
        lines = read(tmp_path / "log" / f"x.{j}.log")
        assert lines[0] == f"# echo job {j}; test {j} -ne 2"
        assert lines[1].startswith("# Started at ")
        assert f"job {j}" in lines
        assert re.fullmatch(r"# Accounting: time=\d+ threads=1", lines[-2])
        code = 1 if j == 2 else 0
        assert lines[-1].startswith(f"# Ended (code {code}) at ")


def test_all_succeed_and_substitution_in_every_argument(tmp_path):
    out = run_script("run.pl", "JOB=1:3", "log/a.JOB.log", "echo", "out.JOB", "x JOB y", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "out.3 x 3 y" in read(tmp_path / "log" / "a.3.log")


def test_several_failures_and_other_variable_name(tmp_path):
    out = run_script("run.pl", "SPLIT=2:5", "l/SPLIT.log", "exit $((SPLIT % 2))", cwd=tmp_path)
    assert out.returncode != 0
    assert "2 / 4 failed, logs are in l/3.log l/5.log" in out.stderr
    assert sorted(os.listdir(tmp_path / "l")) == ["2.log", "3.log", "4.log", "5.log"]


def test_single_job_form_and_quoted_pipe(tmp_path):
    out = run_script("run.pl", "deep/dir/one.log", "echo a b | tr a-z A-Z", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "A B" in read(tmp_path / "deep" / "dir" / "one.log")
    # separate words: a word with spaces stays one argument, a lone | is a pipe
    out = run_script("run.pl", "two.log", "echo", "x  y", "|", "tr", "x", "z", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "z  y" in read(tmp_path / "two.log")
    out = run_script("run.pl", "three.log", "false", cwd=tmp_path)
    assert out.returncode != 0 and "three.log" in out.stderr


def test_max_jobs_run_limits_concurrency(tmp_path):
    # Each job records how many jobs are running (marker files) while it runs.
    cmd = (
        "touch run.JOB; sleep 0.3; ls run.* | wc -l > count.JOB; sleep 0.1; rm run.JOB"
    )
    out = run_script("run.pl", "--max-jobs-run", "2", "--mem", "2G", "JOB=1:4", "log/m.JOB.log", cmd,
                     cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    counts = [int(read(tmp_path / f"count.{j}")[0]) for j in range(1, 5)]
    assert max(counts) <= 2
    # without --max-jobs-run all three run at once: each waits (up to 10 s) to see the others
    wait_all = (
        "touch all.JOB; for i in $(seq 100); do [ $(ls all.* | wc -l) -ge 3 ] && break; sleep 0.1; done;"
        " ls all.* | wc -l > c.JOB"
    )
    out = run_script("run.pl", "JOB=1:3", "log/all.JOB.log", wait_all, cwd=tmp_path)
    assert out.returncode == 0
    assert [int(read(tmp_path / f"c.{j}")[0]) for j in range(1, 4)] == [3, 3, 3]


def test_bad_usage(tmp_path):
    out = run_script("run.pl", "JOB=1:3", "log/same.log", "true", cwd=tmp_path)
    assert out.returncode != 0 and "does not contain JOB" in out.stderr
    out = run_script("run.pl", "JOB=3:1", "log/JOB.log", "true", cwd=tmp_path)
    assert out.returncode != 0 and "empty job range" in out.stderr
    out = run_script("run.pl", "only.log", cwd=tmp_path)
    assert out.returncode != 0 and "usage" in out.stderr


def test_a_failed_job_shows_the_last_lines_of_its_log_on_the_terminal(tmp_path):
    """The reason reaches the terminal, not only the log's path: the job's own last lines, less
    run.pl's header and footer, the older lines cut."""
    script = "for i in $(seq 40); do echo line $i; done; echo 'ERROR (prog) data/x: the reason'; exit 3"
    out = run_script("run.pl", "log/t.log", "bash", "-c", script, cwd=tmp_path)
    assert out.returncode != 0
    shown = out.stderr.split("run.pl: the last lines of log/t.log:\n", 1)[1].splitlines()
    assert shown[-1] == "  | ERROR (prog) data/x: the reason"
    assert shown[0] == "  | line 27" and len(shown) == 15
    assert not any("# " in line for line in shown)
