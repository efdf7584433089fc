"""The four i-vector steps end to end on a tiny synthetic data dir (feats.scp + vad.scp written
here, so no audio is needed), run from the repository root as a recipe runs them.

Needs utils/ (run.pl, parse_options.sh, split_data.sh) and the feature filters of sidkd.bin
(add_deltas, apply_cmvn_sliding, select_voiced_frames).
"""

import os
import subprocess

import numpy as np

from sidkd.io.ark import ArchiveWriter, load_table
from tests.conftest import REPO_ROOT as REPO
from tests.conftest import tool_env

ENV = tool_env()


def make_data_dir(path, num_spk=6, utts=4, dim=8, frames=200, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((5, dim)) * 3
    os.makedirs(path)
    utt2spk = []
    with ArchiveWriter(f"ark,scp:{path}/feats.ark,{path}/feats.scp") as feats, \
            ArchiveWriter(f"ark,scp:{path}/vad.ark,{path}/vad.scp") as vad:
        for s in range(num_spk):
            shift = rng.standard_normal((5, dim))
            for u in range(utts):
                key = f"spk{s}-utt{u}"
                align = rng.integers(0, 5, frames)
                feats[key] = (centres[align] + shift[align] + 0.5 * rng.standard_normal((frames, dim))).astype(np.float32)
                decision = np.ones(frames, dtype=np.float32)
                decision[:20] = 0  # leading silence that the VAD removes
                vad[key] = decision
                utt2spk.append(f"{key} spk{s}\n")
    with open(f"{path}/utt2spk", "w") as handle:
        handle.writelines(utt2spk)
    with open(f"{path}/spk2utt", "w") as handle:
        for s in range(num_spk):
            handle.write(f"spk{s} " + " ".join(f"spk{s}-utt{u}" for u in range(utts)) + "\n")


def run_step(*args):
    proc = subprocess.run(list(args), cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc.stdout


def test_steps_train_and_extract(tmp_path):
    data, exp = str(tmp_path / "data"), str(tmp_path / "exp")
    make_data_dir(data)
    run_step("steps/train_diag_ubm.sh", "--nj", "2", "--num-gaussians", "4", "--num-iters", "1", "--num-iters-init", "4",
             "--subsample", "1", data, f"{exp}/diag_ubm")
    run_step("steps/train_full_ubm.sh", "--nj", "2", "--num-iters", "1", "--num-gselect", "3", data, f"{exp}/diag_ubm",
             f"{exp}/full_ubm")
    extractor = ["steps/train_ivector_extractor.sh", "--nj", "2", "--ivector-dim", "4", "--num-gselect", "3",
                 "--gaussian-min-count", "10", "--cleanup", "false"]
    first = run_step(*extractor, "--num-iters", "1", f"{exp}/full_ubm", data, f"{exp}/extractor")
    # resume: a second run with one more iteration starts at it (--stage 1) from the kept 1.ie
    second = run_step(*extractor, "--num-iters", "2", "--stage", "1", f"{exp}/full_ubm", data, f"{exp}/extractor")
    assert "EM iteration 1 of 2" in second and "EM iteration 0" not in second and "Baum-Welch" not in second
    objectives = [float(line.split("frame)")[1].split()[0]) for line in (first + second).splitlines()
                  if "objective" in line]
    assert len(objectives) == 2 and objectives[1] >= objectives[0]
    out = run_step("steps/extract_ivectors.sh", "--nj", "2", "--num-gselect", "3", f"{exp}/extractor", data,
                   f"{exp}/ivectors")
    assert "24 utterances in = 24 i-vectors + 0 skipped" in out
    ivectors = load_table(f"scp:{exp}/ivectors/ivector.scp")
    assert len(ivectors) == 24 and all(v.shape == (4,) for v in ivectors.values())
    spk = load_table(f"scp:{exp}/ivectors/spk_ivector.scp")
    assert sorted(spk) == [f"spk{s}" for s in range(6)]
    with open(f"{exp}/ivectors/num_utts.ark") as handle:
        assert handle.read().split("\n")[0] == "spk0 4"


def test_step_names_missing_input(tmp_path):
    proc = subprocess.run(["steps/train_diag_ubm.sh", str(tmp_path / "nodata"), str(tmp_path / "exp")], cwd=REPO,
                          env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode != 0 and "nodata/feats.scp" in proc.stdout
