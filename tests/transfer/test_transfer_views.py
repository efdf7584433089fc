"""The transfer's long views as a registry, their batches draw for draw against an independent
transcription of the scheme (sidkd.nnet.streams), and the transfer's dither seed."""

import json
import shutil

import numpy as np
import pytest

import sidkd.nnet.features as features
from sidkd.errors import DataError
from sidkd.nnet.data import AugmentConfig, ChunkBatchDataset
from sidkd.nnet.transfer import transfer
from sidkd.nnet.transfer_data import (
    LONG_VIEWS,
    LongView,
    concatenated_view,
    long_view_for,
    plan_batches,
    utterance_view,
)
from tests.transfer.test_transfer import transfer_config
from tests.transfer.test_transfer_data import (
    DATA_CONF,
    LONG_LENGTHS,
    TARGET_LENGTHS,
    StubAudio,
    identity_frontend,
    make_dataset,
)


def test_the_long_views_are_a_registry_of_classes():
    # name: (needs the long-speech data, needs replay, posteriors through the source head)
    expected = {"concat": (False, False, False), "source": (True, False, True), "utterance": (True, True, False),
                "concat+utterance": (True, True, False)}
    assert list(LONG_VIEWS) == list(expected)
    for name, flags in expected.items():
        view = long_view_for(name)
        assert view.name == name and isinstance(view, LONG_VIEWS[name])
        assert (view.needs_long_data, view.needs_replay, view.uses_source_head) == flags, name
    plain = long_view_for(None)  # no KL term
    assert type(plain) is LongView and plain.name is None and not plain.needs_long_data
    with pytest.raises(DataError, match="loss.kl.long_view 'concat\\+source': set it to one of: concat, source, "
                                        "utterance, concat\\+utterance"):
        long_view_for("concat+source")


