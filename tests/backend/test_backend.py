"""LDA, PLDA, scorers and AS-norm against references written here (scipy, direct Gaussians, loops)."""

import numpy as np
import pytest
import scipy.linalg
from scipy.stats import multivariate_normal

from sidkd.backend.asnorm import as_norm, scorer_cohort_stats, top_n_stats
from sidkd.backend.lda import Lda, compute_lda
from sidkd.backend.plda import Plda, train_plda
from sidkd.backend.scoring import CosineScorer, PldaScorer, score_pairs
from sidkd.backend.vectors import VectorTable, length_normalize
from sidkd.errors import DataError


def random_spd(rng, dim, scale=1.0):
    a = rng.normal(size=(dim, dim))
    return scale * (a @ a.T / dim + 0.2 * np.eye(dim))


def draw_two_covariance(rng, mean, between, within, num_spk, utts_per_spk):
    dim = mean.size
    speakers = rng.multivariate_normal(np.zeros(dim), between, size=num_spk)
    counts = utts_per_spk if np.ndim(utts_per_spk) else np.full(num_spk, utts_per_spk)
    labels = np.repeat(np.arange(num_spk), counts)
    noise = rng.multivariate_normal(np.zeros(dim), within, size=labels.size)
    return mean + speakers[labels] + noise, labels


def test_lda_matches_generalized_eigenproblem():
    rng = np.random.default_rng(0)
    x, labels = draw_two_covariance(rng, rng.normal(size=6), random_spd(rng, 6, 3.0), random_spd(rng, 6), 30, rng.integers(2, 8, 30))
    lda = compute_lda(x, labels, dim=3, total_covariance_factor=0.0)
    # Reference: scatter matrices by explicit loops, scipy's generalized symmetric eigensolver.
    mean = x.mean(axis=0)
    s_w, s_b = np.zeros((6, 6)), np.zeros((6, 6))
    for spk in np.unique(labels):
        xs = x[labels == spk]
        m = xs.mean(axis=0)
        s_w += (xs - m).T @ (xs - m)
        s_b += len(xs) * np.outer(m - mean, m - mean)
    s_w /= len(x)
    s_b /= len(x)
    values, vectors = scipy.linalg.eigh(s_b, s_w)  # vᵀ S_w v = 1
    reference = vectors[:, ::-1][:, :3].T
    signs = np.sign(np.sum(lda.matrix * reference, axis=1))
    np.testing.assert_allclose(lda.matrix * signs[:, None], reference, atol=1e-8)
    np.testing.assert_allclose(lda.eigenvalues[:3] - 1.0, values[::-1][:3], atol=1e-8)
    out = lda.apply(x)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-10)
    # total-covariance factor 1: the output total covariance is the identity.
    lda_t = compute_lda(x, labels, dim=3, total_covariance_factor=1.0)
    np.testing.assert_allclose(np.cov(lda_t.apply(x).T, bias=True), np.eye(3), atol=1e-8)


def test_lda_save_load_and_bad_dim(tmp_path):
    rng = np.random.default_rng(1)
    x, labels = draw_two_covariance(rng, np.zeros(4), np.eye(4), np.eye(4), 10, 3)
    lda = compute_lda(x, labels, dim=2)
    lda.save(str(tmp_path / "lda.npz"))
    again = Lda.load(str(tmp_path / "lda.npz"))
    np.testing.assert_array_equal(again.matrix, lda.matrix)
    with pytest.raises(DataError, match="sidkd-plda"):
        Plda.load(str(tmp_path / "lda.npz"))
    with pytest.raises(DataError, match="dimension mismatch"):
        lda.apply(np.zeros((2, 5)))
    with pytest.raises(DataError, match="LDA dimension"):
        compute_lda(x, labels, dim=5)


