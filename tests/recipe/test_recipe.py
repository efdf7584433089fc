"""End to end: every run.sh stage on a tiny slice of ../shared/corpora (few speakers, tiny models).

One module-scoped run of ./run.sh (all stages) in a Kaldi-style recipe folder; the tests below
check what each stage left behind.
"""

import os
import re
import subprocess

import pytest

from tests.conftest import CORPORA, REPO_ROOT, tool_env
from tests.recipe.tiny_corpus import make_recipe_dir, make_tiny_corpora

# Tiny sizes so the whole recipe runs in a few minutes on 2 cores: the recipe's own conf files
# (teacher, back-ends, base networks); the repo's variant files resolve their base to these.
# two of the four transfers: plain CE and both losses cover every code path of stages 9-11 (the
# variants differ only in K and α, which tests/nnet/test_config.py reads from their files)
TINY_OPTIONS = ["--nj", "2", "--students", "student_nokd student_kd", "--transfers", "transfer_ce transfer_msce_kl"]


def tiny_conf():
    import yaml

    with open(os.path.join(REPO_ROOT, "tests", "transfer", "transfer_tiny.yaml")) as handle:
        transfer = yaml.safe_load(handle)
    # the long-speech data recipe of the transfer: replay, same-utterance long views, crops of 0.5-1 s
    transfer["replay"] = {"ratio": 0.5}
    transfer["loss"]["kl"]["long_view"] = "concat+utterance"
    transfer["short_seconds"] = [0.5, 1.0]
    with open(os.path.join(REPO_ROOT, "tests", "nnet", "student_tiny.yaml")) as handle:
        student = handle.read()
    return {"ivector.conf": "ivector_num_gauss=8 ivector_dim=10 ubm_num_iters=2 ivector_num_iters=2\n"
                            "diag_ubm_subsample=5 full_ubm_subsample=5 ivector_num_gselect=4 ivector_min_post=0.025\n",
            # the repo's recipe.conf (every variable run.sh reads) with tiny sizes after it
            "recipe.conf": open(os.path.join(REPO_ROOT, "conf", "recipe.conf")).read()
                           + "lda_dim=4 dev_lda_dim=3 transfer_lda_dim=3 asnorm_top_n=5 baseline_sets='test sc_test'\n"
                           "test_crops='1 2' dev_num_speakers=2 dev_seed=777 kd_num_crops=4 nyquist_margin=400\n",
            "student.yaml": student, "transfer.yaml": yaml.safe_dump(transfer)}


BACKENDS = {"cosine", "cosine+asnorm", "lda4+plda", "lda4+plda+asnorm"}


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
    recipe_dir = make_recipe_dir(REPO_ROOT, str(top / "egs"), tiny_conf())
    proc = run_recipe(recipe_dir)
    with open(os.path.join(recipe_dir, "run.out"), "w") as out:  # what the terminal showed
        out.write(proc.stdout)
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


def test_stages2to4_ivector_teacher(recipe, monkeypatch):
    import kaldiio
    import numpy as np

    monkeypatch.chdir(recipe)  # scp files hold paths relative to the recipe folder, as in Kaldi

    def logged(pattern, step_dir):
        values = []
        for x in range(2):
            for line in open(os.path.join(recipe, "exp", step_dir, "log", f"update.{x}.log")):
                if pattern in line:
                    values.append(float(line.split(pattern)[1].split()[0]))
        return values

    for step_dir, pattern in (("diag_ubm", "per frame"), ("full_ubm", "per frame"),
                              ("extractor", "(log-likelihood per frame)")):
        values = logged(pattern, step_dir)
        assert len(values) == 2 and values[1] >= values[0] - 1e-6, (step_dir, values)
    for name in ("train", "test", "sc_train", "sc_test"):
        utts = [row[0] for row in lines(os.path.join(recipe, "data", name, "utt2spk"))]
        ivectors = kaldiio.load_scp(os.path.join(recipe, "exp", f"ivectors_{name}", "ivector.scp"))
        assert sorted(ivectors) == utts
        assert all(ivectors[u].shape == (10,) and np.all(np.isfinite(ivectors[u])) for u in utts)
        spk = kaldiio.load_scp(os.path.join(recipe, "exp", f"ivectors_{name}", "spk_ivector.scp"))
        counts = dict(lines(os.path.join(recipe, "exp", f"ivectors_{name}", "num_utts.ark")))
        assert sorted(spk) == sorted(counts) and sum(int(n) for n in counts.values()) == len(utts)


