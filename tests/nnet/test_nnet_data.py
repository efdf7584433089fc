import numpy as np
import pytest
import torch
from nnet_helpers import make_tiny_data

from sidkd.errors import DataError
from sidkd.nnet.augment import mix_at_snr, reverberate, spec_augment, synthetic_rir
from sidkd.nnet.data import (
    AugmentConfig,
    ChunkBatchDataset,
    SpeakerBalancedBatches,
    TrainingAudio,
    crop_or_repeat,
    load_teacher_vectors,
)
from sidkd.nnet.features import FeatureFrontEnd


def test_speaker_balanced_batches():
    labels = np.repeat(np.arange(6), [1, 5, 5, 2, 8, 3])
    durations = np.arange(1, len(labels) + 1, dtype=float)
    sampler = SpeakerBalancedBatches(labels, durations, batch_size=8, utts_per_speaker=2, num_batches=50, seed=1)
    batches = sampler.epoch(1)
    assert len(batches) == 50
    counts = np.zeros(6)
    for batch in batches:
        assert len(batch) == 8
        spk = labels[batch]
        # 4 distinct speakers, 2 crops each, in speaker order
        assert len(set(spk)) == 4 and all(spk[i] == spk[i + 1] for i in range(0, 8, 2))
        counts += np.bincount(spk, minlength=6)
    assert (counts > 0).all()
    assert sampler.epoch(1) == batches and sampler.epoch(2) != batches
    # power 0: every speaker equally likely, whatever its amount of speech
    flat = SpeakerBalancedBatches(labels, durations, 2, 1, 6000, speaker_weight_power=0.0, seed=0)
    freq = np.bincount(labels[np.array(flat.epoch(0)).ravel()], minlength=6) / 12000
    np.testing.assert_allclose(freq, 1 / 6, atol=0.02)
    with pytest.raises(DataError):
        SpeakerBalancedBatches(labels, durations, 14, 2, 1)  # 7 speakers per batch, 6 exist


def test_crop_or_repeat():
    rng = np.random.default_rng(0)
    x = np.arange(10, dtype=np.int16)
    out = crop_or_repeat(x, 25, rng)
    assert len(out) == 25 and all(out[i + 1] == (out[i] + 1) % 10 for i in range(24))
    out = crop_or_repeat(x, 4, rng)
    assert len(out) == 4 and np.all(np.diff(out) == 1)


def test_mix_at_snr_and_reverb():
    rng = np.random.default_rng(0)
    speech, noise = rng.standard_normal(8000) * 1000, rng.standard_normal(8000) * 7
    mixed = mix_at_snr(speech.astype(np.float32), noise, 12.0)
    residual = mixed - speech
    snr = 10 * np.log10(np.mean(speech**2) / np.mean(residual**2))
    assert abs(snr - 12.0) < 1e-3
    # identity RIR leaves the signal; a real one keeps the power and decays 60 dB over RT60
    x = speech.astype(np.float32)
    np.testing.assert_allclose(reverberate(x, np.array([1.0])), x, rtol=1e-5)
    rir = synthetic_rir(0.5, 16000, rng)
    assert rir[0] == 1.0 and len(rir) == 8000
    wet = reverberate(x, rir)
    assert abs(np.mean(wet.astype(float) ** 2) / np.mean(x.astype(float) ** 2) - 1) < 1e-4
    head, tail = np.mean(rir[1:800] ** 2), np.mean(rir[-800:] ** 2)
    assert 10 * np.log10(head / tail) > 40


def test_spec_augment_masks_bands():
    rng = np.random.default_rng(0)
    feats = np.ones((50, 10), dtype=np.float32)
    out = spec_augment(feats, rng, time_masks=1, max_time_width=8, freq_masks=1, max_freq_width=3)
    zero_rows = np.flatnonzero((out == 0).all(1))
    zero_cols = np.flatnonzero((out == 0).all(0))
    for idx in (zero_rows, zero_cols):
        if len(idx):
            assert np.all(np.diff(idx) == 1)
    assert len(zero_rows) <= 8 and len(zero_cols) <= 3
    assert np.all(out[np.setdiff1d(np.arange(50), zero_rows)][:, np.setdiff1d(np.arange(10), zero_cols)] == 1)