def test_plda_em_recovers_covariances():
    rng = np.random.default_rng(2)
    dim = 4
    between, within, mean = random_spd(rng, dim, 2.0), random_spd(rng, dim, 0.5), rng.normal(size=dim)
    x, labels = draw_two_covariance(rng, mean, between, within, 1500, rng.integers(4, 12, 1500))
    history = []
    plda = train_plda(x, labels, num_iters=25, history=history)
    assert all(b >= a - 1e-9 for a, b in zip(history, history[1:]))  # EM never decreases the likelihood
    assert np.linalg.norm(plda.between_covar - between) / np.linalg.norm(between) < 0.08
    assert np.linalg.norm(plda.within_covar - within) / np.linalg.norm(within) < 0.03
    np.testing.assert_allclose(plda.mean, mean, atol=0.15)
    a = plda.transform
    np.testing.assert_allclose(a @ plda.within_covar @ a.T, np.eye(dim), atol=1e-9)
    np.testing.assert_allclose(a @ plda.between_covar @ a.T, np.diag(plda.psi), atol=1e-9)
    assert np.all(np.diff(plda.psi) <= 0)


def test_plda_llr_equals_direct_gaussian_ratio(tmp_path):
    rng = np.random.default_rng(3)
    dim = 3
    plda = Plda.from_covariances(rng.normal(size=dim), random_spd(rng, dim, 2.0), random_spd(rng, dim))
    plda.save(str(tmp_path / "plda.npz"))
    plda = Plda.load(str(tmp_path / "plda.npz"))
    b, w, m = plda.between_covar, plda.within_covar, plda.mean
    x = rng.normal(size=(12, dim)) * 1.5 + m
    groups = [np.array([0]), np.array([1, 2]), np.array([3, 4, 5, 6]), np.array([7])]
    tests = x[8:]
    scorer = PldaScorer(plda, length_norm=False, normalize_length=False)
    enrolled = scorer.enrol(scorer.prepare(x), groups)
    got = scorer.score(enrolled, scorer.test_side(scorer.prepare(tests)))
    for i, g in enumerate(groups):
        n = g.size
        x_bar = x[g].mean(axis=0)
        same = np.block([[b + w / n, b], [b, b + w]])
        diff = np.block([[b + w / n, np.zeros_like(b)], [np.zeros_like(b), b + w]])
        for j, t in enumerate(tests):
            joint = np.concatenate([x_bar, t])
            expected = multivariate_normal(np.concatenate([m, m]), same).logpdf(joint) - \
                multivariate_normal(np.concatenate([m, m]), diff).logpdf(joint)
            assert got[i, j] == pytest.approx(expected, abs=1e-9)


def test_plda_normalize_length_matches_expected_norm():
    rng = np.random.default_rng(4)
    plda = Plda.from_covariances(np.zeros(5), random_spd(rng, 5, 2.0), random_spd(rng, 5))
    u = rng.normal(size=(6, 5))
    n = np.array([1, 2, 3, 1, 5, 8])
    scaled = plda.normalize_length(u, n)
    for row, k in zip(range(6), n):
        # Expected covariance of an n-average in PLDA space is Ψ + I/n; the squared Mahalanobis norm is dim.
        assert np.sum(scaled[row] ** 2 / (plda.psi + 1.0 / k)) == pytest.approx(5.0)
        ratio = scaled[row] / u[row]
        assert np.allclose(ratio, ratio[0]) and ratio[0] > 0


def make_table(prefix, matrix):
    return VectorTable([f"{prefix}{i}" for i in range(len(matrix))], matrix, prefix)


