"""The transfer's data recipe: replayed long-speech crops, the same-utterance long view, crop lengths
drawn from a range; through the batches the training sees, then through transfer() itself."""

import json
import os

import numpy as np
import pytest
import torch

from sidkd.errors import DataError
from sidkd.nnet import checkpoint as ckpt
from sidkd.nnet.data import AugmentConfig, ChunkBatchDataset
from sidkd.nnet.losses import AAMSoftmax
from sidkd.nnet.transfer import init_replay_classes, transfer
from sidkd.nnet.transfer_data import (
    TransferBatchDataset,
    TransferInputs,
    batch_crop_samples,
    crop_range,
    long_view_for,
    plan_batches,
    utterance_view,
)
from tests.transfer.test_transfer import transfer_config

# Sample t of utterance u holds u·BASE + t (exact in float32 below 2^24): every sample of a batch
# names the utterance and the position it came from.
BASE = 100_000  # utterances up to 100,000 samples, ids up to 160


class StubAudio:
    """What the batches read of a TrainingAudio: samples, lengths, labels, speakers, utts, sample_rate."""

    def __init__(self, lengths_per_speaker, first_utt=0, prefix="s"):
        self.samples, labels, self.utts = [], [], []
        u = first_utt
        for spk, lengths in enumerate(lengths_per_speaker):
            for n in lengths:
                self.samples.append(np.arange(n, dtype=np.int64) + u * BASE)
                labels.append(spk)
                self.utts.append(f"{prefix}{spk}-{u}")
                u += 1
        self.labels = np.array(labels, dtype=np.int64)
        self.lengths = np.array([len(x) for x in self.samples], dtype=np.int64)
        self.speakers = [f"{prefix}{s}" for s in range(len(lengths_per_speaker))]
        self.sample_rate = 16000


def identity_frontend(x):
    return x[:, None].astype(np.float64)  # (T, 1): the samples themselves, float64 keeps them exact


def decode(values):
    """(utterance ids, positions) of a 1-D run of encoded samples."""
    values = np.rint(np.asarray(values, dtype=np.float64)).astype(np.int64)
    return values // BASE, values % BASE


# target domain: 4 speakers x 3 clips of about 0.5 s; long speech: 3 speakers x 3 utterances of 0.6-2.5 s
TARGET_LENGTHS = [[8000, 7000, 9000]] * 4
LONG_LENGTHS = [[10000, 40000, 24000], [30000, 12000, 20000], [16000, 35000, 9600]]
DATA_CONF = {"batch_size": 8, "utts_per_speaker": 2, "speaker_weight_power": 1.0, "chunks_per_epoch": 40,
             "num_workers": 0}


def make_dataset(plan, target, long, crop, long_view, epoch, rank=0, world=1, long_samples=32000, teacher=None,
                 teacher_mask=None, augment=None, source_probs=None):
    chosen, replayed = plan.epoch(epoch)
    positions, replay_positions = plan.positions(rank, world)
    augment = augment or AugmentConfig()
    long_data = ChunkBatchDataset(long, identity_frontend, crop[1], augment, [], [], 11, 0)
    inputs = TransferInputs(target, identity_frontend, crop, augment, 11, long_view=long_view_for(long_view),
                            long_samples=long_samples, long_data=long_data, source_probs=source_probs,
                            teacher=teacher, teacher_mask=teacher_mask, label_offset=len(target.speakers))
    return TransferBatchDataset(inputs, epoch, chosen, positions, replayed, replay_positions)


