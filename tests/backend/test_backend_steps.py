"""The back-end shell steps in a Kaldi-style recipe folder, on synthetic vector archives."""

import os
import subprocess

import numpy as np
import pytest

from sidkd.backend.lda import Lda
from sidkd.backend.plda import Plda
from sidkd.backend.scoring import PldaScorer, score_pairs
from sidkd.backend.vectors import load_mean, read_vectors
from sidkd.io.ark import ArchiveWriter
from sidkd.io.trials import read_scores, read_trials
from tests.conftest import REPO_ROOT
from tests.recipe.tiny_corpus import make_recipe_dir


def write_vectors(recipe, name, counts, rng, basis):
    os.makedirs(os.path.join(recipe, "data", name))
    keys, spk = [], {}
    scp = f"exp/vec_{name}/vector.scp"
    with ArchiveWriter(f"ark,scp:{recipe}/exp/vec_{name}/vector.ark,{recipe}/{scp}") as writer:
        for s, n in enumerate(counts):
            y = basis[:, :4] @ rng.normal(size=4) * 2.0
            for u in range(n):
                key = f"{name}{s:02d}-{u:02d}"
                keys.append(key)
                spk[key] = f"{name}{s:02d}"
                writer[key] = (1.0 + y + basis @ (rng.normal(size=10) * np.r_[[0.5] * 4, [1.2] * 6])).astype(np.float32)
    with open(os.path.join(recipe, "data", name, "utt2spk"), "w") as handle:
        handle.writelines(f"{k} {spk[k]}\n" for k in sorted(keys))
    return scp, sorted(keys), spk


def run(recipe, env, *args, check=True):
    proc = subprocess.run(list(args), cwd=recipe, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}")
    return proc


@pytest.fixture
def recipe(tmp_path):
    recipe = make_recipe_dir(REPO_ROOT, str(tmp_path / "egs"))
    rng = np.random.default_rng(3)
    basis = np.linalg.qr(rng.normal(size=(10, 10)))[0]
    train_scp, _, _ = write_vectors(recipe, "train", [6] * 25 + [1] * 4, rng, basis)
    test_scp, keys, spk = write_vectors(recipe, "test", [5] * 6, rng, basis)
    with open(os.path.join(recipe, "data/test/trials"), "w") as handle:
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                handle.write(f"{a} {b} {'target' if spk[a] == spk[b] else 'nontarget'}\n")
    return recipe, train_scp, test_scp


def test_steps_baseline(recipe, subprocess_env):
    recipe, train, test = recipe
    env = subprocess_env
    out = run(recipe, env, "steps/train_plda.sh", "--lda-dim", "5", train, "data/train", "exp/plda").stdout
    assert "dropped 4 speakers with < 2 vectors" in out
    run(recipe, env, "steps/score_cosine.sh", "--system", "vec", train, test, test, "data/test/trials", "exp/scores/cos")
    run(recipe, env, "steps/score_plda.sh", "--system", "vec", "exp/plda", test, test, "data/test/trials", "exp/scores/plda")
    run(recipe, env, "steps/score_norm.sh", "--scorer", "cosine", "--top-n", "20", "--trials", "data/test/trials",
        "--system", "vec", "exp/vec_train", test, test, "exp/scores/cos/scores", "exp/scores/cos_asnorm")
    run(recipe, env, "steps/score_norm.sh", "--scorer", "plda", "--model-dir", "exp/plda", "--top-n", "20",
        "--trials", "data/test/trials", "--system", "vec", train, test, test, "exp/scores/plda/scores", "exp/scores/plda_asnorm")
    with open(os.path.join(recipe, "exp/results.tsv")) as handle:
        rows = [line.rstrip("\n").split("\t") for line in handle]
    assert [r[1] for r in rows[1:]] == ["cosine", "plda", "cosine+asnorm", "plda+asnorm"]
    assert all(r[2] == "test" for r in rows[1:])
    with open(os.path.join(recipe, "exp/scores/plda/metrics")) as handle:
        assert [line.split(":")[0] for line in handle] == ["EER", "minDCF(0.01)", "minDCF(0.001)"]
    # The step's PLDA scores are the library's on the same models (mean of ALL train vectors,
    # LDA and PLDA trained on the >= 2-utterance speakers).
    p = lambda name: os.path.join(recipe, name)  # noqa: E731
    scorer = PldaScorer(Plda.load(p("exp/plda/plda.npz")), load_mean(p("exp/plda/mean.npz")), Lda.load(p("exp/plda/lda.npz")))
    assert load_mean(p("exp/plda/mean.npz")) == pytest.approx(read_vectors(p(train)).matrix.mean(axis=0), abs=1e-6)
    trials = read_trials(p("data/test/trials"))
    table = read_vectors(p(test))
    expected = score_pairs(scorer, trials.enroll, trials.test, table, table)
    _, _, got = read_scores(p("exp/scores/plda/scores"))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)


def test_steps_bad_input(recipe, subprocess_env):
    recipe, train, test = recipe
    proc = run(recipe, subprocess_env, "steps/score_cosine.sh", train, test, test, "data/test/no_trials", "exp/x", check=False)
    assert proc.returncode != 0 and "no such file data/test/no_trials" in proc.stdout
    with open(os.path.join(recipe, "data/test/bad_trials"), "w") as handle:
        handle.write("test00-00 ghost1 nontarget\ntest00-00 ghost2 target\n")
    proc = run(recipe, subprocess_env, "steps/score_cosine.sh", train, test, test, "data/test/bad_trials", "exp/x", check=False)
    assert proc.returncode != 0
    with open(os.path.join(recipe, "exp/x/log/score_cosine.log")) as handle:
        assert "no vector for 2 test utterances named in the trials: ghost1 ghost2" in handle.read()