def reference_item(target, long, crop, view, seed, epoch, batch_id, batch, positions, replayed, replay_positions,
                   teacher, teacher_mask, augment, long_samples, source_probs):
    """One batch as the transfer draws it, written out from the documented scheme: generators seeded
    with (seed, epoch, batch[, position], stream), streams 2 crop + augmentation (+ the utterance view
    of a replayed crop, whose position follows the target part), 3 concat view, 4 source pair, 5 the
    crop length of the batch."""
    rng_of = np.random.default_rng
    target_data = ChunkBatchDataset(target, identity_frontend, crop[1], augment, [], [], seed, epoch)
    long_data = ChunkBatchDataset(long, identity_frontend, crop[1], augment, [], [], seed, 0)
    lo, hi = crop
    length = lo if lo == hi else int(rng_of([seed, epoch, batch_id, 5]).integers(lo, hi + 1))
    mine = list(range(len(batch)))[positions]
    shorts, labels, longs, kl_index = [], [], [], []
    for j in mine:
        utt = batch[j]
        shorts.append(target_data.crop_features(utt, rng_of([seed, epoch, batch_id, j, 2]), length))
        labels.append(int(target.labels[utt]))
    if view in ("concat", "concat+utterance"):
        for k, j in enumerate(mine):
            utt = batch[j]
            rng = rng_of([seed, epoch, batch_id, j, 3])
            same = np.flatnonzero(target.labels == target.labels[utt])
            x, _ = concatenated_view(target.samples, same, utt, long_samples, rng)
            longs.append(target_data.augmented_features(x, rng, utt))
            kl_index.append(k)
    num_target = len(shorts)
    if replayed is not None:
        for j in list(range(len(replayed)))[replay_positions]:
            utt = replayed[j]
            rng = rng_of([seed, epoch, batch_id, len(batch) + j, 2])
            if view in ("utterance", "concat+utterance"):
                x, y, _, _ = utterance_view(long.samples[utt], length, long_samples, rng)
                shorts.append(long_data.augmented_features(x, rng, utt))
                longs.append(long_data.augmented_features(y, rng, utt))
                kl_index.append(len(shorts) - 1)
            else:
                shorts.append(long_data.crop_features(utt, rng, length))
            labels.append(len(target.speakers) + int(long.labels[utt]))
    item = {"short": np.stack(shorts), "labels": np.array(labels), "long": None, "kl_index": None, "kl_short": None}
    utts = [batch[j] for j in mine]
    extra = len(shorts) - num_target
    item["teacher"] = np.concatenate([teacher[utts], np.zeros((extra, teacher.shape[1]), np.float32)])
    item["teacher_mask"] = np.concatenate([teacher_mask[utts], np.zeros(extra, dtype=bool)])
    if longs:
        item["long"] = np.stack(longs)
        if kl_index != list(range(len(shorts))):
            item["kl_index"] = np.array(kl_index)
    if view == "source":
        pairs_long, pairs_short = [], []
        for j in mine:
            rng = rng_of([seed, epoch, batch_id, j, 4])
            utt = int(rng.choice(len(source_probs), p=source_probs))
            samples = long.samples[utt]
            if len(samples) < long_samples:
                samples = np.tile(samples, -(-long_samples // len(samples)))
            first = int(rng.integers(0, len(samples) - long_samples + 1))
            x = samples[first:first + long_samples].astype(np.float32)
            start = int(rng.integers(0, long_samples - length + 1))
            pairs_short.append(long_data.augmented_features(x[start:start + length], rng, utt))
            pairs_long.append(long_data.augmented_features(x, rng, utt))
        item["long"], item["kl_short"] = np.stack(pairs_long), np.stack(pairs_short)
    return item


@pytest.mark.parametrize("view", [None, "concat", "source", "utterance", "concat+utterance"])
def test_batches_draw_for_draw(view):
    target, long = StubAudio(TARGET_LENGTHS), StubAudio(LONG_LENGTHS, first_utt=20)
    teacher = np.arange(12 * 3, dtype=np.float32).reshape(12, 3) + 1
    mask = np.ones(12, dtype=bool)
    mask[5] = False
    probs = np.array([len(s) for s in long.samples], dtype=np.float64)
    probs /= probs.sum()
    augment = AugmentConfig(reverb_prob=0.5, rt60=(0.2, 0.8), babble_prob=0.5, snr_db=(13.0, 20.0),
                            babble_speakers=(1, 2))
    crop, epoch = (8000, 16000), 2
    for ratio in (0.0, 0.5):
        if LONG_VIEWS.get(view, LongView).needs_replay and ratio == 0:
            continue
        for world in (1, 2):
            plan = plan_batches(target, long if ratio else None, DATA_CONF, ratio, crop, world, 11)
            chosen, replayed = plan.epoch(epoch)
            for rank in range(world):
                positions, replay_positions = plan.positions(rank, world)
                dataset = make_dataset(plan, target, long, crop, view, epoch, rank, world, teacher=teacher,
                                       teacher_mask=mask, augment=augment, source_probs=probs)
                for i in range(3):
                    got = dataset[i]
                    want = reference_item(target, long, crop, view, 11, epoch, i, chosen[i], positions,
                                          None if replayed is None else replayed[i], replay_positions, teacher,
                                          mask, augment, 32000, probs)
                    assert got.keys() == want.keys()
                    for key, value in want.items():
                        if value is None:
                            assert got[key] is None, (key, ratio, world, rank, i)
                        else:
                            assert np.array_equal(got[key].numpy(), value), (key, ratio, world, rank, i)


def test_the_transfer_dither_follows_the_seed(source, tmp_path, monkeypatch):
    """The fbank dither of the transfer's crops is drawn from the transfer's seed, as the student's."""
    source_dir, data, teacher = source
    dithered = tmp_path / "source"  # the source model with the recipe's dither on
    dithered.mkdir()
    shutil.copy(f"{source_dir}/final.pt", dithered / "final.pt")
    desc = json.load(open(f"{source_dir}/model.json"))
    desc["features"]["fbank"]["dither"] = 1.0
    (dithered / "model.json").write_text(json.dumps(desc))
    calls = []
    call = features.FeatureFrontEnd.__call__

    def spy(self, samples):
        out = call(self, samples)
        calls.append((self.options.get("dither_seed"), np.array(samples), out))
        return out

    monkeypatch.setattr(features.FeatureFrontEnd, "__call__", spy)
    for seed in (5, 6):
        calls.clear()
        config = transfer_config(seed=seed)
        config["optim"].update(num_epochs=1, average_last=1)
        transfer(config, str(dithered), data, str(tmp_path / f"seed{seed}"), teacher_rspec=teacher)
        assert calls and {s for s, _, _ in calls} == {seed}
        for _, samples, out in calls[:5]:
            want = features.FeatureFrontEnd({"num_mel_bins": 8, "dither": 1.0, "dither_seed": seed})(samples)
            other = features.FeatureFrontEnd({"num_mel_bins": 8, "dither": 1.0, "dither_seed": seed + 1})(samples)
            assert np.array_equal(out, want) and not np.array_equal(out, other)
