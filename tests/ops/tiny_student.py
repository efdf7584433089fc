"""A tiny trained student in a recipe-like folder, from a few speechcommands speakers, for the
verify and export tests: data/train and data/test (with all-pairs trials), exp/student_kd trained
a few steps with tests/nnet/student_tiny.yaml, and real recordings of speakers in neither."""

import glob
import itertools
import os

import numpy as np
import soundfile as sf

from tests.conftest import CORPORA, REPO_ROOT

TINY_YAML = os.path.join(REPO_ROOT, "tests", "nnet", "student_tiny.yaml")


def speaker_files(count, per_speaker):
    """(speaker, [flac files]) of the first ``count`` speechcommands speakers with enough files."""
    root = os.path.join(CORPORA, "speechcommands")
    out = []
    for spk in sorted(os.listdir(root)):
        files = sorted(glob.glob(os.path.join(root, spk, "*.flac")))
        if len(files) >= per_speaker:
            out.append((spk, files[:per_speaker]))
        if len(out) == count:
            return out
    raise AssertionError(f"{root}: fewer than {count} speakers with {per_speaker} recordings")


def write_data_dir(path, speakers):
    os.makedirs(path)
    utts = sorted((f"{spk}-{os.path.basename(f)[:-5]}", spk, f) for spk, files in speakers for f in files)
    with open(os.path.join(path, "wav.scp"), "w") as handle:
        handle.writelines(f"{u} {f}\n" for u, _, f in utts)
    with open(os.path.join(path, "utt2spk"), "w") as handle:
        handle.writelines(f"{u} {s}\n" for u, s, _ in utts)
    with open(os.path.join(path, "spk2utt"), "w") as handle:
        for spk, _ in sorted(speakers):
            handle.write(spk + " " + " ".join(u for u, s, _ in utts if s == spk) + "\n")
    return [(u, s) for u, s, _ in utts]


def read_as_int16_scale(path):
    """Samples as the toolkit reads them (16-bit integer scale, float32), decoded here with soundfile."""
    samples, rate = sf.read(path, dtype="float64")
    assert rate == 16000
    return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype(np.float32)


def copy_as_wav(src, dst):
    samples, rate = sf.read(src, dtype="int16")
    sf.write(dst, samples, rate, subtype="PCM_16")


def make_student_recipe(root):
    """Train the tiny student in ``root`` (a recipe folder); returns the new-speaker recordings."""
    from sidkd.nnet.config import load_config
    from sidkd.nnet.trainer import train

    for item in ("steps", "utils", "conf"):
        os.symlink(os.path.join(REPO_ROOT, item), os.path.join(root, item))
    speakers = speaker_files(8, 4)
    write_data_dir(os.path.join(root, "data", "train"), speakers[:3])
    test_utts = write_data_dir(os.path.join(root, "data", "test"), [(s, f[:3]) for s, f in speakers[3:6]])
    with open(os.path.join(root, "data", "test", "trials"), "w") as handle:
        for (u1, s1), (u2, s2) in itertools.combinations(test_utts, 2):
            handle.write(f"{u1} {u2} {'target' if s1 == s2 else 'nontarget'}\n")
    config = load_config(TINY_YAML, {"loss": {"kd": {"weight": 0.0}}})
    train(config, os.path.join(root, "data", "train"), os.path.join(root, "exp", "student_kd"))
    return {"alice": speakers[6][1], "bob": speakers[7][1]}
