import os
import stat

from utils_helpers import UTILS


def make_script(tmp_path):
    path = tmp_path / "prog.sh"
    path.write_text(
        "#!/usr/bin/env bash\nset -euo pipefail\n"
        "nj=4\ncmd=run.pl\nuse_gpu=false\nempty=\n"
        'help_message="Usage: prog.sh [options] <a> <b>"\n'
        f". {UTILS}/parse_options.sh\n"
        'echo "nj=$nj cmd=$cmd use_gpu=$use_gpu empty=$empty"\n'
        'for a in "$@"; do echo "arg=$a"; done\n'
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def run(tmp_path, *args):
    import subprocess

    return subprocess.run([make_script(tmp_path), *args], capture_output=True, text=True, cwd=tmp_path)


def test_sets_defined_variables_both_spellings(tmp_path):
    out = run(tmp_path, "--nj", "3", "--use-gpu=true", "--empty", "x y", "--cmd=slurm.pl --mem 4G", "a", "--nj")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "nj=3 cmd=slurm.pl --mem 4G use_gpu=true empty=x y"
    # parsing stops at the first non-option; the rest stays positional
    assert lines[1:] == ["arg=a", "arg=--nj"]


def test_unknown_option_is_an_error(tmp_path):
    out = run(tmp_path, "--num-jobs", "3", "a")
    assert out.returncode != 0
    assert "unknown option --num-jobs" in out.stderr
    assert out.stdout == ""


def test_missing_value_is_an_error(tmp_path):
    out = run(tmp_path, "--nj")
    assert out.returncode != 0
    assert "--nj needs a value" in out.stderr


def test_help_prints_usage_and_exits_zero(tmp_path):
    for flag in ("--help", "-h"):
        out = run(tmp_path, flag)
        assert out.returncode == 0
        assert out.stdout.strip() == "Usage: prog.sh [options] <a> <b>"


def test_config_file(tmp_path):
    conf = tmp_path / "opts.conf"
    conf.write_text("# comment\nnj=7\ncmd='slurm.pl --gpu 1'\n")
    out = run(tmp_path, "--config", str(conf), "--use-gpu", "true", "z")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["nj=7 cmd=slurm.pl --gpu 1 use_gpu=true empty=", "arg=z"]
    bad = tmp_path / "bad.conf"
    bad.write_text("nj=2\nbogus=1\n")
    out = run(tmp_path, "--config", str(bad), "z")
    assert out.returncode != 0 and "unknown option bogus" in out.stderr
    out = run(tmp_path, "--config", os.path.join(str(tmp_path), "absent.conf"), "z")
    assert out.returncode != 0 and "cannot be read" in out.stderr


def test_double_dash_ends_options(tmp_path):
    out = run(tmp_path, "--nj", "2", "--", "--cmd", "x")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["nj=2 cmd=run.pl use_gpu=false empty=", "arg=--cmd", "arg=x"]


def test_boolean_option_takes_true_or_false(tmp_path):
    out = run(tmp_path, "--use-gpu", "yes", "a")
    assert out.returncode != 0 and "--use-gpu takes true or false, got 'yes'" in out.stderr
