"""The teacher targets of loss.kd.target (sidkd.nnet.teacher_targets) against hand computations."""

import json
import math
import os

import numpy as np
import pytest
import torch
from nnet_helpers import make_tiny_data, tiny_config

from sidkd.errors import DataError
from sidkd.io.ark import ArchiveWriter
from sidkd.nnet.data import AugmentConfig, FixedCropBatchDataset, TrainingAudio
from sidkd.nnet.features import FeatureFrontEnd
from sidkd.nnet.losses import RelationDistillation
from sidkd.nnet.teacher_targets import (
    TARGETS,
    CropTeacher,
    build_kd_head,
    build_targets,
    check_target,
    crop_starts,
    lda_projection,
    prepare_teacher,
    speaker_means,
    target_uses_crops,
)

# Two speakers in 2-D: class means (∓2, 0), within-class deviations ±2 along x and ±1 along y, so
# S_w = diag(4, 1), S_b = diag(4, 0): the LDA direction is x, scaled by 1/σ_w,x = 1/2 when whitened.
HAND_X = np.array([[-4, -1], [-4, 1], [0, -1], [0, 1], [0, -1], [0, 1], [4, -1], [4, 1]], dtype=float) + [10, -3]
HAND_LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1])


def test_lda_projection_against_hand_computation():
    centred_x = HAND_X[:, 0] - 10
    for whiten, scale in ((True, 0.5), (False, 1.0)):
        matrix, offset = lda_projection(HAND_X, HAND_LABELS, 1, whiten=whiten)
        y = (HAND_X @ matrix.T + offset)[:, 0]
        sign = np.sign(y[0] * centred_x[0])  # an eigenvector's sign is arbitrary
        np.testing.assert_allclose(y, sign * scale * centred_x, atol=1e-9)


def test_lda_projection_orthogonal_form_is_the_projector_onto_the_lda_subspace():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 5)
    x = rng.standard_normal((30, 4)) + rng.standard_normal((6, 4))[labels] * 3
    whitened, _ = lda_projection(x, labels, 2, whiten=True)
    ortho, offset = lda_projection(x, labels, 2, whiten=False)
    np.testing.assert_allclose(ortho @ ortho.T, np.eye(2), atol=1e-10)
    np.testing.assert_allclose(ortho.T @ ortho, np.linalg.pinv(whitened) @ whitened, atol=1e-10)
    np.testing.assert_allclose(offset, -ortho @ x.mean(0), atol=1e-10)
    # whitened: the within-class covariance of the output is the identity
    y = x @ whitened.T
    within = sum(np.cov(y[labels == s].T, bias=True) * 5 for s in range(6)) / 30
    np.testing.assert_allclose(within, np.eye(2), atol=1e-8)


def test_speaker_mean_against_hand_computation():
    x = np.array([[2, 0], [0, 2], [-2, 0], [0, -2]], dtype=float) + [5, 7]  # centring removes the offset
    out = speaker_means(x, np.array([0, 0, 1, 1]))
    h = 1 / math.sqrt(2)
    np.testing.assert_allclose(out, [[h, h], [h, h], [-h, -h], [-h, -h]], atol=1e-12)
    # build_targets: speaker_mean_lda is the speaker mean of the LDA-projected vectors
    conf = {"target": "speaker_mean_lda", "lda": {"dim": 1, "whiten": True}}
    got = build_targets(conf, HAND_X, HAND_LABELS)[:, 0]
    assert np.allclose(np.abs(got), 1.0) and got[0] == got[3] == -got[4] == -got[7]
    ivector = build_targets({"target": "ivector"}, HAND_X, HAND_LABELS)
    np.testing.assert_allclose(ivector, HAND_X)


def test_unknown_target_and_too_large_lda_are_clear_errors():
    with pytest.raises(DataError, match="loss.kd.target='mean'; set it to one of: ivector, lda, speaker_mean, "
                                        "speaker_mean_lda, crop, crop_lda, relation"):
        build_targets({"target": "mean"}, HAND_X, HAND_LABELS)
    for bad in ("mean", ["lda"], None):
        with pytest.raises(DataError, match="loss.kd.target="):
            check_target(bad)
    with pytest.raises(DataError, match="loss.kd.lda.dim 3 exceeds the teacher dimension 2"):
        build_targets({"target": "lda", "lda": {"dim": 3, "whiten": True}}, HAND_X, HAND_LABELS)