def results_rows(recipe):
    rows = lines(os.path.join(recipe, "exp", "results.tsv"))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["system", "backend", "trials"], header
    return body


def test_stage5_ivector_baseline(recipe):
    rows = [r for r in results_rows(recipe) if r[0] == "ivector"]
    for test_set in ("test", "sc_test"):
        got = {r[1]: r for r in rows if r[2] == test_set}
        assert set(got) == BACKENDS, (test_set, sorted(got))
        for r in got.values():
            eer, dcf2, dcf3 = map(float, r[3:6])
            assert 0.0 <= eer <= 100.0 and 0.0 <= dcf2 <= 1.0 + 1e-9 and 0.0 <= dcf3 <= 1.0 + 1e-9
        assert os.path.getsize(os.path.join(recipe, "exp", "scores", f"ivector_{test_set}", "det.png")) > 1000


def test_stages6to8_students(recipe, monkeypatch):
    import kaldiio

    monkeypatch.chdir(recipe)
    utts = [row[0] for row in lines(os.path.join(recipe, "data", "test", "utt2spk"))]
    rows = results_rows(recipe)
    for system in ("student_nokd", "student_kd"):
        model_dir = os.path.join(recipe, "exp", system)
        assert os.path.isfile(os.path.join(model_dir, "final.pt"))
        assert int(open(os.path.join(model_dir, "train_seconds")).read()) >= 0
        xvectors = kaldiio.load_scp(os.path.join(model_dir, "xvectors_test", "xvector.scp"))
        assert sorted(xvectors) == utts and all(xvectors[u].shape == (8,) for u in utts)
        assert {r[1] for r in rows if r[0] == system} == BACKENDS
    # The KD run saw the teacher: its log reports the distillation loss; the ablation's does not.
    kd_log = open(os.path.join(recipe, "exp", "student_kd", "log", "train.log")).read()
    nokd_log = open(os.path.join(recipe, "exp", "student_nokd", "log", "train.log")).read()
    assert re.search(r", kd [0-9.]+", kd_log) and not re.search(r", kd [0-9.]+", nokd_log)
    _check_markdown_table(os.path.join(recipe, "exp", "student_table.md"), rows,
                          ["ivector", "student_nokd", "student_kd"], "test", "lda4+plda")


def _check_markdown_table(path, rows, systems, trials, backend):
    """The README table printed by run.sh: a row per system, its cells taken from results.tsv."""
    table = [line.strip("|").split("|") for line in open(path).read().splitlines()]
    header = [cell.strip() for cell in table[0]]
    column = header.index(f"{trials} {backend}")
    assert [r[0].strip() for r in table[2:]] == systems
    for cells in table[2:]:
        want = [r for r in rows if r[0] == cells[0].strip() and r[1] == backend and r[2] == trials][0]
        assert cells[column].strip() == f"{want[3]} / {want[4]}"


TRANSFER_SYSTEMS = ("transfer_ce", "transfer_msce_kl")


