"""local/make_label_scarce.sh on a tiny real-audio recipe: labelled fractions per corpus, nested and
per corpus; the teacher trained on the whole pool (train + unlabelled); its i-vectors and crop
i-vectors of every training utterance; a second run keeps everything."""

import math
import os
import subprocess

from sidkd.io.ark import load_table
from tests.conftest import CORPORA, REPO_ROOT, tool_env
from tests.recipe.tiny_corpus import make_tiny_corpora

TINY = ["--ivector-num-gauss", "4", "--ivector-dim", "3", "--ubm-num-iters", "1", "--ivector-num-iters", "1",
        "--kd-num-crops", "2", "--crop-seconds", "1", "--nj", "1"]


def sh(root, *command):
    proc = subprocess.run(list(command), cwd=root, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc.stdout


def speakers(path):
    return {line.split()[1] for line in open(path) if line.strip()}


def test_fractions_pool_teacher_and_vectors(tmp_path, monkeypatch):
    for item in ("local", "utils", "steps", "conf", "path.sh"):
        os.symlink(os.path.join(REPO_ROOT, item), tmp_path / item)
    make_tiny_corpora(CORPORA, str(tmp_path / "corpora"), so_train=4, so_test=2, sc_train=2, sc_test=2, utts=3)
    sh(tmp_path, "local/prepare_data.sh", "--corpus-root", "corpora", "data")
    for name in ("train", "sc_train"):
        sh(tmp_path, "steps/make_mfcc.sh", "--nj", "1", "--write-utt2num-frames", "true", f"data/{name}",
           f"exp/make_mfcc/{name}", "mfcc")
        sh(tmp_path, "steps/compute_vad_decision.sh", "--nj", "1", f"data/{name}", f"exp/make_vad/{name}", "mfcc")
    out = sh(tmp_path, "local/make_label_scarce.sh", *TINY, "--fractions", "25 50", "data/train", "exp/scarce",
             "data/sc_train")
    train = speakers(tmp_path / "data/train/utt2spk")
    by_corpus = {c: {s for s in train if s.startswith("ls") == (c == "ls")} for c in ("ls", "")}
    lab = {f: speakers(tmp_path / f"data/train_lab{f}/utt2spk") for f in (25, 50)}
    for f in (25, 50):  # F % of each corpus's speakers, rounded up
        for corpus, members in by_corpus.items():
            assert len(lab[f] & members) == math.ceil(len(members) * f / 100), (f, corpus)
        assert os.path.exists(tmp_path / f"data/train_lab{f}/feats.scp")
    assert lab[25] < lab[50]  # nested
    pool = [line.split()[0] for line in open(tmp_path / "exp/scarce/pool/utt2spk")]
    assert len(pool) == sum(1 for _ in open(tmp_path / "data/train/utt2spk")) + sum(
        1 for _ in open(tmp_path / "data/sc_train/utt2spk"))
    assert f"teacher of {len(pool)} utterances (labels unused)" in out
    monkeypatch.chdir(tmp_path)  # the archives' paths are the recipe folder's
    ivectors = load_table("scp:exp/scarce/ivectors_train/ivector.scp")
    utts = [line.split()[0] for line in open(tmp_path / "data/train/utt2spk")]
    assert sorted(ivectors) == sorted(utts) and all(v.shape == (3,) for v in ivectors.values())
    crops = load_table("scp:exp/scarce/ivectors_train_crops/ivector.scp")
    assert len(crops) >= len(utts)
    again = sh(tmp_path, "local/make_label_scarce.sh", *TINY, "--fractions", "25 50", "data/train", "exp/scarce",
               "data/sc_train")
    assert "data/train_lab25 exists; kept" in again and "train_diag_ubm" not in again