def test_teacher_lookup_and_batches(tmp_path, standin_fbank_backend):
    data, teacher = make_tiny_data(str(tmp_path), missing_teacher=("spk2-u0",))
    audio = TrainingAudio(data)
    assert len(audio.utts) == 12 and audio.speakers == ["spk0", "spk1", "spk2", "spk3"]
    assert audio.samples[0].dtype == np.int16
    vectors, present = load_teacher_vectors(teacher, audio.utts)
    assert present.sum() == 11 and not present[audio.utts.index("spk2-u0")]
    frontend = FeatureFrontEnd({"num_mel_bins": 8})
    batches = [[0, 1, 6, 7], [3, 4, 9, 10]]
    augment = AugmentConfig.from_dict({"babble": {"prob": 1.0, "snr_db": [0, 5], "num_speakers": [3, 6]},
                                      "reverb": {"prob": 1.0, "rt60": [0.2, 0.8]}})
    full = ChunkBatchDataset(audio, frontend, 4800, augment, batches, [0, 1], seed=5, epoch=2, teacher=vectors)
    feats, labels, targets = full[1]
    assert feats.shape == (4, 28, 8) and feats.dtype == torch.float32
    assert labels.tolist() == audio.labels[[3, 4, 9, 10]].tolist()
    np.testing.assert_array_equal(targets.numpy(), vectors[[3, 4, 9, 10]])
    # CMN: every crop has zero-mean features
    np.testing.assert_allclose(feats.mean(1).numpy(), 0, atol=1e-4)
    # a process's slice of a batch is the same crops as in the whole batch
    half = ChunkBatchDataset(audio, frontend, 4800, augment, batches, [0, 1], seed=5, epoch=2,
                             positions=slice(2, 4), teacher=vectors)
    torch.testing.assert_close(half[1][0], feats[2:])
    with pytest.raises(DataError):
        load_teacher_vectors("scp:" + str(tmp_path / "nothing.scp"), audio.utts)


