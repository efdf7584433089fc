"""steps/train_student.sh (torchrun, 2 processes) and steps/extract_embeddings.sh end to end on a
tiny data dir, with the real sidkd.feat filterbank."""

import hashlib
import json
import os
import re
import subprocess

import numpy as np
from nnet_helpers import make_tiny_data

from sidkd.feat import FbankOptions, compute_fbank
from sidkd.io.ark import load_table
from sidkd.nnet.features import FeatureFrontEnd
from tests.conftest import REPO_ROOT, tool_env


def test_frontend_is_sidkd_feat_fbank_minus_its_mean():
    x = (np.random.default_rng(0).standard_normal(8000) * 1000).astype(np.float32)
    opts = {"num_mel_bins": 20, "snip_edges": False, "use_energy": False, "dither": 0.0}
    ref = compute_fbank(x, FbankOptions(**opts))
    out = FeatureFrontEnd(opts)(x)
    assert out.shape == ref.shape == (50, 20)
    np.testing.assert_allclose(out, ref - ref.mean(0), rtol=1e-5, atol=1e-4)


def test_train_and_extract_steps(tmp_path, monkeypatch):
    recipe = tmp_path / "egs"
    recipe.mkdir()
    for name in ("steps", "utils"):
        os.symlink(os.path.join(REPO_ROOT, name), recipe / name)
    data, teacher = make_tiny_data(str(tmp_path), missing_teacher=("spk0-u1",))
    utt2spk = [line.split() for line in open(os.path.join(data, "utt2spk"))]
    with open(os.path.join(data, "spk2utt"), "w") as handle:
        for spk in sorted({s for _, s in utt2spk}):
            handle.write(spk + " " + " ".join(u for u, s in utt2spk if s == spk) + "\n")
    os.symlink(os.path.join(REPO_ROOT, "tests", "nnet", "student_tiny.yaml"), recipe / "student.yaml")
    env = tool_env()
    teacher_scp = teacher.split(":", 1)[1]

    def run(*args):
        proc = subprocess.run(list(args), cwd=recipe, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
        train_log = recipe / "exp/student_kd/log/train.log"  # what torchrun's ranks said, on failure
        assert proc.returncode == 0, proc.stdout[-4000:] + (train_log.read_text()[-6000:] if train_log.is_file() else "")
        return proc.stdout

    run("steps/train_student.sh", "--nnet-config", "student.yaml", "--set", "loss.kd.weight=0.3", "--num-procs", "2",
        data, teacher_scp, "exp/student_kd")
    log = open(recipe / "exp/student_kd/log/train.log").read()
    assert "11 kept + 1 skipped" in log and "batch 4 (2 per process x 2)" in log and "kd 0." in log
    assert (recipe / "exp/student_kd/final.pt").is_file() and int((recipe / "exp/student_kd/train_seconds").read_text()) >= 0
    _check_both_ranks_held_the_saved_parameters(recipe / "exp/student_kd", log)
    out = run("steps/extract_embeddings.sh", "--nj", "2", "--max-duration", "0.5", "exp/student_kd", data,
              "exp/student_kd/xvectors")
    assert "12 of 12 utterances" in out
    monkeypatch.chdir(recipe)  # ark paths in the scp are relative to the recipe root, as in Kaldi
    table = load_table("scp:exp/student_kd/xvectors/xvector.scp")
    assert sorted(table) == sorted(u for u, _ in utt2spk)
    assert all(v.shape == (8,) and np.isfinite(v).all() for v in table.values())
    # a missing model is a clear error, not a traceback
    proc = subprocess.run(["steps/extract_embeddings.sh", "exp/nothing", data, "exp/x"], cwd=recipe, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode != 0 and "no such file: exp/nothing/model.json" in proc.stdout


def test_a_failed_training_shows_its_reason_and_its_fixed_rerun_needs_no_overwrite(tmp_path):
    """The training's own error reaches the terminal (run.pl prints the log's last lines), and the
    failed first run, which wrote config.yaml but no checkpoint, does not block the fixed rerun."""
    recipe = tmp_path / "egs"
    recipe.mkdir()
    for name in ("steps", "utils"):
        os.symlink(os.path.join(REPO_ROOT, name), recipe / name)
    data, teacher = make_tiny_data(str(tmp_path))
    os.symlink(os.path.join(REPO_ROOT, "tests", "nnet", "student_tiny.yaml"), recipe / "student.yaml")

    import kaldiio

    stranger = str(tmp_path / "stranger")  # teacher vectors of nobody in the data
    with kaldiio.WriteHelper(f"ark,scp:{stranger}.ark,{stranger}.scp") as writer:
        writer("zz", np.zeros(5, np.float32))

    def train(teacher_scp):
        return subprocess.run(["steps/train_student.sh", "--nnet-config", "student.yaml", "--set",
                               "optim.num_epochs=1 optim.average_last=1", data, teacher_scp, "exp/s"], cwd=recipe,
                              env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    failed = train(stranger + ".scp")
    assert failed.returncode != 0 and (recipe / "exp/s/config.yaml").is_file()
    assert "the last lines of exp/s/log/train.log" in failed.stdout
    error = [line for line in open(recipe / "exp/s/log/train.log") if line.startswith("ERROR (train_student")]
    assert error and "  | " + error[0] in failed.stdout and "no teacher vector for any" in error[0]
    fixed = train(teacher.split(":", 1)[1])
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    assert (recipe / "exp/s/final.pt").is_file()


def _check_both_ranks_held_the_saved_parameters(model_dir, log):
    """After each epoch every torchrun process logs (via rank 0) a sha256 of its parameters: the two
    must agree with each other and with the parameters rank 0 saved in that epoch's checkpoint."""
    from sidkd.nnet import checkpoint as ckpt
    from sidkd.nnet.losses import AAMSoftmax, TeacherDistillation
    from sidkd.nnet.models import build_model
    from sidkd.nnet.models import StudentWithHeads

    desc = json.loads((model_dir / "model.json").read_text())
    shape = StudentWithHeads(build_model(desc["model"], 10), AAMSoftmax(8, desc["num_classes"], sub_centers=2),
                             TeacherDistillation(8, desc["teacher_dim"], desc["kd_normalisation"]))
    names = sorted(name for name, _ in shape.named_parameters())
    logged = dict(re.findall(r"epoch (\d+): parameter digests of the 2 processes: (\w+ \w+)", log))
    assert sorted(logged) == ["1", "2"], log[-3000:]
    saved = []
    for epoch, pair in logged.items():
        rank0, rank1 = pair.split()
        state = ckpt.load(str(model_dir / "checkpoints" / f"epoch_{epoch}.pt"))["model"]
        digest = hashlib.sha256()
        for name in names:  # this test's own hash of the checkpoint: name, NUL, float32 bytes
            digest.update(name.encode() + b"\0" + state[name].float().numpy().tobytes())
        saved.append(digest.hexdigest())
        assert rank0 == rank1 == saved[-1], f"epoch {epoch}"
    assert saved[0] != saved[1]  # the second epoch did change them
