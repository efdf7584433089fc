"""Kaldi interop: the Plda file (text and binary) and vector archives in Kaldi's text form."""

import struct

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from sidkd.backend.kaldi_models import from_kaldi_objects, parse_kaldi, read_kaldi, read_kaldi_plda
from sidkd.backend.lda import Lda, compute_lda
from sidkd.backend.plda import Plda, train_plda
from sidkd.backend.scoring import PldaScorer
from sidkd.backend.vectors import read_vectors
from sidkd.bin import convert_plda, score_plda
from sidkd.errors import DataError
from sidkd.io.ark import ArchiveWriter
from sidkd.io.trials import read_scores

# Written as Kaldi's Plda::Write does in text mode (7 significant digits, tokens and vectors as there).
TINY_KALDI_TEXT = ("<Plda>  [ 1 -2.5 ]\n [\n  2 0 \n  0.5 1.25 ]\n [ 3.5 0.25 ]\n</Plda> ")
TINY_MEAN = np.array([1.0, -2.5])
TINY_TRANSFORM = np.array([[2.0, 0.0], [0.5, 1.25]])
TINY_PSI = np.array([3.5, 0.25])


def two_covariance_llr(mean, between, within, enrol, test):
    """log p(e, t | same speaker) − log p(e) p(t): the model's joint Gaussians, written out."""
    total = between + within
    joint = np.block([[total, between], [between, total]])
    same = multivariate_normal(np.concatenate([mean, mean]), joint).logpdf(np.concatenate([enrol, test]))
    return same - multivariate_normal(mean, total).logpdf(enrol) - multivariate_normal(mean, total).logpdf(test)


