"""Helpers for the utils/ tests: tiny data directories made in tmp_path, and script runners."""

import os
import subprocess
import sys

import numpy as np
import soundfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UTILS = os.path.join(REPO, "utils")


def script_env(extra=None):
    env = dict(os.environ)
    # The scripts call "python": make it the interpreter running the tests.
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), UTILS, env.get("PATH", "")])
    env["PYTHONPATH"] = REPO
    env["LC_ALL"] = "C"
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra or {})
    return env


def run_script(name, *args, cwd=None, env=None, input=None):
    """Run utils/<name> with args; returns CompletedProcess (text, stdout/stderr captured)."""
    return subprocess.run(
        [os.path.join(UTILS, name), *map(str, args)], cwd=cwd, env=script_env(env),
        capture_output=True, text=True, input=input, timeout=120,
    )


def write(path, lines):
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines()


def make_data_dir(root, speakers=None, rate=16000, with_text=False, with_segments=False):
    """A data dir at root/data with wav files under root/audio.

    speakers: {speaker: number of utterances}; utterance j of speaker s is "s-uJ" and lasts
    0.1 * j seconds. Returns (data_dir, {utt: number of samples}).
    """
    speakers = speakers or {"spkA": 3, "spkB": 2, "spkC": 3}
    data = os.path.join(root, "data")
    audio = os.path.join(root, "audio")
    os.makedirs(data, exist_ok=True)
    os.makedirs(audio, exist_ok=True)
    utt2spk, wav, lengths, segments = [], [], {}, []
    for spk in sorted(speakers):
        for j in range(1, speakers[spk] + 1):
            utt = f"{spk}-u{j}"
            n = int(0.1 * j * rate)
            lengths[utt] = n
            utt2spk.append(f"{utt} {spk}")
            if with_segments:
                segments.append(f"{utt} {spk}-rec {0.1 * (j - 1):.2f} {0.1 * j:.2f}")
            else:
                path = os.path.join(audio, f"{utt}.wav")
                soundfile.write(path, np.zeros(n, dtype=np.int16), rate)
                wav.append(f"{utt} {path}")
        if with_segments:
            path = os.path.join(audio, f"{spk}-rec.wav")
            soundfile.write(path, np.zeros(int(0.1 * speakers[spk] * rate), dtype=np.int16), rate)
            wav.append(f"{spk}-rec {path}")
    write(os.path.join(data, "utt2spk"), utt2spk)
    write(os.path.join(data, "wav.scp"), wav)
    if with_segments:
        write(os.path.join(data, "segments"), segments)
    spk2utt = {}
    for line in utt2spk:
        utt, spk = line.split()
        spk2utt.setdefault(spk, []).append(utt)
    write(os.path.join(data, "spk2utt"), [f"{s} {' '.join(u)}" for s, u in spk2utt.items()])
    if with_text:
        write(os.path.join(data, "text"), [f"{line.split()[0]} HELLO WORLD" for line in utt2spk])
    return data, lengths