def test_stages9to11_transfer(recipe, monkeypatch):
    import json

    import kaldiio
    import numpy as np
    import torch

    monkeypatch.chdir(recipe)
    rows = results_rows(recipe)
    sc_utts = [row[0] for row in lines(os.path.join(recipe, "data", "sc_test", "utt2spk"))]
    test_utts = [row[0] for row in lines(os.path.join(recipe, "data", "test", "utt2spk"))]
    num_sc_speakers = len(lines(os.path.join(recipe, "data", "sc_train", "spk2utt")))
    num_train_speakers = len(lines(os.path.join(recipe, "data", "train", "spk2utt")))
    # LDA below the PLDA speakers: 4 sc_train speakers (transfer_lda_dim 3), 7 train speakers (lda_dim 4)
    sc_backends = {"cosine", "cosine+asnorm", "lda3+plda", "lda3+plda+asnorm"}
    for system in ("source",) + TRANSFER_SYSTEMS:
        model_dir = os.path.join(recipe, "exp", "student_kd" if system == "source" else system)
        for trials in ("sc_test", "test", "test_1s", "test_2s", "test_1s1s", "test_2s2s"):
            got = {r[1]: r for r in rows if r[0] == system and r[2] == trials}
            assert set(got) == (sc_backends if trials == "sc_test" else BACKENDS), (system, trials, sorted(got))
            for r in got.values():
                assert 0.0 <= float(r[3]) <= 100.0 and 0.0 <= float(r[4]) <= 1.0 + 1e-9
        xvectors = kaldiio.load_scp(os.path.join(model_dir, "xvectors_sc_test", "xvector.scp"))
        assert sorted(xvectors) == sc_utts and all(xvectors[u].shape == (8,) for u in sc_utts)
        for crop in ("1s", "2s"):
            cropped = kaldiio.load_scp(os.path.join(model_dir, f"xvectors_test_{crop}", "xvector.scp"))
            assert sorted(cropped) == test_utts
        if system == "source":
            continue
        log = open(os.path.join(model_dir, "log", "train.log")).read()
        assert bool(re.search(r", kl [0-9.]+", log)) == system.endswith("kl"), system  # the KL's progress
        assert re.search(r", msce_replay [0-9.]+", log), system  # replayed train crops in every variant
        # the head: the sc_train speakers, then the replayed data/train speakers, K sub-centres each
        head = torch.load(os.path.join(model_dir, "final.pt"), weights_only=True)["model"]["head.weight"]
        assert head.shape[0] == (num_sc_speakers + num_train_speakers) * (3 if "msce" in system else 1)  # K: the variant's
        desc = json.load(open(os.path.join(model_dir, "model.json")))["transfer"]
        assert desc["replay"]["first_class"] == num_sc_speakers and desc["replay"]["ratio"] == 0.5
        assert desc["short_seconds"] == [0.5, 1.0]
    for trials in ("test_1s", "test_2s2s"):
        _check_markdown_table(os.path.join(recipe, "exp", "transfer_table.md"), rows, ["source", *TRANSFER_SYSTEMS],
                              trials, "lda4+plda")
    # the cropped test side changes the scores, the whole-length enrolment side is shared
    whole = open(os.path.join(recipe, "exp", "scores", "source_test", "cosine", "scores")).read()
    short = open(os.path.join(recipe, "exp", "scores", "source_test_1s", "cosine", "scores")).read()
    assert [r.split()[:2] for r in whole.splitlines()] == [r.split()[:2] for r in short.splitlines()]
    assert whole != short
    # both sides cropped: the same trials, scores of their own; the cropped vectors are test_1s's
    both = open(os.path.join(recipe, "exp", "scores", "source_test_1s1s", "cosine", "scores")).read()
    assert [r.split()[:2] for r in both.splitlines()] == [r.split()[:2] for r in short.splitlines()]
    assert both != short and both != whole
    cropped = kaldiio.load_scp(os.path.join(recipe, "exp", "student_kd", "xvectors_test_1s", "xvector.scp"))
    whole_xv = kaldiio.load_scp(os.path.join(recipe, "exp", "student_kd", "xvectors_test", "xvector.scp"))
    enroll, test_utt = short.splitlines()[0].split()[:2]

    def cosine(a, b, mean):
        a, b = a - mean, b - mean
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    from sidkd.backend.vectors import load_mean

    mean = load_mean(os.path.join(recipe, "exp", "scores", "source_test_1s1s", "cosine", "mean.npz"))
    score_both = float(both.splitlines()[0].split()[2])
    score_short = float(short.splitlines()[0].split()[2])
    assert abs(score_both - cosine(cropped[enroll], cropped[test_utt], mean)) < 1e-4
    assert abs(score_short - cosine(whole_xv[enroll], cropped[test_utt], mean)) < 1e-4


