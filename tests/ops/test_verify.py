"""Enrol/verify on recordings in no data dir (sidkd.bin.verify), with a tiny trained student: the
README example of docs/verify.md runs as written, and the printed scores, thresholds and decisions
equal this test's own computation (library embeddings + the cosine formula written out here)."""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from tiny_student import copy_as_wav, read_as_int16_scale

from sidkd.errors import DataError
from tests.conftest import REPO_ROOT, tool_env

MODEL = "exp/student_kd"
SCORING = "exp/scores/student_kd_test/cosine"


@pytest.fixture(scope="module")
def recipe(trained_student):
    from sidkd.bin import compute_mean_vector, extract_embeddings, score_cosine

    root, new = trained_student
    # the recipe's stages 7-8 for this model: embeddings, training mean, cosine scores of the trials
    for name in ("train", "test"):
        xv = root / MODEL / f"xvectors_{name}"
        assert extract_embeddings.main([str(root / MODEL), str(root / "data" / name),
                                        f"ark,scp:{xv}.ark,{xv}.scp"]) == 0
    scoring = root / SCORING
    scoring.mkdir(parents=True)
    assert compute_mean_vector.main([f"scp:{root / MODEL}/xvectors_train.scp", str(scoring / "mean.npz")]) == 0
    test_scp = f"scp:{root / MODEL}/xvectors_test.scp"
    assert score_cosine.main([f"--mean={scoring / 'mean.npz'}", test_scp, test_scp, str(root / "data/test/trials"),
                              str(scoring / "scores")]) == 0
    # recordings of two speakers in neither data dir, as wav files of their own
    for i, src in enumerate(new["alice"][:3]):
        copy_as_wav(src, str(root / ("test.wav" if i == 2 else f"alice{i + 1}.wav")))
    copy_as_wav(new["bob"][0], str(root / "other.wav"))
    return root


def docs_example():
    """The marked example of docs/verify.md, which README.md repeats word for word."""
    blocks = []
    for name in ("docs/verify.md", "README.md"):
        text = open(os.path.join(REPO_ROOT, name)).read()
        match = re.search(r"<!-- verify-example[^>]*-->\n```sh\n(.*?)```", text, re.S)
        assert match, f"{name} has no marked verify example block"
        blocks.append(match.group(1))
    assert blocks[0] == blocks[1], "README.md's verify example differs from docs/verify.md's"
    return blocks[0]


def library_embedding(root, wav):
    from sidkd.nnet.embed import embed_utterance
    from sidkd.nnet.embed import load_embedder
    from sidkd.nnet.features import frontend_from_config

    embedder, desc = load_embedder(str(root / MODEL))
    return embed_utterance(embedder, frontend_from_config(desc["features"]), read_as_int16_scale(str(root / wav)))


def cosine_score(enrol, test, mean):
    """Written out: unit((x - m)/|x - m| averaged over the enrolment) . (y - m)/|y - m|."""
    units = [(x - mean) / np.linalg.norm(x - mean) for x in enrol]
    model = np.mean(units, axis=0)
    model /= np.linalg.norm(model)
    return float(model @ ((test - mean) / np.linalg.norm(test - mean)))


def dev_scores(root):
    labels = {tuple(line.split()[:2]): line.split()[2] == "target" for line in open(root / "data/test/trials")}
    rows = [line.split() for line in open(root / SCORING / "scores")]
    target = np.array([float(s) for e, t, s in rows if labels[(e, t)]])
    nontarget = np.array([float(s) for e, t, s in rows if not labels[(e, t)]])
    return target, nontarget


def brute_force_thresholds(target, nontarget, fa):
    """By enumeration over the distinct scores: the first threshold where P_miss >= P_fa (EER
    point), and the lowest one with P_fa <= fa."""
    candidates = sorted(set(target) | set(nontarget))
    p_miss = [np.mean(target < c) for c in candidates]
    p_fa = [np.mean(nontarget >= c) for c in candidates]
    eer_threshold = next(c for c, m, f in zip(candidates, p_miss, p_fa) if m >= f)
    fa_threshold = next(c for c, f in zip(candidates, p_fa) if f <= fa)
    return eer_threshold, fa_threshold


