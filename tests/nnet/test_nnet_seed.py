"""--seed reaches every random stream of a training: the same seed gives the same model, another
seed another initialisation, other batches and crops, and another dither noise."""

import torch
from nnet_helpers import make_tiny_data, tiny_config

import sidkd.nnet.features as features
from sidkd.nnet import checkpoint as ckpt
from sidkd.nnet.trainer import load_config, train


def _train(tmp_path, data, teacher, seed, name):
    conf = tiny_config(seed=seed)
    conf["optim"].update(num_epochs=1, average_last=1)
    path, _ = train(load_config(None, conf), data, str(tmp_path / name), teacher)
    return ckpt.load(path)["model"]


def test_seed_reaches_every_stream(tmp_path, standin_fbank_backend, monkeypatch, caplog):
    data, teacher = make_tiny_data(str(tmp_path))
    dither_seeds = []
    call = features.FeatureFrontEnd.__call__

    def spy(self, samples):
        dither_seeds.append(self.options.get("dither_seed"))
        return call(self, samples)

    monkeypatch.setattr(features.FeatureFrontEnd, "__call__", spy)
    caplog.set_level("INFO")
    a = _train(tmp_path, data, teacher, 11, "a")
    assert set(dither_seeds) == {11} and "seed 11" in caplog.text
    dither_seeds.clear()
    b = _train(tmp_path, data, teacher, 11, "b")
    c = _train(tmp_path, data, teacher, 12, "c")
    assert 12 in dither_seeds
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert not torch.equal(a["embedder.embedding.weight"], c["embedder.embedding.weight"])


def test_seed_changes_batches_and_crops(tmp_path, standin_fbank_backend):
    import numpy as np

    from sidkd.nnet.data import AugmentConfig, ChunkBatchDataset, SpeakerBalancedBatches, TrainingAudio
    from sidkd.nnet.features import FeatureFrontEnd

    data, _ = make_tiny_data(str(tmp_path))
    audio = TrainingAudio(data)
    durations = np.array([len(s) for s in audio.samples], dtype=float)
    batches = {seed: SpeakerBalancedBatches(audio.labels, durations, 4, 2, 6, 1.0, seed).epoch(0) for seed in (1, 2)}
    assert batches[1] != batches[2]
    frontend = FeatureFrontEnd({"num_mel_bins": 8})
    crops = [ChunkBatchDataset(audio, frontend, 4800, AugmentConfig(), [[0, 1]], [0], seed, 0)[0][0] for seed in (1, 2, 1)]
    assert not torch.equal(crops[0], crops[1]) and torch.equal(crops[0], crops[2])
