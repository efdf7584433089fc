"""A user's own 8 kHz corpus by options alone (issues 26, 36): README's "Your own corpus" block, run
as written on a made-up folder of wavs of the same layout (six speakers with the Free Spoken Digit
Dataset's names, each its own pitch and vowel resonances; four train, two test), with the
recipe's own conf/ (no file edited, no variant yaml). First without --sample-rate: stage 1 fails and
says what to add; a --student-set value out of range is refused before stage 0; then the block as
written from `--stage 1` (the stage the hint names) goes through stage 8, with the sizes the data
cannot give fitted, logged and recorded."""

import json
import os
import re
import shlex
import subprocess

import numpy as np
import soundfile as sf
import yaml
from scipy.signal import lfilter

from tests.conftest import REPO_ROOT, tool_env
from tests.recipe.tiny_corpus import make_recipe_dir

RATE = 8000
# speaker -> (pitch Hz, formants Hz): voices far enough apart for a tiny model to tell them apart
VOICES = {"george": (210, (800, 1200, 2500)), "jackson": (110, (500, 1500, 2400)),
          "lucas": (250, (350, 2000, 2900)), "nicolas": (140, (650, 1000, 2200)),
          "theo": (180, (450, 1800, 2600)), "yweweler": (125, (700, 1100, 2300))}
CLIPS = 8
# teacher and student made small for a test, laid over the README's command (later options win)
SMALL = ["--ivector-num-gauss", "8", "--ivector-dim", "10", "--ubm-num-iters", "1", "--ivector-num-iters", "1",
         "--student-set", "optim.num_epochs=1 optim.average_last=1"]


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


def make_recordings(folder):
    """A flat folder of <digit>_<speaker>_<n>.wav, as the Free Spoken Digit Dataset's recordings/."""
    rng = np.random.default_rng(8)
    os.makedirs(folder)
    for spk, (pitch, formants) in VOICES.items():
        for k in range(CLIPS):
            sf.write(os.path.join(folder, f"{k % 10}_{spk}_{k}.wav"),
                     voiced_clip(pitch, formants, rng.uniform(1.0, 1.6), rng), RATE, subtype="PCM_16")


def readme_block():
    """The shell block under README's own-corpus-example marker: (the lines that make the corpus
    folder, the words of its ./run.sh command)."""
    text = open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8").read()
    after = text.split("<!-- own-corpus-example:", 1)[1]
    block = after.split("```sh\n", 1)[1].split("```", 1)[0]
    setup, command = block.split("./run.sh", 1)
    return setup, ["./run.sh", *shlex.split(command.replace("\\\n", " "))]


def test_readme_own_corpus_example_runs_by_options_alone(tmp_path):
    recipe = make_recipe_dir(REPO_ROOT, str(tmp_path / "egs"))  # conf/: the repo's files, as they are
    make_recordings(str(tmp_path / "recordings"))
    setup, command = readme_block()
    setup = re.sub(r"^W=\S+", f"W={tmp_path / 'recordings'}", setup, count=1, flags=re.M)
    made = subprocess.run(["bash", "-euo", "pipefail", "-c", setup], cwd=recipe, env=tool_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert made.returncode == 0, made.stdout
    root = os.path.join(recipe, "corpora")
    assert len(open(os.path.join(root, "fsdd", "utt2spk")).readlines()) == len(VOICES) * CLIPS
    command = [root if word == "$R" else word for word in command]
    assert "--sample-rate" in command and "--corpus-root" in command

    def run(*words):
        return subprocess.run(list(words), cwd=recipe, env=tool_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)

    # the rate forgotten: every clip is refused at stage 1, and the hints name the stage that works
    i = command.index("--sample-rate")
    first = run(*command[:i], *command[i + 2:], "--stop-stage", "1")
    assert first.returncode != 0
    assert "sample rate 8000 Hz, expected 16000 Hz" in first.stdout
    assert "./run.sh --sample-rate <Hz> --stage 1" in first.stdout  # make_mfcc.sh: what to add
    assert "stage 1 failed" in first.stdout and "./run.sh --stage 1" in first.stdout  # run.sh: where from
    assert (tmp_path / "egs" / "data" / "train" / "utt2num_frames").read_text() == ""  # the failed run's

    # a setting out of range stops before any stage, naming key, value and what is allowed
    refused = run(*command, "--stage", "1", "--student-set", "optim.num_epochs=-1")
    assert refused.returncode != 0
    assert "optim.num_epochs=-1 (from --set): not allowed; set it to a whole number >= 1" in refused.stdout
    assert "back to its files before stage 1" not in refused.stdout  # stage 1 never started
    assert (tmp_path / "egs" / "data" / "train" / "utt2num_frames").read_text() == ""

    second = run(*command, *SMALL, "--stage", "1")
    assert second.returncode == 0, second.stdout[-8000:]
    out = second.stdout
    assert "lower ivector_num_gauss (./run.sh --ivector-num-gauss" in out  # 8 Gaussians: still too many frames short
    assert "lda_dim 150 -> 3: the data has 4 speakers" in out  # four training speakers: fitted once, logged
    conf8k = open(os.path.join(recipe, "exp", "conf_8000", "mfcc.conf")).read().split()
    assert conf8k[-2:] == ["--sample-frequency=8000", "--high-freq=-400"]
    for name, speakers in (("train", 4), ("test", 2)):
        utts = len(open(os.path.join(recipe, "data", name, "utt2spk")).readlines())
        assert utts == speakers * CLIPS and len(open(os.path.join(recipe, "data", name, "feats.scp")).readlines()) == utts
    model = json.load(open(os.path.join(recipe, "exp", "student_kd", "model.json")))
    assert model["features"]["sample_rate"] == 8000 and model["features"]["fbank"]["high_freq"] == -400
    record = yaml.safe_load(open(os.path.join(recipe, "exp", "student_kd", "config.yaml")))
    config = record["config"]
    assert config["features"]["sample_rate"] == 8000
    # the teacher target's LDA: below the 4 training speakers, as the back-end's
    assert config["loss"]["kd"]["target"] == "speaker_mean_lda" and config["loss"]["kd"]["lda"]["dim"] == 3
    # a batch of 4 speakers (all there are) x 32 crops keeps conf/student.yaml's 128
    assert config["data"]["batch_size"] == 128 and config["data"]["utts_per_speaker"] == 32
    assert config["data"]["batch_size"] // config["data"]["utts_per_speaker"] == 4
    assert any("the data has 4: data.utts_per_speaker 2 -> 32" in note for note in record["run"]["sizes"])
    table = open(os.path.join(recipe, "exp", "student_table.md")).read()
    assert "ivector" in table and "student_kd" in table and "lda3+plda" in table