def test_crop_starts():
    assert crop_starts(1000, 200, 4) == [0, 267, 533, 800]
    assert crop_starts(250, 200, 4) == [0, 17, 33, 50]
    assert crop_starts(150, 200, 4) == [0]
    assert crop_starts(200, 200, 4) == [0]
    assert crop_starts(203, 200, 4) == [0, 1, 2, 3]
    assert crop_starts(202, 200, 4) == [0, 1, 2]  # rounding repeats a start: kept once


def _write_crops(root, audio, chunk_frames, num_crops):
    """crops file + frame_shift + a teacher archive whose vector says which crop it is."""
    crops = os.path.join(root, "crops")
    lines, vectors = [], {}
    for i, (utt, samples) in enumerate(zip(audio.utts, audio.samples)):
        frames = int(round(len(samples) / 160))
        for k, start in enumerate(crop_starts(frames, chunk_frames, num_crops)):
            key = f"{utt}-crop{k}"
            lines.append(f"{key} {utt} {start} {min(frames, chunk_frames)}\n")
            vectors[key] = np.array([i, start, k, 1.0, -1.0], dtype=np.float32)
    with open(crops, "w") as f:
        f.writelines(sorted(lines))
    with open(os.path.join(root, "frame_shift"), "w") as f:
        f.write("0.01\n")
    with ArchiveWriter(f"ark,scp:{root}/crop_iv.ark,{root}/crop_iv.scp") as w:
        for key in sorted(vectors):
            w[key] = vectors[key]
    return crops, f"scp:{root}/crop_iv.scp"


def test_crops_drawn_are_the_listed_crops_with_their_own_teacher_vector(tmp_path, standin_fbank_backend):
    data, _ = make_tiny_data(str(tmp_path), speakers=2, utts=3)
    audio = TrainingAudio(data)
    chunk = 4800  # 0.3 s = 30 frames; the utterances are 0.4, 0.7, 1.0 s
    crops, rspec = _write_crops(str(tmp_path), audio, 30, 3)
    teacher = CropTeacher(crops, rspec, audio.utts, 16000, chunk)
    assert teacher.present.all()
    frontend = FeatureFrontEnd({"num_mel_bins": 8})
    batches = [[0, 1, 2, 3, 4, 5] * 4]
    seen = set()
    for epoch in range(3):
        ds = FixedCropBatchDataset(audio, frontend, chunk, AugmentConfig(), batches, [0], seed=5, epoch=epoch,
                                   teacher=teacher.vectors, crop_teacher=teacher)
        feats, labels, target = ds[0]
        for j, utt in enumerate(batches[0]):
            i, start_frame, k = (int(v) for v in target[j, :3])
            assert i == utt  # the teacher row belongs to this utterance
            frames = int(round(len(audio.samples[utt]) / 160))
            assert start_frame in crop_starts(frames, 30, 3)
            start = min(start_frame * 160, len(audio.samples[utt]) - chunk)
            expected = frontend(audio.samples[utt][start:start + chunk].astype(np.float32))
            np.testing.assert_allclose(feats[j].numpy(), expected, rtol=1e-6, atol=1e-5)
            seen.add((utt, k))
        assert torch.equal(labels, torch.from_numpy(audio.labels[batches[0]]))
    assert len(seen) == 3 * 6  # every position of every utterance was drawn


def test_crop_length_must_match_the_chunk(tmp_path, standin_fbank_backend):
    data, _ = make_tiny_data(str(tmp_path), speakers=2, utts=3)
    audio = TrainingAudio(data)
    crops, rspec = _write_crops(str(tmp_path), audio, 30, 3)
    with pytest.raises(DataError, match=r"crop 'spk0-u0-crop0' is 30 frames \(0.3 s\).*20 frames"):
        CropTeacher(crops, rspec, audio.utts, 16000, 3200)
    os.remove(tmp_path / "frame_shift")
    with pytest.raises(DataError, match="frame_shift: cannot read the frame shift"):
        CropTeacher(crops, rspec, audio.utts, 16000, 4800)