def test_frontend_kinds_dimension_and_cmn(monkeypatch, standin_fbank_backend):
    from nnet_helpers import StandInFbankOptions, standin_fbank

    import sidkd.nnet.features as features

    def standin_mfcc(samples, opts):  # a DCT of the stand-in fbank, first 5 coefficients
        fb = standin_fbank(samples, opts)
        n = fb.shape[1]
        dct = np.cos(np.pi / n * (np.arange(n)[:, None] + 0.5) * np.arange(5)[None, :])
        return (fb @ dct).astype(np.float32)

    monkeypatch.setattr(features, "mfcc_backend", lambda: (StandInFbankOptions, standin_mfcc))
    x = np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 1000
    fb = FeatureFrontEnd({"num_mel_bins": 12}, kind="fbank")
    mf = FeatureFrontEnd({"num_mel_bins": 12}, kind="mfcc", cmn=False)
    assert fb.num_bins == 12 and mf.num_bins == 5
    raw = standin_fbank(x, StandInFbankOptions(num_mel_bins=12))
    np.testing.assert_allclose(fb(x), raw - raw.mean(0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(mf(x), standin_mfcc(x, StandInFbankOptions(num_mel_bins=12)), rtol=1e-6)
    with pytest.raises(ValueError):
        FeatureFrontEnd({}, kind="plp")


def test_random_streams_are_named_distinct_and_unchanged():
    from sidkd.nnet.streams import Stream, batch_rng, epoch_rng, item_rng, sub_seed

    # the numbers are part of every result so far: they stay what they were
    assert {name: int(s) for name, s in Stream.__members__.items()} == {
        "SAMPLER": 1, "CROP": 2, "CONCAT_VIEW": 3, "SOURCE_VIEW": 4, "CROP_LENGTH": 5, "REPLAY_SAMPLER": 6}
    assert len({int(s) for s in Stream.__members__.values()}) == len(Stream.__members__)  # aliases included
    assert epoch_rng(7, 2, Stream.SAMPLER).random() == np.random.default_rng([7, 2, 1]).random()
    assert batch_rng(7, 2, 3, Stream.CROP_LENGTH).random() == np.random.default_rng([7, 2, 3, 5]).random()
    assert item_rng(7, 2, 3, 4, Stream.CROP).random() == np.random.default_rng([7, 2, 3, 4, 2]).random()
    assert sub_seed(7, Stream.REPLAY_SAMPLER) == int(np.random.SeedSequence([7, 6]).generate_state(1)[0])


@pytest.mark.parametrize("budget", [0, 20000])  # all on disk; in memory until the budget, then moved
def test_audio_over_the_memory_budget_is_read_from_disk_with_the_same_batches(tmp_path, standin_fbank_backend,
                                                                              budget, caplog):
    import logging

    from sidkd.nnet.data import DiskSamples

    caplog.set_level(logging.INFO)
    data, _ = make_tiny_data(str(tmp_path))
    memory = TrainingAudio(data)
    disk = TrainingAudio(data, in_memory_bytes=budget)
    assert isinstance(memory.samples, list) and isinstance(disk.samples, DiskSamples)
    assert "on disk (over the" in caplog.text
    assert disk.utts == memory.utts and disk.labels.tolist() == memory.labels.tolist()
    assert disk.lengths.tolist() == [len(x) for x in memory.samples]
    for a, b in zip(memory.samples, (disk.samples[i] for i in range(len(disk.samples))), strict=True):
        assert b.dtype == np.int16
        np.testing.assert_array_equal(a, b)
    frontend = FeatureFrontEnd({"num_mel_bins": 8})
    augment = AugmentConfig.from_dict({"babble": {"prob": 1.0, "snr_db": [0, 5], "num_speakers": [3, 6]},
                                      "reverb": {"prob": 0.5, "rt60": [0.2, 0.8]}})
    batches = [[0, 1, 6, 7], [3, 4, 9, 10]]
    a = ChunkBatchDataset(memory, frontend, 4800, augment, batches, [0, 1], seed=5, epoch=1)
    b = ChunkBatchDataset(disk, frontend, 4800, augment, batches, [0, 1], seed=5, epoch=1)
    for i in range(2):
        torch.testing.assert_close(a[i][0], b[i][0], rtol=0, atol=0)
    mask = np.arange(len(memory.utts)) % 3 != 0
    memory.keep(mask)
    disk.keep(mask)
    assert len(disk.samples) == len(memory.samples) == mask.sum() and disk.lengths.tolist() == memory.lengths.tolist()
    np.testing.assert_array_equal(disk.samples[len(disk.samples) - 1], memory.samples[-1])


def test_a_full_temporary_disk_is_an_error_naming_the_folder_and_what_to_change(tmp_path, monkeypatch):
    """The audio held on disk (DiskSamples) needs the decoded audio's size in $TMPDIR: when it is not
    there, the training stops with the folder and the setting, not with an OSError deep in a loop."""
    import errno

    from sidkd.errors import DataError
    from sidkd.nnet import data as data_module

    data, _ = make_tiny_data(str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(data_module.tempfile, "tempdir", None)  # read TMPDIR again
    written = []

    def pwrite(fd, payload, offset):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(len(payload))
        return len(payload)

    monkeypatch.setattr(data_module.os, "pwrite", pwrite)
    with pytest.raises(DataError, match=f"{tmp_path}: no room for the decoded training audio.*set TMPDIR"):
        TrainingAudio(data, in_memory_bytes=1)
    monkeypatch.setattr(data_module.os, "pwrite", lambda *a: (_ for _ in ()).throw(OSError(errno.EIO, "I/O")))
    with pytest.raises(OSError, match="I/O"):  # another error is not dressed up as a full disk
        TrainingAudio(data, in_memory_bytes=1)