def test_hand_written_kaldi_text_file(tmp_path):
    path = tmp_path / "plda.txt"
    path.write_text(TINY_KALDI_TEXT)
    plda = read_kaldi_plda(str(path))
    np.testing.assert_array_equal(plda.mean, TINY_MEAN)
    np.testing.assert_array_equal(plda.transform, TINY_TRANSFORM)
    np.testing.assert_array_equal(plda.psi, TINY_PSI)
    # B and W, which Kaldi does not store, satisfy the model's defining equations.
    a = TINY_TRANSFORM
    np.testing.assert_allclose(a @ plda.within_covar @ a.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(a @ plda.between_covar @ a.T, np.diag(TINY_PSI), atol=1e-12)
    # Scores (one utterance each side, no length normalisation) equal the two-covariance LLR.
    inv = np.linalg.inv(a)
    between, within = inv @ np.diag(TINY_PSI) @ inv.T, inv @ inv.T
    rng = np.random.default_rng(3)
    enrol, test = rng.normal(size=(4, 2)) * 2, rng.normal(size=(5, 2)) * 2
    scorer = PldaScorer(plda, length_norm=False, normalize_length=False)
    enrolled = scorer.enrol(scorer.prepare(enrol), [np.array([i]) for i in range(4)])
    got = scorer.score(enrolled, scorer.test_side(scorer.prepare(test)))
    expected = [[two_covariance_llr(TINY_MEAN, between, within, e, t) for t in test] for e in enrol]
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_hand_written_kaldi_binary_file_with_floats():
    # Kaldi's binary layout built here from the format description: float vectors/matrix (FV/FM).
    def token(t):
        return t.encode() + b" "

    def int32(v):
        return struct.pack("<bi", 4, v)

    data = (b"\0B" + token("<Plda>") + token("FV") + int32(2) + TINY_MEAN.astype("<f4").tobytes()
            + token("FM") + int32(2) + int32(2) + TINY_TRANSFORM.astype("<f4").tobytes()
            + token("FV") + int32(2) + TINY_PSI.astype("<f4").tobytes() + token("</Plda>"))
    plda = from_kaldi_objects(parse_kaldi(data, "x.plda"), "x.plda")
    np.testing.assert_array_equal(plda.transform, TINY_TRANSFORM)
    np.testing.assert_array_equal(plda.psi, TINY_PSI)
    with pytest.raises(DataError, match="x.plda.*truncated"):
        parse_kaldi(data[:40], "x.plda")


@pytest.mark.parametrize("text, message", [
    ("<Plda>  [ 1 2 ]\n [\n  1 0 \n  0 1 ]\n [ 1 ]\n</Plda> ", "inconsistent sizes"),
    ("<Plda>  [ 1 2 ]\n [\n  1 0 \n  0 ]\n [ 1 1 ]\n</Plda> ", "rows of different lengths"),
    ("<Plda>  [ 1 nan ]\n [\n  1 0 \n  0 1 ]\n [ 1 1 ]\n</Plda> ", "mean contains NaN"),
    ("<Plda>  [ 1 2 ]\n [\n  1 0 \n  0 x ]\n [ 1 1 ]\n</Plda> ", "not a number: 'x'"),
    ("<Plda>  [ 1 2 ]\n [\n  1 1 \n  1 1 ]\n [ 1 1 ]\n</Plda> ", "singular"),
    ("<Plda>  [ 1 2 ]\n [ 1 1 ]\n</Plda> ", "expected '<Plda> \\[ mean \\] .* found token vector vector token"),
    ("<Plda>  [ 1 2 ]\n [\n  1 0 \n  0 1 ]\n [ 1 1 ]\n</Plda> junk", "not a Kaldi object in text form at byte"),
    ("<Plda>  [ 1 2 ]\n [\n  1 0 \n  0 1 ]\n [ 1 -1 ]\n</Plda> ", "negative"),
])
def test_bad_kaldi_files_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.plda"
    path.write_text(text)
    with pytest.raises(DataError, match=f"bad.plda.*{message}"):
        read_kaldi_plda(str(path))


def synthetic_plda_data(rng, num_spk=40, utts=6, dim=6):
    centre = rng.normal(size=dim) * 3
    speakers = rng.normal(size=(num_spk, dim)) * 1.5
    rows = np.repeat(speakers, utts, axis=0) + rng.normal(size=(num_spk * utts, dim)) + centre
    labels = np.repeat([f"s{i:02d}" for i in range(num_spk)], utts)
    return rows, labels


@pytest.mark.parametrize("binary", ["false", "true"])
def test_round_trip_gives_identical_scores(tmp_path, binary):
    rng = np.random.default_rng(5)
    rows, labels = synthetic_plda_data(rng)
    ours = tmp_path / "plda.npz"
    train_plda(rows, labels, num_iters=4).save(str(ours))
    kaldi = tmp_path / "plda.kaldi"
    back = tmp_path / "back.npz"
    convert_plda.main(["--to-kaldi", f"--binary={binary}", str(ours), str(kaldi)])
    if binary == "false":
        text = kaldi.read_text()
        assert text.startswith("<Plda>  [ ") and text.endswith("]\n</Plda> ")
        assert len(text.splitlines()) == 1 + 1 + 6 + 1 + 1  # mean, "[", six rows, psi, end token
    else:
        assert kaldi.read_bytes().startswith(b"\0B<Plda> DV ")
    convert_plda.main(["--from-kaldi", str(kaldi), str(back)])
    original, restored = Plda.load(str(ours)), Plda.load(str(back))
    for name in ("mean", "transform", "psi"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(original, name))
    np.testing.assert_allclose(restored.within_covar, original.within_covar, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(restored.between_covar, original.between_covar, rtol=1e-9, atol=1e-12)
    # Score with the program, both models: bit-identical scores.
    keys = [f"u{i}" for i in range(8)]
    with ArchiveWriter(f"ark,scp:{tmp_path}/v.ark,{tmp_path}/v.scp") as writer:
        for key, row in zip(keys, synthetic_plda_data(rng, 8, 1)[0]):
            writer[key] = row.astype(np.float32)
    (tmp_path / "trials").write_text("".join(f"{a} {b}\n" for a in keys for b in keys if a < b))
    for model, out in ((ours, "s1"), (back, "s2")):
        score_plda.main([str(model), f"scp:{tmp_path}/v.scp", f"scp:{tmp_path}/v.scp", str(tmp_path / "trials"), str(tmp_path / out)])
    assert (tmp_path / "s1").read_text() == (tmp_path / "s2").read_text()
    assert len(read_scores(str(tmp_path / "s1"))[2]) == 28


def test_vector_archive_round_trips_through_kaldi_text_form(tmp_path):
    rng = np.random.default_rng(2)
    keys = [f"spk{i}-utt{i}" for i in range(5)]
    values = rng.normal(size=(5, 7)).astype(np.float32)  # Kaldi's i-vectors are float (BaseFloat)
    with ArchiveWriter(f"ark,scp:{tmp_path}/ivector.ark,{tmp_path}/ivector.scp") as writer:
        for key, row in zip(keys, values):
            writer[key] = row
    # What Kaldi's copy-vector scp:ivector.scp ark,t:- prints, written by our writer.
    table = read_vectors(f"scp:{tmp_path}/ivector.scp")
    with ArchiveWriter(f"ark,t:{tmp_path}/ivector.txt") as writer:
        for key, row in zip(table.keys, table.matrix):
            writer[key] = row.astype(np.float32)
    lines = (tmp_path / "ivector.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == keys
    assert all(line.split()[1] == "[" and line.split()[-1] == "]" and len(line.split()) == 7 + 3 for line in lines)
    # Back from the text form (as Kaldi's copy-vector ark,t:... ark:... would): values unchanged.
    table = read_vectors(f"ark:{tmp_path}/ivector.txt")
    assert table.keys == keys
    np.testing.assert_array_equal(table.matrix, values.astype(np.float64))


def test_hand_written_kaldi_mean_and_transform(tmp_path):
    (tmp_path / "mean.vec").write_text(" [ 0.5 -1 2e-3 ]\n")
    (tmp_path / "transform.mat").write_text(" [\n  1 2 3 0.5 \n  -4 5 6 -0.25 ]\n")
    np.testing.assert_array_equal(read_kaldi(str(tmp_path / "mean.vec")), [0.5, -1.0, 2e-3])
    lda = read_kaldi(str(tmp_path / "transform.mat"))
    assert isinstance(lda, Lda)
    np.testing.assert_array_equal(lda.matrix, [[1, 2, 3], [-4, 5, 6]])
    np.testing.assert_array_equal(lda.offset, [0.5, -0.25])
    with pytest.raises(DataError, match="transform.mat: a Kaldi Lda, not a PLDA"):
        read_kaldi_plda(str(tmp_path / "transform.mat"))


def kaldi_pipeline_score(mean_vec, transform_mat, plda_objects, enrol, test):
    """Kaldi's voxceleb scoring, trial by trial: ivector-subtract-global-mean, transform-vec,
    ivector-normalize-length, then ivector-plda-scoring --normalize-length=true (Plda::
    TransformIvector and Plda::LogLikelihoodRatio with one utterance per side)."""
    _, plda_mean, plda_transform, psi, _ = plda_objects
    dim = psi.size

    def prepare(x):
        x = transform_mat[:, :-1] @ (x - mean_vec) + transform_mat[:, -1]
        x = x * np.sqrt(x.size) / np.linalg.norm(x)
        u = plda_transform @ x - plda_transform @ plda_mean
        return u * np.sqrt(dim / np.sum(u * u / (psi + 1.0)))  # num_examples = 1

    e, t = prepare(enrol), prepare(test)
    mean_given = psi / (psi + 1.0) * e
    var_given = 1.0 + psi / (psi + 1.0)
    given = -0.5 * np.sum(np.log(var_given) + np.log(2 * np.pi) + (t - mean_given) ** 2 / var_given)
    without = -0.5 * np.sum(np.log(1.0 + psi) + np.log(2 * np.pi) + t**2 / (1.0 + psi))
    return given - without


def test_kaldi_scoring_pipeline_on_converted_models_gives_our_scores(tmp_path):
    from sidkd.backend.vectors import save_mean

    rng = np.random.default_rng(8)
    rows, labels = synthetic_plda_data(rng, num_spk=50, utts=5, dim=10)
    mean = rows.mean(axis=0)
    save_mean(str(tmp_path / "mean.npz"), mean, rows.shape[0])
    lda = compute_lda(rows - mean, labels, 6)
    lda.save(str(tmp_path / "lda.npz"))
    projected = lda.apply(rows - mean)
    projected *= np.sqrt(6) / np.linalg.norm(projected, axis=1, keepdims=True)
    train_plda(projected, labels, num_iters=3).save(str(tmp_path / "plda.npz"))
    for name, kaldi_name in (("mean", "mean.vec"), ("lda", "transform.mat"), ("plda", "plda")):
        convert_plda.main(["--to-kaldi", str(tmp_path / f"{name}.npz"), str(tmp_path / kaldi_name)])

    keys = [f"t{i}" for i in range(6)]
    test_rows = synthetic_plda_data(rng, 3, 2, dim=10)[0]  # three speakers, two utterances each
    with ArchiveWriter(f"ark,scp:{tmp_path}/v.ark,{tmp_path}/v.scp") as writer:
        for key, row in zip(keys, test_rows):
            writer[key] = row.astype(np.float32)
    pairs = [(a, b) for a in range(6) for b in range(6) if a < b]
    (tmp_path / "trials").write_text("".join(f"{keys[a]} {keys[b]}\n" for a, b in pairs))
    score_plda.main([f"--mean={tmp_path}/mean.npz", f"--lda={tmp_path}/lda.npz", str(tmp_path / "plda.npz"),
                     f"scp:{tmp_path}/v.scp", f"scp:{tmp_path}/v.scp", str(tmp_path / "trials"), str(tmp_path / "scores")])
    ours = read_scores(str(tmp_path / "scores"))[2]

    def kaldi_file(name):
        return parse_kaldi((tmp_path / name).read_bytes(), name)

    mean_vec, transform_mat, plda_objects = kaldi_file("mean.vec")[0], kaldi_file("transform.mat")[0], kaldi_file("plda")
    vectors32 = test_rows.astype(np.float32).astype(np.float64)
    expected = [kaldi_pipeline_score(mean_vec, transform_mat, plda_objects, vectors32[a], vectors32[b]) for a, b in pairs]
    np.testing.assert_allclose(ours, expected, rtol=1e-7, atol=1e-7)
    assert np.std(expected) > 0.5  # scores that differ, so the comparison means something


def test_mean_and_lda_round_trip(tmp_path):
    from sidkd.backend.vectors import load_mean, save_mean

    rng = np.random.default_rng(4)
    save_mean(str(tmp_path / "mean.npz"), rng.normal(size=5), 10)
    Lda(rng.normal(size=(3, 5)), rng.normal(size=3), np.arange(5.0)).save(str(tmp_path / "lda.npz"))
    for name in ("mean", "lda"):
        for binary in ("false", "true"):
            convert_plda.main(["--to-kaldi", f"--binary={binary}", str(tmp_path / f"{name}.npz"), str(tmp_path / "k")])
            convert_plda.main(["--from-kaldi", str(tmp_path / "k"), str(tmp_path / f"back_{name}.npz")])
            if name == "mean":
                np.testing.assert_array_equal(load_mean(str(tmp_path / "back_mean.npz")), load_mean(str(tmp_path / "mean.npz")))
            else:
                a, b = Lda.load(str(tmp_path / "lda.npz")), Lda.load(str(tmp_path / "back_lda.npz"))
                np.testing.assert_array_equal(a.matrix, b.matrix)
                np.testing.assert_array_equal(a.offset, b.offset)
