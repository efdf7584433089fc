"""What verify and sidkd-embed refuse to score (issue 35), with both engines: too little speech
(silence, a tone, clips of 3 ms, 0.05 s and 0.3 s), broken or wrong files (truncated, text, empty,
8 kHz, stereo), and anything made by another network than the model dir's current final.pt (a stale
ONNX export, enrolment or calibration). Voiced seconds are recomputed here independently:
kaldi-native-fbank's c0 and the VAD rule of conf/vad.conf written out."""

import glob
import os
import re
import shutil

import kaldi_native_fbank as knf
import numpy as np
import pytest
import soundfile as sf
import torch
from tiny_student import read_as_int16_scale

from sidkd.errors import DataError
from tests.conftest import CORPORA, REPO_ROOT

RATE = 16000
ENGINES = ("torch", "onnxruntime")


def vad_conf():
    text = open(os.path.join(REPO_ROOT, "conf", "vad.conf")).read()
    value = {k: float(v) for k, v in re.findall(r"--vad-energy-(threshold|mean-scale)=([0-9.]+)", text)}
    return value["threshold"], value["mean-scale"]


def reference_voiced_seconds(samples):
    """kaldi-native-fbank's raw log energy (MFCC c0, 25/10 ms frames centred, no dither), voiced
    where it exceeds threshold + scale * mean (Kaldi's compute-vad with no context)."""
    opts = knf.MfccOptions()
    opts.frame_opts.samp_freq, opts.frame_opts.dither, opts.frame_opts.snip_edges = RATE, 0.0, False
    opts.mel_opts.num_bins, opts.use_energy, opts.raw_energy = 30, True, True
    computer = knf.OnlineMfcc(opts)
    computer.accept_waveform(RATE, np.asarray(samples, dtype=np.float32).tolist())
    computer.input_finished()
    c0 = np.array([computer.get_frame(i)[0] for i in range(computer.num_frames_ready)], dtype=np.float64)
    if c0.size == 0:
        return 0.0
    threshold, scale = vad_conf()
    return float(np.sum(c0 > threshold + scale * c0.mean())) * 0.01


def speech():
    """A read sentence (speechocean762), 16 kHz, on the 16-bit scale."""
    from sidkd.io.audio import read_audio

    path = sorted(glob.glob(os.path.join(CORPORA, "speechocean762", "*", "*.opus")))[0]
    return read_audio(path)


def write_wav(path, samples, rate=RATE):
    sf.write(str(path), np.clip(np.rint(samples), -32768, 32767).astype(np.int16), rate, subtype="PCM_16")
    return str(path)


@pytest.fixture(scope="module")
def model(trained_student, tmp_path_factory):
    """A copy of the tiny student with its ONNX export, a threshold and an enrolled speaker alice."""
    from sidkd.bin import export_student, verify

    root, new = trained_student
    work = tmp_path_factory.mktemp("gate")
    model_dir = work / "student"
    shutil.copytree(root / "exp" / "student_kd", model_dir,
                    ignore=shutil.ignore_patterns("speakers", "verify.npz", "*.onnx*", "xvectors*", "checkpoints"))
    assert export_student.main(["--format", "onnx", "--model-dir", str(model_dir),
                                "--out", str(model_dir / "embedder.onnx")]) == 0
    (work / "trials").write_text("a b target\na c nontarget\nb c nontarget\nc d target\n")
    (work / "scores").write_text("a b 0.6\na c 0.1\nb c 0.3\nc d 0.5\n")
    assert verify.main(["calibrate", "--model", str(model_dir), "--trials", str(work / "trials"),
                        "--scores", str(work / "scores"), "--mean", "none", "--eer"]) == 0
    enrol = [write_wav(work / f"alice{i}.wav", read_as_int16_scale(f)) for i, f in enumerate(new["alice"][:2])]
    assert verify.main(["enroll", "--model", str(model_dir), "--name", "alice", *enrol]) == 0
    good = write_wav(work / "good.wav", read_as_int16_scale(new["alice"][2]))
    return work, model_dir, good