def test_utterance_view_is_the_utterance_around_the_crop():
    rng = np.random.default_rng(4)
    short_len, long_len = 1600, 6400
    for n in (20000, 6400, 9000, 3000, 1000):  # longer than the window, equal, shorter, shorter than the crop
        samples = np.arange(n, dtype=np.int64) + 7 * BASE
        for _ in range(30):
            short, long, s, w = utterance_view(samples, short_len, long_len, rng)
            assert short.dtype == np.float32 and len(short) == short_len and len(long) == long_len
            tiled = np.tile(samples, -(-max(short_len, long_len) // n))
            assert np.array_equal(short, tiled[s:s + short_len])  # the crop is of this utterance ...
            if n >= long_len:  # ... and the long view is the window of it that holds the crop
                assert 0 <= w <= s and s + short_len <= w + long_len <= n
                assert np.array_equal(long, samples[w:w + long_len])
            else:  # ... or the whole utterance, repeated from its start
                assert w == 0 and np.array_equal(long, tiled[:long_len])
                if n >= short_len:
                    assert s + short_len <= n  # a real piece, not across a seam
    # the crop start is uniform over the utterance, the edges included (not only window middles)
    starts = [utterance_view(np.arange(20000), short_len, long_len, rng)[2] for _ in range(2000)]
    assert min(starts) < 1000 and max(starts) > 20000 - short_len - 1000


def test_crop_lengths_stay_in_their_range():
    assert crop_range(1.0, 16000) == (16000, 16000)
    assert crop_range([0.5, 2], 16000) == (8000, 32000)
    for bad in ([2.0, 0.5], [0, 1], "1", [1.0], [0.5, 1, 2], True, [None, 1]):
        with pytest.raises(DataError, match="short_seconds"):
            crop_range(bad, 16000)
    lo, hi = 8000, 32000
    lengths = [batch_crop_samples((lo, hi), 3, e, b) for e in range(1, 4) for b in range(200)]
    assert all(lo <= n <= hi for n in lengths)
    assert min(lengths) < lo + 2000 and max(lengths) > hi - 2000 and len(set(lengths)) > 100  # spread over it
    assert lengths == [batch_crop_samples((lo, hi), 3, e, b) for e in range(1, 4) for b in range(200)]
    assert batch_crop_samples((16000, 16000), 3, 1, 0) == 16000

    # every crop of a batch has that batch's length, replayed ones included
    target, long = StubAudio(TARGET_LENGTHS), StubAudio(LONG_LENGTHS, first_utt=20)
    crop = (lo, hi)
    plan = plan_batches(target, long, DATA_CONF, 0.5, crop, 1, 11)
    dataset = make_dataset(plan, target, long, crop, None, 2)
    seen = set()
    for i in range(len(dataset)):
        short = dataset[i]["short"]
        assert short.shape[1] == batch_crop_samples(crop, 11, 2, i)
        assert lo <= short.shape[1] <= hi
        seen.add(short.shape[1])
    assert len(seen) > 1


@pytest.mark.parametrize("ratio,replayed", [(0.25, 2), (0.5, 4), (0.75, 6)])
def test_replay_batches_mix_both_corpora_with_disjoint_classes(ratio, replayed):
    target, long = StubAudio(TARGET_LENGTHS), StubAudio(LONG_LENGTHS, first_utt=20)
    crop = (8000, 16000)
    plan = plan_batches(target, long, DATA_CONF, ratio, crop, 1, 11)
    assert plan.batch_size == 8 and (plan.target_size, plan.replay_size) == (8 - replayed, replayed)
    # an epoch is still one pass over the target crops: chunks_per_epoch / the target part
    assert plan.num_batches == 40 // (8 - replayed)
    dataset = make_dataset(plan, target, long, crop, None, 1)
    offset = len(target.speakers)
    for i in range(len(dataset)):
        item = dataset[i]
        labels = item["labels"].numpy()
        assert len(labels) == 8 and item["short"].shape[0] == 8
        assert np.sum(labels < offset) == 8 - replayed and np.sum(labels >= offset) == replayed
        assert list(labels < offset) == [True] * (8 - replayed) + [False] * replayed  # target part first
        for b, label in enumerate(labels):
            utts, _ = decode(item["short"][b, :, 0])
            assert len(set(utts)) == 1  # one utterance per crop
            utt = int(utts[0])
            if label < offset:  # target-domain clip: its own speaker's class
                assert utt < 20 and target.labels[utt] == label
            else:  # replayed crop: an utterance of the long corpus, its speaker's class after the offset
                assert utt >= 20 and long.labels[utt - 20] + offset == label
        # speaker groups: utts_per_speaker crops of one speaker each, in either part
        assert all(labels[k] == labels[k + 1] for k in range(0, 8, 2))
    # the replayed draws are not the target sampler's: a seed of their own, different batches per epoch
    assert plan.replay.seed != plan.target.seed
    _, replays = plan.epoch(1)
    assert any(len(set(r)) > 1 for r in replays) and replays != plan.epoch(2)[1]


def test_replayed_crops_have_no_teacher_vector():
    target, long = StubAudio(TARGET_LENGTHS), StubAudio(LONG_LENGTHS, first_utt=20)
    teacher = np.arange(12 * 3, dtype=np.float32).reshape(12, 3) + 1  # a row per target clip
    mask = np.ones(12, dtype=bool)
    mask[5] = False
    plan = plan_batches(target, long, DATA_CONF, 0.5, (8000, 8000), 1, 11)
    dataset = make_dataset(plan, target, long, (8000, 8000), None, 1, teacher=teacher, teacher_mask=mask)
    for i in range(len(dataset)):
        item = dataset[i]
        rows, kept = item["teacher"].numpy(), item["teacher_mask"].numpy()
        assert rows.shape == (8, 3) and not kept[4:].any() and not rows[4:].any()  # replayed: left out
        for b in range(4):
            utt = int(decode(item["short"][b, :1, 0])[0][0])
            assert np.array_equal(rows[b], teacher[utt]) and kept[b] == mask[utt]


def test_replay_ratio_is_checked():
    target, long = StubAudio(TARGET_LENGTHS), StubAudio(LONG_LENGTHS, first_utt=20)
    for ratio in (0.1, 0.95, 1.0, -0.2):  # 0.1 and 0.95 round to no replay / no target crops
        with pytest.raises(DataError, match="replay.ratio"):
            plan_batches(target, long, DATA_CONF, ratio, (8000, 8000), 1, 11)
    with pytest.raises(DataError, match="--long-data"):
        plan_batches(target, None, DATA_CONF, 0.5, (8000, 8000), 1, 11)
    # per process: whole speaker groups of both parts on each of 2 processes (8 = 4 + 4)
    plan = plan_batches(target, long, DATA_CONF, 0.5, (8000, 8000), 2, 11)
    assert plan.replay_size == 4
    with pytest.raises(DataError, match="multiple of utts_per_speaker x processes"):
        plan_batches(target, long, DATA_CONF, 0.25, (8000, 8000), 2, 11)


def test_processes_share_the_batch_and_its_mix():
    """Two processes together see exactly the one-process batch, each with the same mix."""
    target, long = StubAudio(TARGET_LENGTHS), StubAudio(LONG_LENGTHS, first_utt=20)
    crop = (8000, 16000)
    one = make_dataset(plan_batches(target, long, DATA_CONF, 0.5, crop, 1, 11), target, long, crop, "utterance", 1)
    plan2 = plan_batches(target, long, DATA_CONF, 0.5, crop, 2, 11)
    parts = [make_dataset(plan2, target, long, crop, "utterance", 1, rank, 2) for rank in range(2)]
    for i in range(len(one)):
        whole, halves = one[i], [p[i] for p in parts]
        for h in halves:
            assert (h["labels"] < 4).sum() == 2 and (h["labels"] >= 4).sum() == 2
        order = [0, 1, 4, 5, 2, 3, 6, 7]  # rank 0: target 0-1 + replayed 0-1; rank 1: target 2-3 + replayed 2-3
        joined = torch.cat([h["short"] for h in halves])
        assert torch.equal(joined, whole["short"][order])
        assert torch.equal(torch.cat([h["long"] for h in halves]), whole["long"])


def test_same_utterance_long_view_in_the_batches():
    target, long = StubAudio(TARGET_LENGTHS), StubAudio(LONG_LENGTHS, first_utt=20)
    crop = (8000, 16000)
    long_samples = 32000
    plan = plan_batches(target, long, DATA_CONF, 0.5, crop, 1, 11)
    offset = len(target.speakers)
    for view in ("utterance", "concat+utterance"):
        dataset = make_dataset(plan, target, long, crop, view, 1, long_samples=long_samples)
        for i in range(len(dataset)):
            item = dataset[i]
            labels, kl_index = item["labels"].numpy(), item["kl_index"]
            if kl_index is None:  # None: every item has a long view
                kl_index = torch.arange(len(labels))
            replay_rows = [b for b in range(8) if labels[b] >= offset]
            if view == "utterance":  # the KL runs on the replayed crops only
                assert kl_index.tolist() == replay_rows
            else:  # concat views for the target clips, then the utterance views
                assert kl_index.tolist() == list(range(8))
            assert item["long"].shape == (len(kl_index), long_samples, 1)
            for k, b in enumerate(kl_index.tolist()):
                if labels[b] < offset:
                    continue
                short_utt, short_pos = decode(item["short"][b, :, 0])
                long_utt, long_pos = decode(item["long"][k, :, 0])
                utt = int(short_utt[0])
                # the long view is the utterance the crop was cut from, and holds the crop
                assert set(long_utt) == {utt}
                n = len(long.samples[utt - 20])
                if n >= long_samples:
                    assert np.array_equal(long_pos, np.arange(long_pos[0], long_pos[0] + long_samples))
                    assert long_pos[0] <= short_pos[0] and short_pos[-1] <= long_pos[-1]
                else:  # the whole utterance, repeated
                    assert np.array_equal(long_pos, np.tile(np.arange(n), -(-long_samples // n))[:long_samples])
    with pytest.raises(DataError, match="needs replay.ratio > 0"):
        transfer(transfer_config(loss={**transfer_config()["loss"],
                                       "kl": {"weight": 1.0, "temperature": 2.0, "long_view": "utterance",
                                              "long_seconds": 0.8}}),
                 "unused", "unused", "unused", long_dir="unused")


def test_replayed_classes_start_from_the_source_head():
    torch.manual_seed(0)
    source = torch.randn(3 * 2, 5)  # 3 source speakers, K_source = 2
    head = AAMSoftmax(5, 2 + 3, sub_centers=3)  # 2 target speakers, then 3 replayed
    before = head.weight.detach().clone()
    found = init_replay_classes(head, source, 2, ["a", "b", "c"], ["c", "x", "a"], 2)
    assert found == 2
    w = head.weight.detach()
    assert torch.equal(w[:6], before[:6])  # target-domain classes untouched
    for k in range(3):
        assert torch.equal(w[(2 + 0) * 3 + k], source[2 * 2 + k % 2])  # "c" = source class 2
        assert torch.equal(w[(2 + 2) * 3 + k], source[0 * 2 + k % 2])  # "a" = source class 0
        assert torch.equal(w[(2 + 1) * 3 + k], before[(2 + 1) * 3 + k])  # "x": not a source class


def test_transfer_with_replay_resumes_exactly(source, tmp_path, caplog):
    source_dir, data, teacher = source
    base = transfer_config()
    config = transfer_config(short_seconds=[0.2, 0.4], replay={"ratio": 0.5, "init_from_source": True},
                             loss={**base["loss"], "kl": {**base["loss"]["kl"], "long_view": "concat+utterance"}})
    caplog.set_level("INFO")
    full_path, _ = transfer(config, source_dir, data, str(tmp_path / "full"), long_dir=data, teacher_rspec=teacher)
    assert "4 of 4 speakers" in caplog.text and "2 of 4 crops a batch" in caplog.text
    assert ", msce_replay " in caplog.text and ", kl " in caplog.text and ", mse " in caplog.text
    part_path, _ = transfer(config, source_dir, data, str(tmp_path / "part"), long_dir=data, teacher_rspec=teacher,
                            stop_after_epoch=1)
    resumed_path, _ = transfer(config, source_dir, data, str(tmp_path / "part"), long_dir=data,
                               teacher_rspec=teacher, resume=True)
    full, resumed = ckpt.load(full_path)["model"], ckpt.load(resumed_path)["model"]
    assert full.keys() == resumed.keys()
    for name in full:
        assert torch.equal(full[name], resumed[name]), name
    # 4 target speakers, then the 4 long-speech ones, K = 2 sub-centres each
    assert full["head.weight"].shape[0] == (4 + 4) * 2
    desc = json.load(open(tmp_path / "full" / "model.json"))
    assert desc["num_classes"] == 8 and len(desc["speakers"]) == 8
    assert desc["transfer"]["replay"]["first_class"] == 4 and desc["transfer"]["replay"]["ratio"] == 0.5
    assert desc["transfer"]["short_seconds"] == [0.2, 0.4]
    # long-speech dir given but unused: not read, the run is the plain one
    caplog.clear()
    transfer(transfer_config(), source_dir, data, str(tmp_path / "plain"), long_dir=data, teacher_rspec=teacher,
             stop_after_epoch=1)
    assert "not read (no replay, long view concat)" in caplog.text
    assert os.path.isfile(tmp_path / "plain" / "checkpoints" / "epoch_1.pt")