def test_score_pairs_with_enrolment_matches_loop():
    rng = np.random.default_rng(5)
    dim = 6
    vectors = make_table("u", rng.normal(size=(20, dim)) + 0.3)
    mean = rng.normal(size=dim) * 0.1
    enrolment = {"spkA": ["u0", "u1", "u2"], "spkB": ["u3"], "spkC": ["u4", "u5"]}
    enroll = ["spkA", "spkB", "spkC", "spkA", "spkC", "spkB"] * 3
    test = [f"u{i}" for i in rng.integers(6, 20, len(enroll))]
    got = score_pairs(CosineScorer(mean), enroll, test, vectors, vectors, enrolment)
    for e, t, s in zip(enroll, test, got):
        units = [(vectors.matrix[vectors.index[u]] - mean) / np.linalg.norm(vectors.matrix[vectors.index[u]] - mean) for u in enrolment[e]]
        model = np.mean(units, axis=0)
        tv = vectors.matrix[vectors.index[t]] - mean
        assert s == pytest.approx(model @ tv / np.linalg.norm(model) / np.linalg.norm(tv))
    # PLDA with LDA + length norm: the n-aware score equals scoring the averaged transformed vector.
    labels = np.repeat(np.arange(10), 2)
    lda = compute_lda(vectors.matrix, labels, dim=4)
    plda = train_plda(length_normalize(lda.apply(vectors.matrix - mean)), labels, num_iters=3)
    scorer = PldaScorer(plda, mean, lda)
    got = score_pairs(scorer, enroll, test, vectors, vectors, enrolment)
    for e, t, s in zip(enroll, test, got):
        rows = vectors.rows(enrolment[e])
        u = plda.transform_vectors(length_normalize(lda.apply(vectors.matrix[rows] - mean))).mean(axis=0)
        u = plda.normalize_length(u[None], len(rows))
        v = plda.normalize_length(plda.transform_vectors(length_normalize(lda.apply(vectors.matrix[vectors.rows([t])] - mean))), 1)
        assert s == pytest.approx(plda.llr_matrix(u, len(rows), v)[0, 0], abs=1e-10)


def test_sparse_trials_score_as_each_pair_alone_and_as_the_dense_path(monkeypatch, caplog):
    """Sampled trials (a small share of all pairs) take the sparse path: each score equals the pair
    scored alone (cosine written out; PLDA's llr of the one pair) and the dense path's to 1e-12."""
    import logging

    import sidkd.backend.scoring as scoring

    caplog.set_level(logging.INFO)
    rng = np.random.default_rng(8)
    dim = 5
    vectors = make_table("u", rng.normal(size=(600, dim)) + 0.2)
    enroll = [f"u{i}" for i in range(600) for _ in range(3)]
    test = [f"u{j}" for j in rng.integers(0, 600, len(enroll))]
    mean = rng.normal(size=dim) * 0.1
    labels = np.repeat(np.arange(300), 2)
    plda = train_plda(length_normalize(vectors.matrix - mean), labels, num_iters=2)
    for scorer in (CosineScorer(mean), PldaScorer(plda, mean)):
        caplog.clear()
        got = score_pairs(scorer, enroll, test, vectors, vectors)
        assert "(sparse: each block against the test utterances its trials name)" in caplog.text
        for k in range(0, len(enroll), 97):
            e, t = (vectors.matrix[vectors.index[x]] - mean for x in (enroll[k], test[k]))
            if isinstance(scorer, CosineScorer):
                want = e @ t / np.linalg.norm(e) / np.linalg.norm(t)
            else:
                side = [plda.normalize_length(plda.transform_vectors(length_normalize(v[None])), 1) for v in (e, t)]
                want = plda.llr_matrix(side[0], 1, side[1])[0, 0]
            assert got[k] == pytest.approx(want, abs=1e-9)
        monkeypatch.setattr(scoring, "_SPARSE_SHARE", 0.0)
        dense = score_pairs(scorer, enroll, test, vectors, vectors)
        monkeypatch.undo()
        np.testing.assert_allclose(got, dense, rtol=1e-12, atol=1e-12)


def test_score_pairs_bad_input():
    rng = np.random.default_rng(6)
    vectors = make_table("u", rng.normal(size=(5, 3)))
    enroll = ["u0", "u1", "x1", "x2", "x3", "x4", "x5", "x6", "x7"]
    test = ["u2"] * len(enroll)
    with pytest.raises(DataError, match=r"no vector for 7 enrolment utterances.*x1 x2 x3 x4 x5 \.\.\."):
        score_pairs(CosineScorer(), enroll, test, vectors, vectors)
    with pytest.raises(DataError, match="dimension"):
        score_pairs(CosineScorer(), ["u0"], ["v0"], vectors, make_table("v", rng.normal(size=(2, 4))))
    with pytest.raises(DataError, match="no entry for 1 enrolment ids"):
        score_pairs(CosineScorer(), ["spkZ"], ["u0"], vectors, vectors, {"spkA": ["u1"]})
    with pytest.raises(DataError, match="dimension mismatch"):
        CosineScorer(np.zeros(4)).prepare(vectors.matrix)