@pytest.fixture(scope="module")
def bad_inputs(model):
    """name -> (file, the refusal's message as a regex): one per case of the issue."""
    work = model[0] / "bad"
    work.mkdir()
    x = speech()
    middle = len(x) // 2
    t = np.arange(RATE) / RATE
    cases = {}
    cases["silence"] = (write_wav(work / "silence.wav", np.zeros(RATE)),
                        r"0\.00 s of voiced speech in 1\.000 s of audio, below the minimum 0\.15 s \(--min-speech\)")
    cases["tone"] = (write_wav(work / "tone.wav", 8000 * np.sin(2 * np.pi * 440 * t)),
                     r"a constant signal, not speech: the energy of its 1\.00 s of voiced frames varies by 0\.00 dB, "
                     r"below 1 dB")
    clip3 = x[middle:middle + 48]
    assert reference_voiced_seconds(clip3) == 0.0
    cases["3ms"] = (write_wav(work / "clip3ms.wav", clip3), r"0\.00 s of voiced speech in 0\.003 s of audio")
    clip50 = x[middle:middle + 800]
    voiced50 = reference_voiced_seconds(clip50)
    assert voiced50 < 0.15
    cases["50ms"] = (write_wav(work / "clip50ms.wav", clip50),
                     rf"{voiced50:.2f} s of voiced speech in 0\.050 s of audio, below the minimum 0\.15 s")
    whole = write_wav(work / "whole.wav", x)
    (work / "truncated.wav").write_bytes(open(whole, "rb").read()[:100])
    cases["truncated"] = (str(work / "truncated.wav"),
                          rf"truncated: the header promises {len(x)} sample frames, the file holds 28")
    (work / "text.wav").write_text("this is not audio\n")
    cases["text"] = (str(work / "text.wav"), r"cannot decode audio")
    (work / "empty.wav").write_bytes(b"")
    cases["empty"] = (str(work / "empty.wav"), r"file is empty \(0 bytes\)")
    cases["8khz"] = (write_wav(work / "rate8k.wav", x[::2], 8000), r"sample rate 8000 Hz, expected 16000 Hz")
    cases["stereo"] = (str(work / "stereo.wav"), r"2 channels, expected mono: choose one with --channel N")
    sf.write(cases["stereo"][0], np.stack([x, x[::-1]], axis=1).astype(np.int16), RATE, subtype="PCM_16")
    return cases


def run_verify(capsys, *argv):
    from sidkd.bin import verify

    capsys.readouterr()
    status = verify.main(list(argv))
    out = capsys.readouterr()
    return status, out.out.splitlines(), out.err


