"""sidkd.gmm on synthetic data with planted structure, checked against scipy / brute force."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from sidkd.errors import DataError
from sidkd.gmm import (
    DiagGmm,
    DiagGmmStats,
    FullGmm,
    FullGmmStats,
    ReservoirSampler,
    estimate_diag,
    estimate_full,
    floor_covariance,
    init_diag_gmm,
    iter_chunks,
    prune_posteriors,
    top_n,
)


def planted_mixture(rng, num=4, dim=3, per=600, spread=12.0, full=False):
    means = rng.standard_normal((num, dim)) * spread
    parts, covs = [], []
    for c in range(num):
        if full:
            a = rng.standard_normal((dim, dim)) * 0.6
            cov = a @ a.T + 0.3 * np.eye(dim)
        else:
            cov = np.diag(rng.uniform(0.3, 1.5, dim))
        covs.append(cov)
        parts.append(rng.multivariate_normal(means[c], cov, size=per))
    x = np.concatenate(parts)
    return x[rng.permutation(len(x))], means, np.array(covs)


# (dtype, tolerance): the all-double path to rounding, the default float32 path to what single
# precision allows on values of this size (|log-likelihood| < 100: float32 spacing ~1e-5 there).
PRECISIONS = [(np.float64, 1e-9), (np.float32, 2e-4)]


@pytest.mark.parametrize("dtype,tol", PRECISIONS)
def test_diag_logliks_match_scipy(dtype, tol):
    rng = np.random.default_rng(1)
    gmm = DiagGmm(np.array([0.2, 0.5, 0.3]), rng.standard_normal((3, 4)), rng.uniform(0.2, 2.0, (3, 4)))
    x = rng.standard_normal((7, 4)) * 2
    want = np.stack([np.log(gmm.weights[c]) + multivariate_normal(gmm.means[c], np.diag(gmm.variances[c])).logpdf(x)
                     for c in range(3)], axis=1)
    got = gmm.component_logliks(x, dtype=dtype)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=0, atol=tol)


def test_top_n_matches_full_sort_with_and_without_ties():
    scores = np.random.default_rng(2).standard_normal((50, 9))
    np.testing.assert_array_equal(top_n(scores, 4), np.argsort(-scores, axis=1)[:, :4])
    unsorted = top_n(scores, 4, sort=False)
    np.testing.assert_array_equal(np.sort(unsorted, axis=1), np.sort(np.argsort(-scores, axis=1)[:, :4], axis=1))
    # exact ties at the n-th value: still exactly n indices per row, all among the largest
    tied = np.round(scores, 0)
    got = top_n(tied, 4, sort=False)
    assert got.shape == (50, 4) and all(len(set(row)) == 4 for row in got)
    kth = -np.sort(-tied, axis=1)[:, 3]
    assert np.all(np.take_along_axis(tied, got, axis=1) >= kth[:, None])
    np.testing.assert_array_equal(top_n(scores, 20), np.argsort(-scores, axis=1))  # n >= k: all, sorted


def test_init_and_em_recover_separated_means_monotone():
    rng = np.random.default_rng(3)
    x, means, _ = planted_mixture(rng, num=4, dim=3)
    gmm = init_diag_gmm(x, 4, num_iters=10, seed=0)
    lls = []
    for _ in range(4):
        stats = DiagGmmStats.zeros(4, 3)
        gmm.accumulate(x, stats)
        lls.append(stats.loglik / stats.num_frames)
        gmm, reseeded = estimate_diag(gmm, stats)
        assert reseeded == 0
    assert all(b >= a - 1e-9 for a, b in zip(lls, lls[1:]))
    # each planted mean has a learned mean nearby, one-to-one
    dist = np.linalg.norm(means[:, None, :] - gmm.means[None], axis=2)
    assert sorted(dist.argmin(axis=1).tolist()) == [0, 1, 2, 3]
    assert dist.min(axis=1).max() < 0.3
    np.testing.assert_allclose(gmm.weights, 0.25, atol=0.03)


def test_em_monotone_on_overlapping_data_and_variance_floor():
    rng = np.random.default_rng(4)
    x, _, _ = planted_mixture(rng, num=6, dim=2, per=200, spread=1.5)
    x[:50, 1] = 0.25  # a degenerate direction: the floor must hold it
    gmm = init_diag_gmm(x, 8, num_iters=6, min_variance=0.01)
    prev = -np.inf
    for _ in range(6):
        stats = DiagGmmStats.zeros(8, 2)
        gmm.accumulate(x, stats)
        ll = stats.loglik / stats.num_frames
        assert ll >= prev - 1e-9
        prev = ll
        gmm, _ = estimate_diag(gmm, stats, min_variance=0.01, min_count=0.0)
        assert gmm.variances.min() >= 0.01 - 1e-15


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-7), (np.float32, 2e-5)])
def test_em_stats_match_bruteforce(dtype, rtol):
    rng = np.random.default_rng(5)
    gmm = DiagGmm(np.array([0.4, 0.6]), rng.standard_normal((2, 3)), rng.uniform(0.5, 1.5, (2, 3)))
    x = rng.standard_normal((40, 3))
    stats = DiagGmmStats.zeros(2, 3)
    gmm.accumulate(x, stats, dtype=dtype)
    dens = np.stack([gmm.weights[c] * multivariate_normal(gmm.means[c], np.diag(gmm.variances[c])).pdf(x)
                     for c in range(2)], axis=1)
    post = dens / dens.sum(axis=1, keepdims=True)
    assert stats.first.dtype == np.float64  # sums are kept in double whatever the compute dtype
    np.testing.assert_allclose(stats.occupancy, post.sum(0), rtol=rtol)
    np.testing.assert_allclose(stats.first, post.T @ x, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(stats.second, post.T @ x**2, rtol=rtol)
    np.testing.assert_allclose(stats.loglik, np.log(dens.sum(1)).sum(), rtol=rtol)


def test_starved_component_is_reseeded():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((300, 2))
    gmm = DiagGmm(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [1e3, 1e3]]), np.ones((2, 2)))
    stats = DiagGmmStats.zeros(2, 2)
    gmm.accumulate(x, stats)
    new, reseeded = estimate_diag(gmm, stats)
    assert reseeded == 1
    assert np.all(np.abs(new.means) < 2.0) and np.isclose(new.weights.sum(), 1.0)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-8), (np.float32, 1e-3)])
def test_full_selected_logliks_match_scipy(dtype, tol):
    rng = np.random.default_rng(7)
    _, means, covs = planted_mixture(rng, num=5, dim=4, per=1, full=True)
    full = FullGmm(np.full(5, 0.2), means, covs)
    x = rng.standard_normal((30, 4)) * 5
    gsel = np.stack([rng.permutation(5)[:3] for _ in range(30)])
    got = full.selected_logliks(x, gsel, dtype=dtype)
    for t in range(30):
        for k in range(3):
            c = gsel[t, k]
            want = np.log(0.2) + multivariate_normal(means[c], covs[c]).logpdf(x[t])
            assert got[t, k] == pytest.approx(want, abs=tol, rel=0), (t, k, want)


def test_full_em_with_all_components_is_exact_em_and_monotone_with_gselect():
    rng = np.random.default_rng(8)
    x, _, _ = planted_mixture(rng, num=4, dim=3, per=150, spread=3.0, full=True)
    diag = init_diag_gmm(x, 4, num_iters=4)
    full = FullGmm.from_diag(diag)
    # with every component selected the stats are plain EM: compare with a direct computation
    gsel = np.tile(np.arange(4), (len(x), 1))
    stats = FullGmmStats.zeros(4, 3)
    full.accumulate(x, gsel, stats, dtype=np.float64)
    dens = np.stack([full.weights[c] * multivariate_normal(full.means[c], full.covars[c]).pdf(x) for c in range(4)], 1)
    post = dens / dens.sum(1, keepdims=True)
    np.testing.assert_allclose(stats.occupancy, post.sum(0))
    np.testing.assert_allclose(stats.second, np.einsum("tc,ti,tj->cij", post, x, x), rtol=1e-9)
    new = estimate_full(full, stats, min_variance=1e-6, min_count=0)
    mu = post.T @ x / post.sum(0)[:, None]
    np.testing.assert_allclose(new.means, mu)
    cov = np.einsum("tc,tci,tcj->cij", post, x[:, None] - mu, x[:, None] - mu) / post.sum(0)[:, None, None]
    np.testing.assert_allclose(new.covars, cov, rtol=1e-8, atol=1e-10)
    # with top-2 selection from the diagonal model the (selected) likelihood still rises
    gsel = diag.gselect(x, 2)
    prev = -np.inf
    for _ in range(5):
        stats = FullGmmStats.zeros(4, 3)
        full.accumulate(x, gsel, stats, dtype=np.float64)
        assert stats.loglik >= prev - 1e-7
        prev = stats.loglik
        full = estimate_full(full, stats, min_count=0)


def test_prune_posteriors():
    post = np.array([[0.6, 0.38, 0.02], [0.34, 0.33, 0.33]])
    got = prune_posteriors(post, 0.025)
    np.testing.assert_allclose(got[0], [0.6 / 0.98, 0.38 / 0.98, 0.0])
    np.testing.assert_allclose(got[1], post[1])
    np.testing.assert_allclose(prune_posteriors(post, 0.5), [[1, 0, 0], [1, 0, 0]])


def test_floor_covariance():
    rng = np.random.default_rng(9)
    a = rng.standard_normal((3, 3))
    floor = a @ a.T + np.eye(3)
    low = 0.01 * np.eye(3)
    out = floor_covariance(low, floor)
    assert np.linalg.eigvalsh(out - floor).min() > -1e-9
    big = 10 * floor + np.eye(3)
    np.testing.assert_allclose(floor_covariance(big, floor), big, rtol=1e-9)


def test_reservoir_sampler_is_bounded_and_uniform():
    sampler = ReservoirSampler(500, 1, seed=0)
    for start in range(0, 10000, 333):
        sampler.add(np.arange(start, min(start + 333, 10000), dtype=np.float32)[:, None])
    kept = sampler.frames()[:, 0]
    assert kept.shape == (500,) and len(np.unique(kept)) == 500
    assert abs(kept.mean() - 4999.5) < 4 * 2887 / np.sqrt(500)  # 4 sigma of a uniform mean


def test_model_files_roundtrip_without_pickle(tmp_path):
    rng = np.random.default_rng(10)
    gmm = DiagGmm(np.array([0.3, 0.7]), rng.standard_normal((2, 3)), np.ones((2, 3)))
    gmm.save(str(tmp_path / "a.dubm"))
    again = DiagGmm.load(str(tmp_path / "a.dubm"))
    np.testing.assert_array_equal(again.means, gmm.means)
    full = FullGmm.from_diag(gmm)
    full.save(str(tmp_path / "a.ubm"))
    np.testing.assert_array_equal(FullGmm.load(str(tmp_path / "a.ubm")).covars, full.covars)
    with pytest.raises(DataError, match="expected a 'sidkd-diag-gmm'"):
        DiagGmm.load(str(tmp_path / "a.ubm"))


def test_iter_chunks_subsample_and_errors():
    utts = [("a", np.ones((5, 2))), ("b", np.zeros((0, 2))), ("c", np.ones((7, 2)))]
    chunks = list(iter_chunks(utts, 2, max_frames=3, subsample=2))
    assert [c[0] for c in chunks] == [["a"], ["c"]]
    assert [c[2].shape[0] for c in chunks] == [3, 4]
    with pytest.raises(DataError, match="bad"):
        list(iter_chunks([("bad", np.ones((3, 5)))], 2))
