"""TorchScript export of the student with its front end: the torch filterbank against
sidkd.feat.compute_fbank (numpy), and the exported file's embeddings against the eager model's
(sidkd.nnet.embed.embed_utterance with the numpy front end) on real recordings."""

import glob
import hashlib
import json
import os

import numpy as np
import pytest
import torch
from tiny_student import read_as_int16_scale

from sidkd.feat import FbankOptions, compute_fbank
from sidkd.nnet.export import TorchFbank
from tests.conftest import CORPORA

OPTION_SETS = [
    {"dither": 0.0},  # Kaldi's defaults: 23 bins, snip edges, povey window
    {"dither": 0.0, "num_mel_bins": 40, "snip_edges": False, "high_freq": 7600.0},
    {"dither": 0.0, "num_mel_bins": 20, "use_energy": True, "window_type": "hamming", "preemphasis_coefficient": 0.0},
    {"dither": 0.0, "num_mel_bins": 10, "snip_edges": False, "use_energy": True, "raw_energy": False,
     "use_power": False, "remove_dc_offset": False, "energy_floor": 1.0},
]


def real_recordings(count):
    files = sorted(glob.glob(os.path.join(CORPORA, "speechcommands", "*", "*.flac")))[:count]
    assert len(files) == count
    return [read_as_int16_scale(f) for f in files]


@pytest.mark.parametrize("options", OPTION_SETS)
def test_torch_fbank_equals_numpy_fbank(options):
    rng = np.random.default_rng(5)
    signals = real_recordings(2) + [
        rng.standard_normal(300).astype(np.float32) * 1000,  # shorter than a frame: mirrored edges
        rng.standard_normal(4001).astype(np.float32) * 30,
    ]
    opts = FbankOptions(**options)
    fbank = TorchFbank(opts)
    for x in signals:
        want = compute_fbank(x, opts)
        got = fbank(torch.from_numpy(x)).numpy()
        assert got.shape == want.shape and got.dtype == np.float32
        assert_fbank_close(got, want, opts.use_energy)


def assert_fbank_close(got, want, use_energy):
    """float32 FFTs of two libraries: the energies agree to float32 rounding relative to the
    frame's largest band; log values tightly where a band holds >= 1e-3 of that (in the near-silent
    bands below, float32 cancellation moves the log by more, as against Kaldi itself)."""
    if use_energy:
        np.testing.assert_allclose(got[:, 0], want[:, 0], rtol=1e-5, atol=2e-4)
        got, want = got[:, 1:], want[:, 1:]
    linear_got, linear_want = np.exp(got.astype(np.float64)), np.exp(want.astype(np.float64))
    frame_max = linear_want.max(axis=1, keepdims=True)
    assert np.all(np.abs(linear_got - linear_want) <= 1e-5 * frame_max)
    strong = linear_want >= 1e-3 * frame_max
    np.testing.assert_allclose(got[strong], want[strong], rtol=1e-5, atol=2e-4)


def test_exported_embeddings_equal_eager_model(trained_student, tmp_path):
    from sidkd.bin import export_student
    from sidkd.nnet.embed import embed_utterance
    from sidkd.nnet.embed import load_embedder
    from sidkd.nnet.features import frontend_from_config

    root, new = trained_student
    model_dir = root / "exp" / "student_kd"
    out = tmp_path / "student.ts"
    assert export_student.main(["--model-dir", str(model_dir), "--out", str(out), "--chunk-seconds", "0.4"]) == 0
    extra = {"model.json": ""}
    scripted = torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra["model.json"])["format"] == "sidkd-student"
    embedder, desc = load_embedder(str(model_dir))
    features = dict(desc["features"], fbank={**desc["features"]["fbank"], "dither": 0.0})
    frontend = frontend_from_config(features)
    waves = [read_as_int16_scale(f) for f in new["bob"][:3]]
    waves.append(waves[0][:4000])  # 0.25 s: repeated up to 0.5 s
    for x in waves:  # 1 s recordings: three 0.33-s segments each
        want = embed_utterance(embedder, frontend, x, chunk_seconds=0.4)
        with torch.no_grad():
            got = scripted(torch.from_numpy(x)).numpy()
        assert got.shape == want.shape == (8,)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    # the recipe's extraction (the model's dither 1.0) differs only by the dither's effect
    dithered = embed_utterance(embedder, frontend_from_config(desc["features"]), waves[-1], chunk_seconds=0.4)
    assert float(dithered @ got / np.linalg.norm(dithered) / np.linalg.norm(got)) > 0.99


def test_onnx_embedder_equals_torch_on_real_clips_of_several_lengths(trained_student):
    """export_student --format onnx, run by onnxruntime (sidkd.nnet.engines) against the torch network,
    both behind the same front end: 1-s words, ~4-s sentences, long read speech, whole and in chunks."""
    import onnx

    from sidkd.bin import export_student
    from sidkd.nnet.embed import embed_utterance
    from sidkd.nnet.engines import engine_digest, load_engine
    from sidkd.nnet.features import frontend_from_config

    root, _ = trained_student
    model_dir = root / "exp" / "student_kd"
    out = model_dir / "embedder.onnx"
    assert export_student.main(["--format", "onnx", "--model-dir", str(model_dir), "--out", str(out)]) == 0
    graph = onnx.load(str(out))
    assert max(op.version for op in graph.opset_import if op.domain in ("", "ai.onnx")) >= 17
    info = json.loads((model_dir / "embedder.onnx.json").read_text())
    frontend = frontend_from_config(info["model"]["features"])
    (dims,) = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.graph.input]
    assert dims == ["batch", "frames", frontend.num_bins]  # batch and time dynamic
    torch_engine, onnx_engine = load_engine("torch", str(model_dir)), load_engine("onnxruntime", str(model_dir))
    assert info["model"] == torch_engine.desc and onnx_engine.network_digest == torch_engine.network_digest
    # what calibration reads without loading a network: the sha256 of final.pt, whichever engine
    assert engine_digest("onnxruntime", str(model_dir)) == engine_digest("torch", str(model_dir)) \
        == hashlib.sha256((model_dir / "final.pt").read_bytes()).hexdigest()
    long_read = max(sorted(glob.glob(os.path.join(CORPORA, "librispeech_subset", "*", "*.opus")))[:6],
                    key=os.path.getsize)
    clips = (sorted(glob.glob(os.path.join(CORPORA, "speechcommands", "*", "*.flac")))[:2]
             + sorted(glob.glob(os.path.join(CORPORA, "speechocean762", "*", "*.opus")))[:2] + [long_read])
    seconds, embeddings = set(), []
    for clip in clips:
        x = read_as_int16_scale(clip)
        seconds.add(round(len(x) / 16000))
        for chunk in (10.0, 1.5):  # the recipe's chunks, and equal segments of <= 1.5 s (a batch of several)
            want = embed_utterance(torch_engine, frontend, x, chunk_seconds=chunk)
            got = embed_utterance(onnx_engine, frontend, x, chunk_seconds=chunk)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
            embeddings += [got] if chunk == 10.0 else []
    assert len(seconds) >= 3 and max(seconds) > 10, seconds
    assert min(np.abs(a - b).max() for i, a in enumerate(embeddings) for b in embeddings[:i]) > 1e-3  # clips differ
