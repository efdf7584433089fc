"""A user's own 8 kHz corpus without a short corpus, by options alone (issue 26): made here from
formant-like signals (4 speakers, each its own pitch and vowel resonances). First stage 1 runs at
the default 16 kHz and must fail saying what to change; then `--sample-rate 8000 --stage 0` reruns
over the failed run's leftovers and goes through stage 8 without anything deleted by hand."""

import json
import os
import subprocess

import numpy as np
import soundfile as sf
import yaml
from scipy.signal import lfilter

from tests.conftest import REPO_ROOT, tool_env
from tests.recipe.test_recipe import tiny_conf
from tests.recipe.tiny_corpus import make_recipe_dir

RATE = 8000
# speaker -> (pitch Hz, formants Hz): four voices far enough apart for a tiny model to tell them apart
VOICES = {"ann": (210, (800, 1200, 2500)), "bob": (110, (500, 1500, 2400)),
          "cat": (250, (350, 2000, 2900)), "dan": (140, (650, 1000, 2200))}


def voiced_clip(pitch, formants, seconds, rng):
    """A pulse train with a wobbling pitch through three resonators, in syllable-like bursts."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    phase = np.cumsum(pitch * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(2, 5) * t)) / RATE)
    source = (np.diff(np.floor(phase), prepend=0) > 0).astype(float)
    signal = source
    r = np.exp(-np.pi * 120 / RATE)  # 120 Hz bandwidths
    for f in formants:
        f = f * rng.uniform(0.97, 1.03)
        signal = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * f / RATE), r * r], signal)
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(1.5, 3) * t + rng.uniform(0, 6)), 0, None) ** 0.5
    signal = signal * envelope
    signal = signal / np.abs(signal).max() * 8000 + rng.standard_normal(n) * 30
    return np.clip(np.rint(signal), -32768, 32767).astype(np.int16)


def make_corpus(root, clips=8):
    rng = np.random.default_rng(8)
    corpus = os.path.join(root, "digits8k")
    rows = []
    for spk, (pitch, formants) in VOICES.items():
        os.makedirs(os.path.join(corpus, spk))
        for k in range(clips):
            sf.write(os.path.join(corpus, spk, f"{k}.wav"), voiced_clip(pitch, formants, rng.uniform(1.0, 1.6), rng),
                     RATE, subtype="PCM_16")
            rows.append(f"{spk}/{k} {spk}\n")
    with open(os.path.join(corpus, "utt2spk"), "w") as handle:
        handle.writelines(rows)
    os.makedirs(os.path.join(root, "splits"))
    for part, spks in (("train", ["ann", "bob"]), ("test", ["cat", "dan"])):
        with open(os.path.join(root, "splits", f"digits8k.{part}.spk"), "w") as handle:
            handle.writelines(s + "\n" for s in spks)


def run(recipe, *args):
    return subprocess.run(["./run.sh", "--nj", "2", "--corpus-root", "../corpora", "--long-corpus", "digits8k",
                           "--extra-train-corpora", "", "--short-corpus", "", "--students", "student_kd", *args],
                          cwd=recipe, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_an_8khz_corpus_by_options_alone_after_a_failed_first_run(tmp_path):
    make_corpus(str(tmp_path / "corpora"))
    conf = tiny_conf()
    # two PLDA speakers: one LDA dimension; AS-norm cohorts of two
    conf["recipe.conf"] = conf["recipe.conf"].replace("lda_dim=4 dev_lda_dim=3", "lda_dim=1 dev_lda_dim=1") \
        .replace("asnorm_top_n=5", "asnorm_top_n=2")
    recipe = make_recipe_dir(REPO_ROOT, str(tmp_path / "egs"), conf)

    first = run(recipe, "--stop-stage", "1")  # the recipe's 16 kHz: every clip is refused
    assert first.returncode != 0
    assert "sample rate 8000 Hz, expected 16000 Hz" in first.stdout
    assert "./run.sh --sample-rate <Hz> --stage 0" in first.stdout  # what to change
    assert "stage 1 failed" in first.stdout and "--stage 1" in first.stdout  # which stage to rerun

    second = run(recipe, "--sample-rate", "8000", "--stage", "0", "--stop-stage", "8")
    assert second.returncode == 0, second.stdout[-6000:]
    conf8k = open(os.path.join(recipe, "exp", "conf_8000", "mfcc.conf")).read().split()
    assert conf8k[-2:] == ["--sample-frequency=8000", "--high-freq=-400"]
    for name in ("train", "test"):
        utts = len(open(os.path.join(recipe, "data", name, "utt2spk")).readlines())
        assert utts == 16 and len(open(os.path.join(recipe, "data", name, "feats.scp")).readlines()) == utts
    model = json.load(open(os.path.join(recipe, "exp", "student_kd", "model.json")))
    assert model["features"]["sample_rate"] == 8000 and model["features"]["fbank"]["high_freq"] == -400
    record = yaml.safe_load(open(os.path.join(recipe, "exp", "student_kd", "config.yaml")))
    assert record["config"]["features"]["sample_rate"] == 8000
    # two training speakers: the teacher target's LDA follows recipe.conf's lda_dim (1), not the yaml's 4
    assert record["config"]["loss"]["kd"]["target"] == "speaker_mean_lda"
    assert record["config"]["loss"]["kd"]["lda"]["dim"] == 1
    table = open(os.path.join(recipe, "exp", "student_table.md")).read()
    assert "ivector" in table and "student_kd" in table