def test_stages6to8_dev_split_seeds_and_crop_targets(recipe, monkeypatch):
    """--dev-split true: the students train on data/train_dev_train and are scored on the held-out
    speakers' trials, the teacher beside them with an LDA of conf/recipe.conf's dev_lda_dim;
    --student-seeds gives <name>_seed<k> and the mean ± std table; a crop-target variant brings the
    crop i-vectors of stage 6."""
    import json

    import yaml

    monkeypatch.chdir(recipe)
    # one variant, two seeds: the no-KD student's dev-split behaviour is the same code (the main run
    # trains student_nokd, and the teacher's log line is checked for both kinds there)
    run_recipe(recipe, "--stage", "6", "--stop-stage", "8", "--dev-split", "true", "--student-seeds", "1 2",
               "--students", "student_kd_crop_lda")
    dev_spk = {row[1] for row in lines(os.path.join(recipe, "data", "train_dev", "utt2spk"))}
    train_spk = {row[1] for row in lines(os.path.join(recipe, "data", "train_dev_train", "utt2spk"))}
    assert len(dev_spk) == 2 and not dev_spk & train_spk and not any(s.startswith("ls") for s in dev_spk)
    assert os.path.isfile(os.path.join(recipe, "exp", "ivectors_train_crops", "crops"))
    rows = results_rows(recipe)
    dev_backends = {"cosine", "cosine+asnorm", "lda3+plda", "lda3+plda+asnorm"}
    assert {r[1] for r in rows if r[0] == "ivector" and r[2] == "train_dev"} == dev_backends
    # the teacher's back-end saw only the speakers the students trained on
    mean_utts = [row[0] for row in lines(os.path.join(recipe, "exp", "ivectors_train_dev_train", "ivector.scp"))]
    assert not {u for u, s in lines(os.path.join(recipe, "data", "train_dev", "utt2spk"))} & set(mean_utts)
    for system in ("student_kd_crop_lda_dev_seed1", "student_kd_crop_lda_dev_seed2"):
        with open(os.path.join(recipe, "exp", system, "model.json")) as handle:
            desc = json.load(handle)
        assert not set(desc["speakers"]) & dev_spk
        assert {r[1] for r in rows if r[0] == system and r[2] == "train_dev"} == dev_backends
        log = open(os.path.join(recipe, "exp", system, "log", "train.log")).read()
        assert "teacher target crop_lda:" in log
        with open(os.path.join(recipe, "exp", system, "config.yaml")) as handle:
            assert yaml.safe_load(handle)["config"]["seed"] == int(system[-1])
    assert desc["kd_target"] == "crop_lda"
    table = open(os.path.join(recipe, "exp", "student_seeds_table_dev.md")).read().splitlines()
    assert [line.split("|")[1:3] for line in table[2:]] == [[" student_kd_crop_lda_dev ", " 1,2 "]]


def test_stage_times_summary_and_epoch_lines_on_the_terminal(recipe):
    rows = lines(os.path.join(recipe, "exp", "stage_times.tsv"))
    assert rows[0] == ["stage", "seconds", "date", "nj", "threads"]
    assert [r[0] for r in rows[1:13]] == [str(n) for n in range(12)]
    assert all(len(r) == 5 and int(r[1]) >= 0 and r[3] == "2" and int(r[4]) >= 1 for r in rows[1:])
    shown = open(os.path.join(recipe, "run.out")).read()
    assert re.search(r"stage wall times: 0:\d+s .* 11:\d+s; total \d+ s", shown)
    # one line per epoch of every training, copied from its log by steps/lib/run_training.sh
    for system in ("student_nokd", "student_kd", "transfer_msce_kl"):
        assert re.search(rf"exp/{system}: epoch 2/2: loss [0-9.]+, .*acc [0-9.]+, [0-9.]+ samples/s, "
                         r"elapsed [0-9.]+ min, ETA [0-9.]+ min", shown), system


def test_unknown_variant_and_bad_boolean_stop_before_any_stage(recipe):
    proc = run_recipe(recipe, "--stage", "6", "--stop-stage", "5", "--students", "student_kd student_nope", check=False)
    assert proc.returncode != 0 and "no variant file conf/student_nope.yaml" in proc.stdout
    proc = run_recipe(recipe, "--stage", "6", "--stop-stage", "5", "--dev-split", "maybe", check=False)
    assert proc.returncode != 0 and "option --dev-split takes true or false" in proc.stdout  # parse_options.sh


def test_without_a_short_corpus_stages_9_to_11_are_skipped_with_a_line(recipe):
    before = open(os.path.join(recipe, "exp", "stage_times.tsv")).read()
    proc = run_recipe(recipe, "--short-corpus", "", "--stage", "9")
    assert proc.returncode == 0 and 'run.sh: --short-corpus "": no short speech, stages 9-11 skipped' in proc.stdout
    assert open(os.path.join(recipe, "exp", "stage_times.tsv")).read() == before  # nothing ran


# Keep last: rerunning stage 0 rebuilds the data dirs (and so drops their features).
def test_rerun_stage0_is_idempotent(recipe):
    before = open(os.path.join(recipe, "data/test/trials")).read()
    run_recipe(recipe, "--stage", "0", "--stop-stage", "0")
    assert open(os.path.join(recipe, "data/test/trials")).read() == before
