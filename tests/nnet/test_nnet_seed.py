"""--seed reaches every random stream of a training: the same seed gives the same model, another
seed another initialisation, other batches and crops, and another dither noise."""

import numpy as np
import torch
from nnet_helpers import make_tiny_data, tiny_config

import sidkd.nnet.data as data_module
import sidkd.nnet.features as features
from sidkd.nnet import checkpoint as ckpt
from sidkd.nnet.config import load_config
from sidkd.nnet.trainer import train


def _train(tmp_path, data, teacher, seed, name):
    conf = tiny_config(seed=seed)
    conf["optim"].update(num_epochs=1, average_last=1)
    conf["features"]["fbank"]["dither"] = 1.0  # the stand-in adds dither noise seeded with dither_seed
    path, _ = train(load_config(None, conf), data, str(tmp_path / name), teacher)
    return ckpt.load(path)["model"]


def _dithered(seed, samples):
    return features.FeatureFrontEnd({"num_mel_bins": 8, "dither": 1.0, "dither_seed": seed})(samples)


def test_seed_reaches_every_stream(tmp_path, standin_fbank_backend, monkeypatch, caplog):
    data, teacher = make_tiny_data(str(tmp_path))
    frontend_calls, sampler_batches = [], []
    call = features.FeatureFrontEnd.__call__
    epoch = data_module.SpeakerBalancedBatches.epoch

    def frontend_spy(self, samples):
        out = call(self, samples)
        frontend_calls.append((self.options.get("dither_seed"), np.array(samples), out))
        return out

    def sampler_spy(self, number):
        batches = epoch(self, number)
        sampler_batches.append(batches)
        return batches

    monkeypatch.setattr(features.FeatureFrontEnd, "__call__", frontend_spy)
    monkeypatch.setattr(data_module.SpeakerBalancedBatches, "epoch", sampler_spy)
    caplog.set_level("INFO")
    runs = {}
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        frontend_calls.clear()
        sampler_batches.clear()
        model = _train(tmp_path, data, teacher, seed, name)
        runs[name] = (model, list(sampler_batches), list(frontend_calls))
        assert {s for s, _, _ in frontend_calls} == {seed}
        # the features the training computed are those of the seed's dither noise, not of another
        for _, samples, out in frontend_calls[:5]:
            np.testing.assert_array_equal(out, _dithered(seed, samples))
            assert not np.array_equal(out, _dithered(seed + 1, samples))
    assert "seed 11" in caplog.text
    (a, batches_a, _), (b, batches_b, _), (c, batches_c, _) = runs["a"], runs["b"], runs["c"]
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert not torch.equal(a["embedder.embedding.weight"], c["embedder.embedding.weight"])
    # the batches (speakers, utterances) follow the seed too
    assert batches_a and batches_a == batches_b and batches_a != batches_c


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