def test_relation_loss_zero_for_equal_similarities_positive_otherwise():
    rng = np.random.default_rng(3)
    t = torch.from_numpy(rng.standard_normal((6, 4)))
    rotation = torch.from_numpy(np.linalg.qr(rng.standard_normal((4, 4)))[0])
    scales = torch.from_numpy(rng.uniform(0.5, 3, (6, 1)))
    z = (t @ rotation) * scales  # same cosine matrix, other space and lengths
    other = torch.from_numpy(rng.standard_normal((6, 4)))
    for loss in ("mse", "kl"):
        rel = RelationDistillation(loss, temperature=0.2)
        assert abs(rel(z, t).item()) < 1e-12
        assert rel(other, t).item() > 1e-3
    # mse by hand: cos pairs (0,1) 0 vs 1, (0,2) 1/√2 vs 0, (1,2) 1/√2 vs 0 → mean of 1, ½, ½
    zs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    ts = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    assert RelationDistillation("mse")(zs, ts).item() == pytest.approx(2 / 3)
    # kl by hand, row 0 at τ = 1: teacher softmax over (1, 0), student over (0, 1/√2)
    p = np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum()
    q = np.exp([0.0, 1 / math.sqrt(2)]) / np.exp([0.0, 1 / math.sqrt(2)]).sum()
    rows = [np.sum(p * np.log(p / q))]
    for s_row, t_row in (([0.0, 1 / math.sqrt(2)], [1.0, 0.0]), ([1 / math.sqrt(2)] * 2, [0.0, 0.0])):
        pp, qq = np.exp(t_row) / np.exp(t_row).sum(), np.exp(s_row) / np.exp(s_row).sum()
        rows.append(np.sum(pp * np.log(pp / qq)))
    assert RelationDistillation("kl", 1.0)(zs, ts).item() == pytest.approx(np.mean(rows))
    # gradients reach the student
    zg = zs.clone().requires_grad_(True)
    RelationDistillation("mse")(zg, ts).backward()
    assert zg.grad.abs().sum() > 0


@pytest.mark.parametrize("target", ["lda", "speaker_mean", "relation", "crop", "crop_lda"])
def test_training_with_each_target(tmp_path, standin_fbank_backend, target, caplog):
    from sidkd.nnet import checkpoint as ckpt
    from sidkd.nnet.config import load_config
    from sidkd.nnet.trainer import train

    data, teacher = make_tiny_data(str(tmp_path))
    conf = tiny_config()
    conf["optim"]["num_epochs"] = 1
    conf["optim"]["average_last"] = 1
    conf["loss"]["kd"].update({"target": target, "normalisation": "length", "lda": {"dim": 2, "whiten": False}})
    crops = None
    if target.startswith("crop"):
        audio = TrainingAudio(data)
        crops, teacher = _write_crops(str(tmp_path), audio, 30, 2)
    caplog.set_level("INFO")
    path, _ = train(load_config(None, conf), data, str(tmp_path / "exp"), teacher, teacher_crops=crops)
    state = ckpt.load(path)["model"]
    assert ("kd.projection.weight" in state) == (target != "relation")
    if target != "relation":
        assert state["kd.projection.weight"].shape[0] == (2 if "lda" in target else 5)
    assert f"target {target}" in caplog.text
    with open(tmp_path / "exp" / "model.json") as f:
        assert json.load(f)["kd_target"] == target


def test_bad_crops_files_are_named(tmp_path):
    from sidkd.nnet.teacher_targets import read_crops

    path = tmp_path / "crops"
    for text, message in (("a-crop0 a 0\n", r"crops:1: expected '<crop> <utt> <start-frame> <num-frames>'"),
                          ("a-crop0 a 0 200\na-crop0 a 5 200\n", r"crops:2: duplicate crop key 'a-crop0'"),
                          ("a-crop0 a x 200\n", r"crops:1: start and length must be integers"),
                          ("a-crop0 a -1 200\n", r"crops:1: crop 'a-crop0' has start -1"),
                          ("", r"crops: no crops")):
        path.write_text(text)
        with pytest.raises(DataError, match=message):
            read_crops(str(path))
    with pytest.raises(DataError, match=r"nothere: no such crops file \(made by steps/extract_crop_ivectors.sh\)"):
        read_crops(str(tmp_path / "nothere"))


def test_the_targets_are_a_registry_of_classes():
    # what each target reads and whether it is LDA-projected, as docs/student.md's table says
    expected = {"ivector": (False, False), "lda": (True, False), "speaker_mean": (False, False),
                "speaker_mean_lda": (True, False), "crop": (False, True), "crop_lda": (True, True),
                "relation": (True, False)}
    assert list(TARGETS) == list(expected)
    for name, (uses_lda, uses_crops) in expected.items():
        assert TARGETS[name].name == name and check_target(name) == name
        assert (TARGETS[name].uses_lda, TARGETS[name].uses_crops) == (uses_lda, uses_crops), name
        assert target_uses_crops(name) == uses_crops
    with pytest.raises(DataError, match="loss.kd.target='crops'"):
        target_uses_crops("crops")


