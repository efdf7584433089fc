"""End to end: every run.sh stage on a tiny slice of ../shared/corpora (few speakers, tiny models).

One module-scoped run of ./run.sh (all stages) in a Kaldi-style recipe folder; the tests below
check what each stage left behind.
"""

import os
import subprocess

import pytest

from tests.conftest import CORPORA, REPO_ROOT, tool_env
from tests.recipe.tiny_corpus import make_recipe_dir, make_tiny_corpora

# Tiny sizes so the whole recipe runs in a few minutes on 2 cores.
TINY_OPTIONS = ["--nj", "2"]


def run_recipe(recipe, *args, check=True):
    env = tool_env()
    proc = subprocess.run(["./run.sh", *TINY_OPTIONS, "--corpus-root", "../corpora", *args], cwd=recipe,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"run.sh {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}")
    return proc


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    top = tmp_path_factory.mktemp("recipe")
    make_tiny_corpora(CORPORA, str(top / "corpora"))
    recipe_dir = make_recipe_dir(REPO_ROOT, str(top / "egs"))
    run_recipe(recipe_dir)
    return recipe_dir


def lines(path):
    with open(path) as handle:
        return [line.split() for line in handle]


def test_stage0_data_dirs(recipe):
    for name in ("train", "test", "sc_train", "sc_test"):
        d = os.path.join(recipe, "data", name)
        subprocess.run(["utils/validate_data_dir.sh", "--no-feats", "--no-text", d], cwd=recipe, check=True,
                       env=tool_env())
    train_spk = {row[0] for row in lines(os.path.join(recipe, "data/train/spk2utt"))}
    assert any(s.startswith("ls") for s in train_spk)  # librispeech speakers are prefixed
    for train, test in (("train", "test"), ("sc_train", "sc_test")):
        utt2spk = dict(lines(os.path.join(recipe, "data", test, "utt2spk")))
        trials = lines(os.path.join(recipe, "data", test, "trials"))
        kinds = {t[2] for t in trials}
        assert kinds == {"target", "nontarget"}
        n = len(utt2spk)
        assert len(trials) == n * (n - 1) // 2
        for enroll, test_utt, kind in trials:
            assert enroll < test_utt and (utt2spk[enroll] == utt2spk[test_utt]) == (kind == "target")
        train_spks = {row[0] for row in lines(os.path.join(recipe, "data", train, "spk2utt"))}
        assert not train_spks & set(utt2spk.values())


def test_stage1_features_and_vad(recipe):
    import kaldiio

    for name in ("train", "test", "sc_train", "sc_test"):
        d = os.path.join(recipe, "data", name)
        subprocess.run(["utils/validate_data_dir.sh", "--no-text", d], cwd=recipe, check=True,
                       env=tool_env())
        utts = [row[0] for row in lines(os.path.join(d, "utt2spk"))]
        feats = kaldiio.load_scp(os.path.join(d, "feats.scp"))
        vad = kaldiio.load_scp(os.path.join(d, "vad.scp"))
        num_frames = {u: int(n) for u, n in lines(os.path.join(d, "utt2num_frames"))}
        assert list(feats) == utts and list(vad) == utts and list(num_frames) == utts
        voiced = total = 0
        for u in utts:
            assert feats[u].shape == (num_frames[u], 24) and vad[u].shape == (num_frames[u],)
            voiced += vad[u].sum()
            total += len(vad[u])
        assert 0.4 < voiced / total < 0.95, f"{name}: implausible voiced share {voiced / total:.2f}"


# Keep last: rerunning stage 0 rebuilds the data dirs (and so drops their features).
def test_rerun_stage0_is_idempotent(recipe):
    before = open(os.path.join(recipe, "data/test/trials")).read()
    run_recipe(recipe, "--stage", "0", "--stop-stage", "0")
    assert open(os.path.join(recipe, "data/test/trials")).read() == before