def test_docs_example_runs_as_written_and_scores_match(recipe):
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", docs_example()], cwd=recipe, env=tool_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    name, wav, score, decision = proc.stdout.split()
    assert (name, wav) == ("alice", "test.wav")
    mean = np.load(recipe / SCORING / "mean.npz")["mean"]
    enrol = [library_embedding(recipe, w) for w in ("alice1.wav", "alice2.wav")]
    expected = cosine_score(enrol, library_embedding(recipe, "test.wav"), mean)
    assert float(score) == pytest.approx(expected, abs=1e-6)
    eer_threshold, _ = brute_force_thresholds(*dev_scores(recipe), 0.1)
    assert decision == ("accept" if float(score) >= eer_threshold else "reject")
    stored = np.load(recipe / MODEL / "verify.npz")
    assert f"threshold {eer_threshold:.6g} (eer)" in proc.stderr
    assert stored["mean"].tolist() == mean.tolist()
    speaker = np.load(recipe / MODEL / "speakers" / "alice.npz")
    np.testing.assert_allclose(speaker["embeddings"], np.stack(enrol), rtol=0, atol=1e-6)


def test_target_fa_threshold_and_several_recordings(recipe, capsys):
    from sidkd.bin import verify

    assert verify.main(["enroll", "--model", str(recipe / MODEL), "--name", "alice",
                        str(recipe / "alice1.wav"), str(recipe / "alice2.wav")]) == 0
    calibrate = ["calibrate", "--model", str(recipe / MODEL), "--trials", str(recipe / "data/test/trials"),
                 "--scores", str(recipe / SCORING / "scores")]
    assert verify.main([*calibrate, "--eer"]) == 0  # the bare flag works too
    assert json.loads(str(np.load(recipe / MODEL / "verify.npz")["header"]))["criterion"] == "eer"
    assert verify.main([*calibrate, "--target-fa", "0.1"]) == 0
    target, nontarget = dev_scores(recipe)
    _, fa_threshold = brute_force_thresholds(target, nontarget, 0.1)
    header = json.loads(str(np.load(recipe / MODEL / "verify.npz")["header"]))
    assert header["threshold"] == fa_threshold and header["criterion"] == "fa=0.1"
    assert header["dev_p_fa"] == np.mean(nontarget >= fa_threshold) <= 0.1
    capsys.readouterr()
    files = [str(recipe / "test.wav"), str(recipe / "other.wav")]
    assert verify.main(["test", "--model", str(recipe / MODEL), "--name", "alice", *files]) == 0
    lines = capsys.readouterr().out.splitlines()
    mean = np.load(recipe / SCORING / "mean.npz")["mean"]
    enrol = [library_embedding(recipe, w) for w in ("alice1.wav", "alice2.wav")]
    for line, wav in zip(lines, ("test.wav", "other.wav")):
        name, path, score, decision = line.split()
        expected = cosine_score(enrol, library_embedding(recipe, wav), mean)
        assert name == "alice" and path == str(recipe / wav) and float(score) == pytest.approx(expected, abs=1e-6)
        assert decision == ("accept" if float(score) >= fa_threshold else "reject")
    assert len(lines) == 2


def test_refuses_unknown_speaker_and_models_of_another_network(recipe, tmp_path, capsys):
    from sidkd.bin import verify

    with pytest.raises(DataError, match="speakers/nobody.npz: no such file; enrol nobody first"):
        verify.main(["--model", str(recipe / MODEL), "--name", "nobody", str(recipe / "test.wav")])
    with pytest.raises(DataError, match="no_such.wav: no such file"):
        verify.main(["enroll", "--model", str(recipe / MODEL), "--name", "carol", str(recipe / "no_such.wav")])
    assert not (recipe / MODEL / "speakers" / "carol.npz").exists()
    # audio at another rate than the model's: an error naming the model, never features at the wrong rate
    import soundfile as sf

    samples, _ = sf.read(str(recipe / "test.wav"), dtype="int16")
    sf.write(str(tmp_path / "test8k.wav"), samples[::2], 8000, subtype="PCM_16")
    capsys.readouterr()
    assert verify.main(["--model", str(recipe / MODEL), "--name", "alice", str(tmp_path / "test8k.wav")]) == 1
    out = capsys.readouterr()
    assert out.out == f"alice {tmp_path / 'test8k.wav'} - refused\n"
    assert re.search(r"sample rate 8000 Hz, expected 16000 Hz, set by the model .*student_kd \(trained at that rate",
                     out.err)
    with pytest.raises(DataError, match="speaker name"):
        verify.main(["enroll", "--model", str(recipe / MODEL), "--name", "../x", str(recipe / "test.wav")])
    assert verify.main(["enroll", "--model", str(recipe / MODEL), "--name", "alice", str(recipe / "alice1.wav")]) == 0
    # the same speaker and threshold files beside a retrained (here: perturbed) network
    other = tmp_path / "student_b"
    shutil.copytree(recipe / MODEL, other, ignore=shutil.ignore_patterns("checkpoints", "xvectors*"))
    state = torch.load(other / "final.pt", weights_only=True)
    name = next(k for k in state["model"] if k.endswith("embedding.weight"))
    state["model"][name] = state["model"][name] + 0.01
    torch.save(state, other / "final.pt")
    assert (other / "speakers" / "alice.npz").exists()
    with pytest.raises(DataError, match="enrolled with another network"):
        verify.main(["--model", str(other), "--name", "alice", str(recipe / "test.wav")])