def test_as_norm_against_loop():
    rng = np.random.default_rng(7)
    enrol_vecs, test_vecs, cohort_vecs = rng.normal(size=(7, 5)), rng.normal(size=(9, 5)), rng.normal(size=(40, 5))
    scorer = CosineScorer()
    enrolled = scorer.enrol(scorer.prepare(enrol_vecs), [np.array([i]) for i in range(7)])
    test_p, cohort_p = scorer.prepare(test_vecs), scorer.prepare(cohort_vecs)
    (em, es), (tm, ts) = scorer_cohort_stats(scorer, enrolled, test_p, cohort_p, top_n=10)
    raw = scorer.score(enrolled, test_p)
    got = as_norm(raw, em[:, None], es[:, None], tm[None, :], ts[None, :])

    def cos(a, b):
        return a @ b / np.linalg.norm(a) / np.linalg.norm(b)

    for i in range(7):
        e_top = sorted((cos(enrol_vecs[i], c) for c in cohort_vecs), reverse=True)[:10]
        for j in range(9):
            t_top = sorted((cos(test_vecs[j], c) for c in cohort_vecs), reverse=True)[:10]
            s = cos(enrol_vecs[i], test_vecs[j])
            expected = 0.5 * ((s - np.mean(e_top)) / np.std(e_top) + (s - np.mean(t_top)) / np.std(t_top))
            assert got[i, j] == pytest.approx(expected, abs=1e-10)
    # top-N larger than the cohort uses the whole cohort; blocks are consistent with one call.
    means, stds = top_n_stats(lambda rows: np.arange(5.0)[None, :] + rows[:, None], 3, 50)
    np.testing.assert_allclose(means, [2.0, 3.0, 4.0])
    np.testing.assert_allclose(stds, np.std(np.arange(5.0)))


def test_score_pairs_in_many_blocks_matches_one_block(monkeypatch):
    import sidkd.backend.scoring as scoring

    rng = np.random.default_rng(8)
    vectors = make_table("u", rng.normal(size=(30, 4)))
    enroll = [f"u{i}" for i in rng.integers(0, 30, 500)]
    test = [f"u{i}" for i in rng.integers(0, 30, 500)]
    whole = score_pairs(CosineScorer(), enroll, test, vectors, vectors)
    monkeypatch.setattr(scoring, "_BLOCK_ELEMENTS", 45)  # 1-2 enrolments per block
    np.testing.assert_allclose(score_pairs(CosineScorer(), enroll, test, vectors, vectors), whole, atol=1e-12)
    rows = vectors.rows(enroll), vectors.rows(test)
    units = vectors.matrix / np.linalg.norm(vectors.matrix, axis=1, keepdims=True)
    np.testing.assert_allclose(whole, np.sum(units[rows[0]] * units[rows[1]], axis=1), atol=1e-12)


def test_as_norm_of_a_cohort_with_equal_top_scores_is_finite_and_keeps_the_order():
    # separable tiny sets: every top cohort score equal, std 0 on both sides (gave inf - inf = NaN)
    raw = np.array([[10.5, 3.0, -2.0]])
    got = as_norm(raw, np.array([[10.5]]), np.array([[0.0]]), np.array([[10.5, 3.0, 3.0]]), np.zeros((1, 3)))
    assert np.all(np.isfinite(got)) and list(np.argsort(-got[0])) == [0, 1, 2]
    # a spread above the floor is used as it is
    assert as_norm(np.array([[2.0]]), 1.0, 0.5, 0.0, 2.0)[0, 0] == 0.5 * ((2 - 1) / 0.5 + 2 / 2)