# A speaker of one utterance: row 2 (speaker 1) below.
ALONE_X = np.array([[3.0, 1.0], [2.0, 2.5], [-1.0, 4.0], [-3.0, -1.0], [-2.0, -2.5], [-2.5, -0.5]])
ALONE_LABELS = np.array([0, 0, 1, 2, 2, 2])


def test_a_speaker_of_one_utterance_has_no_speaker_mean_target(caplog):
    """Its mean is its one utterance's vector, the channel and content the target is to leave out:
    the row is absent (NaN), so the distillation term skips it; the log counts such utterances."""
    caplog.set_level("INFO")
    for target in ("speaker_mean", "speaker_mean_lda"):
        got = build_targets({"target": target, "lda": {"dim": 1, "whiten": True}}, ALONE_X, ALONE_LABELS)
        assert np.isnan(got[2]).all() and np.isfinite(np.delete(got, 2, axis=0)).all(), target
        assert f"teacher targets {target}: 1 of 6 utterances are the only one of their speaker (1 speakers)" \
            in caplog.text
    # the other rows are the speaker means as before
    means = build_targets({"target": "speaker_mean"}, ALONE_X, ALONE_LABELS)
    np.testing.assert_allclose(np.delete(means, 2, axis=0), np.delete(speaker_means(ALONE_X, ALONE_LABELS), 2, axis=0),
                               rtol=1e-6)
    # the other targets keep the row
    for target in ("ivector", "lda"):
        lda_target = build_targets({"target": target, "lda": {"dim": 1, "whiten": True}}, ALONE_X, ALONE_LABELS)
        assert np.isfinite(lda_target).all()
    # the head: normaliser fitted on the rows with a target, loss over them only
    kd = build_kd_head({"target": "speaker_mean", "normalisation": "mean"}, 4, means)
    np.testing.assert_allclose(kd.normalizer.mean.numpy(), np.delete(means, 2, axis=0).mean(0), rtol=1e-6)
    z = torch.randn(6, 4)
    loss = kd(z, torch.from_numpy(means))
    expected = kd(z[[0, 1, 3, 4, 5]], torch.from_numpy(means[[0, 1, 3, 4, 5]]))
    assert torch.isfinite(loss) and torch.allclose(loss, expected, rtol=1e-6)
    with pytest.raises(DataError, match="loss.kd.target=speaker_mean: every speaker .* one utterance"):
        build_targets({"target": "speaker_mean"}, ALONE_X[:3], np.arange(3))