def test_either_engine_gives_the_same_decisions_and_the_installed_entry_points_run(recipe, capsys, tmp_path):
    """verify --engine onnxruntime on the exported embedder against the torch network: same scores to
    1e-4, same decisions, speakers enrolled with one engine valid for the other; sidkd-verify and
    sidkd-embed (pyproject's [project.scripts]) as a user without the recipe calls them."""
    import sys

    import kaldiio

    from sidkd.bin import export_student, verify

    model = str(recipe / MODEL)
    assert export_student.main(["--format", "onnx", "--model-dir", model, "--out", f"{model}/embedder.onnx"]) == 0
    assert verify.main(["enroll", "--model", model, "--name", "alice", str(recipe / "alice1.wav"),
                        str(recipe / "alice2.wav")]) == 0
    assert verify.main(["calibrate", "--model", model, "--trials", str(recipe / "data/test/trials"),
                        "--scores", str(recipe / SCORING / "scores"), "--eer"]) == 0
    files = [str(recipe / w) for w in ("test.wav", "other.wav", "alice2.wav")]
    outputs = {}
    for engine in ("torch", "onnxruntime"):
        capsys.readouterr()
        assert verify.main(["--model", model, "--engine", engine, "--name", "alice", *files]) == 0
        outputs[engine] = [line.split() for line in capsys.readouterr().out.splitlines()]
    for a, b in zip(outputs["torch"], outputs["onnxruntime"], strict=True):
        assert a[:2] == b[:2] and a[3] == b[3] and float(a[2]) == pytest.approx(float(b[2]), abs=1e-4)
    assert {line[3] for line in outputs["torch"]} == {"accept", "reject"}  # both decisions are compared

    bindir = os.path.dirname(sys.executable)
    scripts = {name: os.path.join(bindir, name) for name in ("sidkd-verify", "sidkd-embed")}
    for path in scripts.values():
        assert os.access(path, os.X_OK), f"{path}: not installed; run utils/setup_env.sh (pip install -e .)"
    proc = subprocess.run([scripts["sidkd-verify"], "--model", model, "--engine", "onnxruntime", "--name", "alice",
                           *files], capture_output=True, text=True, env=tool_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [line.split() for line in proc.stdout.splitlines()] == outputs["onnxruntime"]
    # sidkd-embed: files in, Kaldi text vectors out; a wav.scp in, an ark,scp out (onnxruntime)
    proc = subprocess.run([scripts["sidkd-embed"], "--model", model, *files], capture_output=True, text=True,
                          env=tool_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = {}
    for line in proc.stdout.splitlines():  # Kaldi text vectors: "key  [ v1 v2 ... ]"
        key, values = line.split(None, 1)
        assert values.startswith("[") and values.rstrip().endswith("]"), line
        text[key] = np.array(values.strip()[1:-1].split(), dtype=np.float64)
    assert list(text) == files
    for path in files:
        np.testing.assert_allclose(text[path], library_embedding(recipe, os.path.basename(path)), rtol=1e-5, atol=1e-6)
    (tmp_path / "wav.scp").write_text("".join(f"u{i} {path}\n" for i, path in enumerate(files)))
    proc = subprocess.run([scripts["sidkd-embed"], "--model", model, "--engine", "onnxruntime", "--wav-scp",
                           "wav.scp", "--output", f"ark,scp:{tmp_path}/emb.ark,{tmp_path}/emb.scp"], capture_output=True, text=True,
                          env=tool_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    stored = kaldiio.load_scp(str(tmp_path / "emb.scp"))
    for i, path in enumerate(files):
        np.testing.assert_allclose(stored[f"u{i}"], text[path], rtol=1e-4, atol=1e-4)
    # audio at another rate than the model's: exit 1 with the reason, no vector
    import soundfile as sf

    samples, _ = sf.read(files[0], dtype="int16")
    sf.write(str(tmp_path / "x8k.wav"), samples[::2], 8000, subtype="PCM_16")
    proc = subprocess.run([scripts["sidkd-embed"], "--model", model, "x8k.wav"], capture_output=True, text=True,
                          env=tool_env(), cwd=tmp_path)
    assert proc.returncode == 1 and "sample rate 8000 Hz, expected 16000 Hz, set by the model" in proc.stderr
    assert proc.stdout == ""
