"""The feature programs end to end on real files: Kaldi-style I/O, skips, pipelines."""

import glob
import os
import subprocess
import sys

import kaldiio
import numpy as np
import soundfile as sf
from test_feat_spectral import assert_close_to_knf, knf_features

from sidkd.feat import (
    FbankOptions,
    MfccOptions,
    SlidingCmvnOptions,
    VadOptions,
    add_deltas,
    apply_cmvn_sliding,
    compute_mfcc,
    compute_vad,
)
from sidkd.io.audio import read_audio
from tests.conftest import CORPORA
from tests.conftest import REPO_ROOT as REPO

CORPORA = CORPORA
PY = sys.executable


def run(args, cwd, check=True, shell=False):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, shell=shell)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def real_files():
    so = sorted(glob.glob(os.path.join(CORPORA, "speechocean762", "0006", "*.opus")))[:3]
    sc = sorted(glob.glob(os.path.join(CORPORA, "speechcommands", "03401e93", "*.flac")))[:3]
    assert len(so) == 3 and len(sc) == 3
    return {f"so-{os.path.basename(f)[:-5]}": f for f in so} | {f"sc-{os.path.basename(f)[:-5]}": f for f in sc}


def test_compute_mfcc_feats_with_reference_conf_matches_knf(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the scp names the ark relative to here, as Kaldi's would
    files = real_files()
    keys = sorted(files)
    # One file through a pipe, as wav.scp allows.
    lines = [f"{k} {files[k]}" if i else f"{k} cat {files[k]} |" for i, k in enumerate(keys)]
    (tmp_path / "wav.scp").write_text("\n".join(lines) + "\n")
    conf = os.path.join(REPO, "conf", "mfcc.conf")
    run([PY, "-m", "sidkd.bin.compute_mfcc_feats", f"--config={conf}", "--dither=0",
         "--write-utt2num-frames", "utt2num_frames", "scp:wav.scp", "ark,scp:feats.ark,feats.scp"], tmp_path)
    feats = kaldiio.load_scp(str(tmp_path / "feats.scp"))
    assert list(feats) == keys
    opts = MfccOptions.from_config(conf, ["--dither=0"])
    frames = {}
    for key in keys:
        x = read_audio(files[key])
        assert_close_to_knf(feats[key], knf_features(x, opts), key)
        frames[key] = feats[key].shape[0]
    assert (tmp_path / "utt2num_frames").read_text() == "".join(f"{k} {frames[k]}\n" for k in keys)


def test_compute_fbank_feats_with_segments(tmp_path):
    files = real_files()
    rec = sorted(k for k in files if k.startswith("so-"))[0]
    (tmp_path / "wav.scp").write_text(f"{rec} {files[rec]}\n")
    (tmp_path / "segments").write_text(f"{rec}-a {rec} 0.00 1.00\n{rec}-b {rec} 0.50 -1\n")
    conf = os.path.join(REPO, "conf", "fbank.conf")
    run([PY, "-m", "sidkd.bin.compute_fbank_feats", f"--config={conf}", "--dither=0", "--segments=segments",
         "scp:wav.scp", "ark:fbank.ark"], tmp_path)
    feats = dict(kaldiio.load_ark(str(tmp_path / "fbank.ark")))
    x = read_audio(files[rec])
    opts = FbankOptions.from_config(conf, ["--dither=0"])
    assert feats[f"{rec}-a"].shape == (100, 80)
    assert_close_to_knf(feats[f"{rec}-a"], knf_features(x[:16000], opts), "segment a")
    assert_close_to_knf(feats[f"{rec}-b"], knf_features(x[8000:], opts), "segment b")


def test_bad_utterances_are_skipped_named_and_counted(tmp_path):
    files = real_files()
    good = sorted(files)[:3]
    sf.write(tmp_path / "short.wav", np.zeros(50, dtype=np.int16), 16000, subtype="PCM_16")
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(tmp_path / "rate8k.wav", np.zeros(8000, dtype=np.int16), 8000, subtype="PCM_16")
    lines = [f"{k} {files[k]}" for k in good] + [
        f"x-empty {tmp_path / 'empty.wav'}", f"x-missing {tmp_path / 'nope.wav'}",
        f"x-rate {tmp_path / 'rate8k.wav'}", f"x-short {tmp_path / 'short.wav'}",
    ]
    (tmp_path / "wav.scp").write_text("\n".join(sorted(lines)) + "\n")
    cmd = [PY, "-m", "sidkd.bin.compute_mfcc_feats", "--snip-edges=false", "scp:wav.scp", "ark,scp:f.ark,f.scp"]
    failed = run(cmd, tmp_path, check=False)
    assert failed.returncode == 1
    assert "4 of 7 utterances skipped" in failed.stderr
    assert not (tmp_path / "f.scp").exists() and not (tmp_path / "f.ark").exists()
    done = run(cmd[:3] + ["--max-fail-fraction=0.6"] + cmd[3:], tmp_path)
    for key in ("x-empty", "x-missing", "x-rate", "x-short"):
        assert f"skipping utterance {key}:" in done.stderr
    assert "7 utterances in, 3 written, 4 skipped" in done.stderr
    assert list(kaldiio.load_scp(str(tmp_path / "f.scp"))) == good


def test_vad_cmvn_deltas_pipeline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files = real_files()
    keys = sorted(files)
    (tmp_path / "wav.scp").write_text("".join(f"{k} {files[k]}\n" for k in keys))
    conf = os.path.join(REPO, "conf")
    run([PY, "-m", "sidkd.bin.compute_mfcc_feats", f"--config={conf}/mfcc.conf", "--dither=0",
         "scp:wav.scp", "ark,scp:feats.ark,feats.scp"], tmp_path)
    vad = run([PY, "-m", "sidkd.bin.compute_vad", f"--config={conf}/vad.conf", "scp:feats.scp",
               "ark,scp:vad.ark,vad.scp"], tmp_path)
    assert "voiced frames:" in vad.stderr
    # One utterance loses its VAD entry: the selection must skip and count it.
    vad_lines = (tmp_path / "vad.scp").read_text().splitlines()
    (tmp_path / "vad_part.scp").write_text("\n".join(vad_lines[1:]) + "\n")
    m = f"{PY} -m sidkd.bin"
    pipeline = (
        f"{m}.add_deltas scp:feats.scp ark:- | "
        f"{m}.apply_cmvn_sliding --norm-vars=false --center=true --cmn-window=300 ark:- ark:- | "
        f"{m}.select_voiced_frames ark:- scp:vad_part.scp ark:out.ark"
    )
    proc = run(pipeline, tmp_path, shell=True)
    assert f"skipping utterance {keys[0]}: no VAD entry" in proc.stderr
    out = dict(kaldiio.load_ark(str(tmp_path / "out.ark")))
    assert sorted(out) == keys[1:]
    mfcc_opts = MfccOptions.from_config(f"{conf}/mfcc.conf", ["--dither=0"])
    vad_opts = VadOptions.from_config(f"{conf}/vad.conf")
    stored = kaldiio.load_scp(str(tmp_path / "feats.scp"))
    stored_vad = kaldiio.load_scp(str(tmp_path / "vad.scp"))
    for key in keys[1:]:
        mfcc = stored[key]
        decision = compute_vad(mfcc, vad_opts)
        assert np.array_equal(stored_vad[key], decision)
        normed = apply_cmvn_sliding(add_deltas(mfcc, 2, 2), SlidingCmvnOptions(300, 100, True, False))
        np.testing.assert_allclose(out[key], normed[decision != 0], atol=1e-5)
        assert out[key].shape[1] == 72
        # The program's MFCCs are the library's (to float32 rounding: the program runs with one BLAS
        # thread, this process with the machine's, and the products round differently).
        np.testing.assert_allclose(mfcc, compute_mfcc(read_audio(files[key]), mfcc_opts), rtol=2e-6, atol=1e-5)
