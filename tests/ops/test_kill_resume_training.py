"""Kill and resume, training stages: steps/train_ivector_extractor.sh and steps/train_student.sh are
SIGKILLed (step, run.pl and jobs) at seeded random points; after each kill every model, checkpoint
and statistics file on disk under its real name is complete and equal to the uninterrupted run's;
the rerun (extractor: --stage where a user would restart; student: plain rerun, which resumes from
the newest checkpoint) ends with the uninterrupted run's model, bit for bit.
"""

import os
import subprocess
import time

import kaldiio
import numpy as np
import torch
import yaml
from killing import env, kill_and_rerun
from tiny_student import TINY_YAML, speaker_files, write_data_dir

from tests.conftest import REPO_ROOT
from tests.ivector.test_ivector_steps import make_data_dir

NJ, ITERS = 1, 2


def link_recipe(root):
    for item in ("steps", "utils", "conf", "sidkd", "path.sh"):
        os.symlink(os.path.join(REPO_ROOT, item), root / item)


def run(root, command):
    start = time.monotonic()
    proc = subprocess.run(command, cwd=root, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return time.monotonic() - start


def npz_arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def assert_same_npz(a, b):
    x, y = npz_arrays(a), npz_arrays(b)
    assert sorted(x) == sorted(y), a
    for name in x:
        assert x[name].dtype == y[name].dtype and np.array_equal(x[name], y[name]), f"{a}: {name}"


def extractor_cmd(out, stage=-2):
    return ["steps/train_ivector_extractor.sh", "--nj", str(NJ), "--num-iters", str(ITERS), "--ivector-dim", "4",
            "--num-gselect", "3", "--gaussian-min-count", "10", "--cleanup", "false", "--stage", str(stage),
            "exp/full_ubm", "data", out]


def extractor_resume_stage(d):
    """Where a user restarts after looking at the folder: no 0.ie -> -2 (init); stats of a job
    missing -> -1; else the newest model x.ie -> EM iteration x."""
    if not (d / "0.ie").exists():
        return -2
    if not all((d / "stats" / f"stats.{j}.scp").exists() and (d / "stats" / f"second_order.{j}.npz").exists()
               for j in range(1, NJ + 1)):
        return -1
    return max(x for x in range(ITERS + 1) if (d / f"{x}.ie").exists())


def check_extractor_dir(run_dir, ref_dir):
    for name in ("final.dubm", "final.ubm"):
        if (run_dir / name).exists():
            assert (run_dir / name).read_bytes() == (ref_dir / name).read_bytes(), name
    for x in [*range(ITERS + 1), "final"]:
        if (run_dir / f"{x}.ie").exists():
            assert_same_npz(run_dir / f"{x}.ie", ref_dir / f"{x}.ie")
    for j in range(1, NJ + 1):
        scp = run_dir / "stats" / f"stats.{j}.scp"
        if scp.exists():
            got, want = kaldiio.load_scp(str(scp)), kaldiio.load_scp(str(ref_dir / "stats" / f"stats.{j}.scp"))
            assert list(got) == list(want) and all(np.array_equal(got[k], want[k]) for k in want)
        if (run_dir / "stats" / f"second_order.{j}.npz").exists():
            assert_same_npz(run_dir / "stats" / f"second_order.{j}.npz", ref_dir / "stats" / f"second_order.{j}.npz")


def test_extractor_training_killed_and_resumed_equals_uninterrupted(tmp_path, monkeypatch):
    link_recipe(tmp_path)
    monkeypatch.chdir(tmp_path)  # the scp files name their archives relative to the recipe root
    make_data_dir(str(tmp_path / "data"))
    run(tmp_path, ["steps/train_diag_ubm.sh", "--nj", str(NJ), "--num-gaussians", "4", "--num-iters", "1",
                   "--num-iters-init", "4", "--subsample", "1", "data", "exp/diag_ubm"])
    run(tmp_path, ["steps/train_full_ubm.sh", "--nj", str(NJ), "--num-iters", "1", "--num-gselect", "3", "data",
                   "exp/diag_ubm", "exp/full_ubm"])
    seconds = run(tmp_path, extractor_cmd("exp/ref"))
    print(f"reference extractor run: {seconds:.1f} s")
    ref, out = tmp_path / "exp" / "ref", tmp_path / "exp" / "run"
    rng = np.random.default_rng(8)
    killed = kill_and_rerun(tmp_path, extractor_cmd("exp/run"), lambda: check_extractor_dir(out, ref), rng, seconds,
                            2, started=lambda: (out / "stats").is_dir() and any((out / "stats").iterdir()),
                            resume=lambda: extractor_cmd("exp/run", extractor_resume_stage(out)))
    assert killed >= 1
    assert_same_npz(out / "final.ie", ref / "final.ie")
    check_extractor_dir(out, ref)
    assert not [f for f in os.listdir(out) if ".tmp." in f]


def student_checkpoints(model_dir):
    return sorted(p for p in (model_dir / "checkpoints").glob("*.pt")) if (model_dir / "checkpoints").is_dir() else []


def assert_same_state(a, b):
    x = torch.load(a, weights_only=True)["model"]
    y = torch.load(b, weights_only=True)["model"]
    assert x.keys() == y.keys(), a
    for name in x:
        assert torch.equal(x[name], y[name]), f"{a}: {name}"


def check_student_dir(run_dir, ref_dir):
    for path in student_checkpoints(run_dir):  # every checkpoint under its real name is complete
        assert_same_state(path, ref_dir / "checkpoints" / path.name)
    if (run_dir / "final.pt").exists():
        assert_same_state(run_dir / "final.pt", ref_dir / "final.pt")


def test_student_training_killed_and_resumed_equals_uninterrupted(tmp_path):
    link_recipe(tmp_path)
    write_data_dir(str(tmp_path / "data" / "train"), speaker_files(3, 4))
    conf = yaml.safe_load(open(TINY_YAML))
    conf["optim"]["num_epochs"] = 4  # 3 steps each: kills land between and inside epochs
    (tmp_path / "student.yaml").write_text(yaml.safe_dump(conf))

    def step(out):
        return ["steps/train_student.sh", "--nnet-config", "student.yaml", "--set", "loss.kd.weight=0", "data/train", "none",
                out]

    seconds = run(tmp_path, step("exp/ref"))
    ref, out = tmp_path / "exp" / "ref", tmp_path / "exp" / "run"
    assert [p.name for p in student_checkpoints(ref)] == [f"epoch_{e}.pt" for e in range(1, 5)]
    rng = np.random.default_rng(11)
    killed = kill_and_rerun(tmp_path, step("exp/run"), lambda: check_student_dir(out, ref), rng, seconds, 2,
                            started=lambda: bool(student_checkpoints(out)))
    assert killed >= 1
    # the last run continued from a checkpoint, not from scratch, or (killed after final.pt) found
    # this configuration finished and trained nothing
    last = max((out / "log").glob("*.log"), key=lambda p: p.stat().st_mtime_ns).read_text()
    assert "resumed from" in last or "finished training earlier; nothing to do" in last
    check_student_dir(out, ref)
    assert_same_state(out / "final.pt", ref / "final.pt")
    assert not [f for f in os.listdir(out / "checkpoints") if ".tmp." in f]