def test_the_gate_measures_voiced_speech_as_the_independent_reference(model):
    """measure_speech against kaldi-native-fbank + the written-out rule, on real speech cut to several
    lengths (a mutation of the framing, the energy or the VAD rule changes the seconds)."""
    from sidkd.feat.gate import measure_speech
    from sidkd.feat.spectral import MfccOptions
    from sidkd.feat.vad import VadOptions

    frames = MfccOptions.from_config(os.path.join(REPO_ROOT, "conf", "mfcc.conf"))
    vad = VadOptions.from_config(os.path.join(REPO_ROOT, "conf", "vad.conf"))
    x = speech()
    for start, length in ((0, len(x)), (len(x) // 3, 4800), (len(x) // 2, 16000), (1000, 800)):
        clip = x[start:start + length]
        measure = measure_speech(clip, frames, vad)
        assert measure.voiced_seconds == pytest.approx(reference_voiced_seconds(clip), abs=1e-9)
        assert measure.seconds == pytest.approx(len(clip) / RATE)
    assert measure_speech(x, frames, vad).energy_range_db > 10  # speech rises and falls


@pytest.mark.parametrize("engine", ENGINES)
def test_verify_refuses_every_bad_input_and_scores_the_rest(model, bad_inputs, engine, capsys):
    work, model_dir, good = model
    files = [good] + [path for path, _ in bad_inputs.values()]
    status, lines, log = run_verify(capsys, "--model", str(model_dir), "--engine", engine, "--name", "alice", *files)
    assert status == 1
    assert len(lines) == len(files)
    name, path, score, decision = lines[0].split()
    assert (name, path, decision in ("accept", "reject")) == ("alice", good, True) and -1 <= float(score) <= 1
    for line, (case, (path, message)) in zip(lines[1:], bad_inputs.items()):
        assert line == f"alice {path} - refused", case  # never a score, never "accept"
        assert re.search(re.escape(path) + r": .*" + message, log), case
    assert f"{len(bad_inputs)} of {len(files)} recordings refused" in log


@pytest.mark.parametrize("engine", ENGINES)
def test_enroll_stores_nothing_when_any_recording_is_refused(model, bad_inputs, engine):
    from sidkd.bin import verify

    work, model_dir, good = model
    for case, (path, message) in bad_inputs.items():
        with pytest.raises(DataError, match=r"nothing enrolled: 1 of 2 recordings cannot be used; .*" + message):
            verify.main(["enroll", "--model", str(model_dir), "--engine", engine, "--name", "carol", good, path])
        assert not (model_dir / "speakers" / "carol.npz").exists(), case


@pytest.mark.parametrize("engine", ENGINES)
def test_sidkd_embed_skips_each_bad_input_and_exits_1(model, bad_inputs, engine, tmp_path, capsys):
    import kaldiio

    from sidkd.bin import embed

    work, model_dir, good = model
    files = [good] + [path for path, _ in bad_inputs.values()]
    out = tmp_path / "emb"
    status = embed.main(["--model", str(model_dir), "--engine", engine, "--output", f"ark,scp:{out}.ark,{out}.scp",
                         *files])
    log = capsys.readouterr().err
    assert status == 1
    assert list(kaldiio.load_scp(f"{out}.scp")) == [good]
    for case, (path, message) in bad_inputs.items():
        assert re.search(r"skipping " + re.escape(path) + r": .*" + message, log), case
    assert f"{len(bad_inputs)} of {len(files)} recordings skipped" in log
    # all good: exit 0
    assert embed.main(["--model", str(model_dir), "--engine", engine, "--output", f"ark,scp:{out}2.ark,{out}2.scp",
                       good]) == 0


def test_both_engines_take_the_same_decision_on_every_case(model, bad_inputs, capsys):
    work, model_dir, good = model
    files = [good] + [path for path, _ in bad_inputs.values()] + [good]
    lines = {}
    for engine in ENGINES:
        status, lines[engine], _ = run_verify(capsys, "--model", str(model_dir), "--engine", engine, "--name", "alice",
                                           *files)
        assert status == 1
    for a, b in zip(lines["torch"], lines["onnxruntime"], strict=True):
        a, b = a.split(), b.split()
        assert a[:2] == b[:2] and a[3] == b[3]
        if a[2] != "-":
            assert float(a[2]) == pytest.approx(float(b[2]), abs=1e-4)


def test_a_stereo_file_is_scored_with_channel_and_a_short_clip_by_min_speech(model, bad_inputs, capsys):
    work, model_dir, good = model
    status, lines, _ = run_verify(capsys, "--model", str(model_dir), "--channel", "0", "--name", "alice",
                               bad_inputs["stereo"][0])
    assert status == 0 and lines[0].split()[3] in ("accept", "reject")
    # 0.3 s of speech: enough voiced frames for the default minimum, not for --min-speech 0.5
    x = speech()
    clip = x[len(x) // 2:len(x) // 2 + 4800]
    voiced = reference_voiced_seconds(clip)
    assert 0.15 <= voiced < 0.5
    path = write_wav(work / "clip300ms.wav", clip)
    status, lines, _ = run_verify(capsys, "--model", str(model_dir), "--name", "alice", path)
    assert status == 0 and lines[0].split()[3] in ("accept", "reject")
    status, lines, log = run_verify(capsys, "--model", str(model_dir), "--name", "alice", "--min-speech", "0.5", path)
    assert status == 1 and lines == [f"alice {path} - refused"]
    assert f"{voiced:.2f} s of voiced speech in 0.300 s of audio, below the minimum 0.5 s" in log


def test_stale_onnx_enrolment_and_threshold_after_retraining(model, tmp_path, capsys):
    """A new final.pt beside the old embedder.onnx, speakers/ and verify.npz: the ONNX engine refuses
    to run (re-export), the torch engine refuses the old enrolment and threshold; sidkd-embed with
    onnxruntime refuses too. Re-exported, onnxruntime and torch agree again."""
    from sidkd.bin import embed, export_student, verify

    work, model_dir, good = model
    other = tmp_path / "retrained"
    shutil.copytree(model_dir, other)
    state = torch.load(other / "final.pt", weights_only=True)
    name = next(k for k in state["model"] if k.endswith("embedding.weight"))
    state["model"][name] = state["model"][name] + 0.01
    torch.save(state, other / "final.pt")
    reexport = rf"re-export: python -m sidkd\.bin\.export_student --format onnx --model-dir {re.escape(str(other))}"
    for argv in (["--name", "alice", good], ["enroll", "--name", "bob", good]):
        with pytest.raises(DataError, match=r"embedder\.onnx was exported from another network than the current "
                                            r".*final\.pt \(retrained since\): " + reexport):
            verify.main([*argv[:1], "--model", str(other), "--engine", "onnxruntime", *argv[1:]]
                        if argv[0] == "enroll" else ["--model", str(other), "--engine", "onnxruntime", *argv])
    with pytest.raises(DataError, match="exported from another network"):
        verify.main(["calibrate", "--model", str(other), "--engine", "onnxruntime", "--trials", str(work / "trials"),
                     "--scores", str(work / "scores"), "--mean", "none"])
    with pytest.raises(DataError, match="exported from another network"):
        embed.main(["--model", str(other), "--engine", "onnxruntime", good])
    with pytest.raises(DataError, match="alice.npz was enrolled with another network"):
        verify.main(["--model", str(other), "--engine", "torch", "--name", "alice", good])
    assert export_student.main(["--format", "onnx", "--model-dir", str(other), "--out", str(other / "embedder.onnx")]) == 0
    with pytest.raises(DataError, match="alice.npz was enrolled with another network"):
        verify.main(["--model", str(other), "--engine", "onnxruntime", "--name", "alice", good])
    assert verify.main(["enroll", "--model", str(other), "--engine", "onnxruntime", "--name", "alice", good]) == 0
    with pytest.raises(DataError, match="verify.npz was calibrated for another network"):
        verify.main(["--model", str(other), "--engine", "torch", "--name", "alice", good])


def test_a_retraining_with_overwrite_removes_what_the_old_network_made(model, trained_student, tmp_path, caplog):
    """A real retraining (another seed) over a model dir with an ONNX export, a threshold, a speaker
    and embeddings: all are removed and the log says so; the engines then say what to redo."""
    from sidkd.bin import verify
    from sidkd.nnet.config import load_config
    from sidkd.nnet.trainer import train
    from tiny_student import TINY_YAML

    work, model_dir, good = model
    root, _ = trained_student
    other = tmp_path / "student"
    shutil.copytree(model_dir, other)
    (other / "xvectors_test").mkdir()
    (other / "log").mkdir(exist_ok=True)
    (other / "log" / "keep.log").write_text("kept\n")
    config = load_config(TINY_YAML, {"loss": {"kd": {"weight": 0.0}}, "seed": 4,
                                     "optim": {"num_epochs": 1, "average_last": 1}})
    train(config, str(root / "data" / "train"), str(other), overwrite=True)
    assert (other / "final.pt").exists() and (other / "log" / "keep.log").exists()
    for gone in ("embedder.onnx", "embedder.onnx.json", "verify.npz", "speakers", "xvectors_test"):
        assert not (other / gone).exists(), gone
    assert ("removed what the old network made: embedder.onnx, embedder.onnx.json, speakers, verify.npz, "
            "xvectors_test") in caplog.text
    with pytest.raises(DataError, match=r"embedder\.onnx: no such file \(export it"):
        verify.main(["--model", str(other), "--engine", "onnxruntime", "--name", "alice", good])
    with pytest.raises(DataError, match=r"verify\.npz: no such file; run 'python -m sidkd\.bin\.verify calibrate'"):
        verify.main(["--model", str(other), "--name", "alice", good])


def test_an_installed_copy_without_the_recipe_conf_gates_with_kaldi_defaults(model, bad_inputs, capsys):
    """--vad-config '' --mfcc-config '' (what an installed sidkd without the recipe's conf/ gets): Kaldi's
    default VAD (threshold 5.0) and framing, said in the log; silence is still refused, speech scored."""
    work, model_dir, good = model
    status, lines, log = run_verify(capsys, "--model", str(model_dir), "--name", "alice", "--vad-config", "",
                                    "--mfcc-config", "", good, bad_inputs["silence"][0])
    assert status == 1 and lines[1] == f"alice {bad_inputs['silence'][0]} - refused"
    assert lines[0].split()[3] in ("accept", "reject")
    assert "speech gate: Kaldi's default VAD options and framing" in log
    with pytest.raises(DataError, match=r"nope.conf: no such file \(the speech gate's VAD options"):
        run_verify(capsys, "--model", str(model_dir), "--name", "alice", "--vad-config", "nope.conf", good)