def independent_lda(x: np.ndarray, labels: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(x − mean) projected on the top ``dim`` generalised eigenvectors v of S_b v = λ S_w v with
    vᵀ S_w v = 1 (scipy's eigh; S_w, S_b the within- and between-speaker scatter / N), and those
    eigenvectors (R, dim). The sign of each is arbitrary."""
    import scipy.linalg

    centred = x - x.mean(axis=0)
    within = np.zeros((x.shape[1], x.shape[1]))
    between = np.zeros_like(within)
    for label in np.unique(labels):
        rows = centred[labels == label]
        mean = rows.mean(axis=0)
        within += (rows - mean).T @ (rows - mean)
        between += len(rows) * np.outer(mean, mean)
    _, vectors = scipy.linalg.eigh(between / len(x), within / len(x))  # ascending
    top = vectors[:, ::-1][:, :dim]
    return centred @ top, top


def assert_equal_up_to_column_signs(got, expected, **tolerance):
    signs = np.sign(np.sum(got * expected, axis=0))
    np.testing.assert_allclose(got, expected * signs, **tolerance)


def independent_speaker_means(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """n(mean_{v of s} n(x_v − μ)) per row; NaN for a speaker of one row."""
    centred = x - x.mean(axis=0)
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    out = np.full_like(unit, np.nan)
    for label in np.unique(labels):
        rows = labels == label
        if rows.sum() > 1:
            mean = unit[rows].mean(axis=0)
            out[rows] = mean / np.linalg.norm(mean)
    return out


def test_prepare_teacher_values_against_an_independent_computation(tmp_path, standin_fbank_backend):
    from sidkd.io.ark import iter_archive

    # spk1 keeps one utterance with a teacher vector, spk2 three of four
    missing = ("spk1-u0", "spk1-u2", "spk1-u3", "spk2-u1")
    data, rspec = make_tiny_data(str(tmp_path), utts=4, missing_teacher=missing)
    raw = {key: vector.astype(np.float64) for key, vector in iter_archive(rspec)}
    tolerance = {"rtol": 1e-4, "atol": 1e-4}

    def prepared(target, whiten=True, teacher=rspec):
        audio = TrainingAudio(data)
        targets, crop_teacher = prepare_teacher({"target": target, "lda": {"dim": 2, "whiten": whiten}}, teacher,
                                                audio, 4800)
        return targets, audio, crop_teacher

    ivector, audio, _ = prepared("ivector")
    assert audio.utts == [u for u in sorted(raw) if u not in missing] and len(ivector) == 12
    x = np.stack([raw[u] for u in audio.utts])
    labels = audio.labels
    np.testing.assert_array_equal(ivector, x.astype(np.float32))
    projected, basis = independent_lda(x, labels, 2)
    for whiten in (True, False):
        lda, _, _ = prepared("lda", whiten)
        if whiten:  # the LDA coordinates themselves
            assert_equal_up_to_column_signs(lda, projected, **tolerance)
        else:  # an orthonormal basis of the same subspace: the inner products of the orthogonal projection
            projector = basis @ np.linalg.solve(basis.T @ basis, basis.T)
            centred = x - x.mean(axis=0)
            np.testing.assert_allclose(lda @ lda.T, centred @ projector @ centred.T, **tolerance)
        # relation compares similarities of the LDA-projected vectors: the same targets, not the raw ones
        relation, _, _ = prepared("relation", whiten)
        np.testing.assert_array_equal(relation, lda)
        assert relation.shape == (12, 2)
    means, _, _ = prepared("speaker_mean")
    np.testing.assert_allclose(means, independent_speaker_means(x, labels), equal_nan=True, **tolerance)
    assert np.isnan(means[audio.utts.index("spk1-u1")]).all()
    means_lda, _, _ = prepared("speaker_mean_lda")
    expected = independent_speaker_means(projected, labels)
    present = np.isfinite(expected).all(axis=1)
    assert np.array_equal(np.isfinite(means_lda).all(axis=1), present)
    assert_equal_up_to_column_signs(means_lda[present], expected[present], **tolerance)

    # crop targets: one row per crop, its own vector (random here, so that the LDA is well posed)
    full = TrainingAudio(data)
    crops, _ = _write_crops(str(tmp_path), full, 30, 2)
    rng = np.random.default_rng(7)
    crop_vectors = {}
    with ArchiveWriter(f"ark,scp:{tmp_path}/crop_rand.ark,{tmp_path}/crop_rand.scp") as writer:
        for line in open(crops):
            key = line.split()[0]
            crop_vectors[key] = rng.standard_normal(5) + int(key[3])
            writer[key] = crop_vectors[key].astype(np.float32)
    crop_rspec = f"scp:{tmp_path}/crop_rand.scp"
    crop, _, crop_teacher = prepared("crop", teacher=crop_rspec)
    x = np.stack([crop_vectors[key] for key in crop_teacher.keys])
    np.testing.assert_array_equal(crop, x.astype(np.float32))
    crop_labels = np.array([full.speakers.index(key.split("-")[0]) for key in crop_teacher.keys])
    crop_lda, _, _ = prepared("crop_lda", teacher=crop_rspec)
    assert_equal_up_to_column_signs(crop_lda, independent_lda(x, crop_labels, 2)[0], **tolerance)


@pytest.mark.parametrize("target", ["speaker_mean", "speaker_mean_lda"])
def test_training_with_a_speaker_of_one_utterance(tmp_path, standin_fbank_backend, target, caplog):
    """Its utterances train the AAM head and have no distillation term: the loss stays finite."""
    import re

    from sidkd.nnet import checkpoint as ckpt
    from sidkd.nnet.config import load_config
    from sidkd.nnet.trainer import train

    data, teacher = make_tiny_data(str(tmp_path), missing_teacher=("spk1-u0", "spk1-u2"))
    conf = tiny_config()
    conf["optim"].update(num_epochs=2, average_last=1)
    conf["loss"]["kd"].update({"target": target, "lda": {"dim": 2, "whiten": True}})
    caplog.set_level("INFO")
    path, _ = train(load_config(None, conf), data, str(tmp_path / "exp"), teacher)
    assert f"{target}: 1 of 10 utterances are the only one of their speaker (1 speakers)" in caplog.text
    assert ", kd " in caplog.text and not re.search(r"\bnan\b", caplog.text, re.IGNORECASE)
    for name, value in ckpt.load(path)["model"].items():
        assert torch.isfinite(value.float()).all(), name
