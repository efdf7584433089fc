"""sidkd.ivector against closed forms, numerical optimisation and a planted subspace."""

import numpy as np
import pytest
from scipy.linalg import block_diag, subspace_angles
from scipy.optimize import minimize
from scipy.stats import multivariate_normal

from sidkd.gmm import DiagGmm, FullGmm
from sidkd.ivector import (
    IvectorAcc,
    IvectorExtractor,
    estimate_extractor,
    iter_stats_batches,
    iter_utterance_stats,
    length_normalize,
    pack_stats,
    speaker_mean,
)


def random_spd(rng, d, scale=1.0):
    a = rng.standard_normal((d, d))
    return scale * (a @ a.T / d + 0.5 * np.eye(d))


def tiny_model(rng, c=3, d=2, r=3, offset=5.0):
    M = rng.standard_normal((c, d, r))
    covars = np.stack([random_spd(rng, d) for _ in range(c)])
    return IvectorExtractor(M, covars, offset)


def test_posterior_equals_stacked_closed_form_and_likelihood():
    rng = np.random.default_rng(0)
    model = tiny_model(rng)
    c, d, r, o = 3, 2, 3, 5.0
    align = np.array([0, 2, 2, 1, 0, 2, 1])
    x = rng.standard_normal((len(align), d)) * 3
    # direct: x = A w + e, e ~ N(0, blockdiag Σ), w ~ N(o e0, I)
    A = np.concatenate([model.M[k] for k in align])
    noise = block_diag(*[model.covars[k] for k in align])
    prior = np.zeros(r)
    prior[0] = o
    ni = np.linalg.inv(noise)
    prec = np.eye(r) + A.T @ ni @ A
    want_mean = np.linalg.solve(prec, prior + A.T @ ni @ x.ravel())
    post = np.eye(c)[align]
    gamma, first = post.sum(0), post.T @ x
    mean, cov, _, _ = model.posterior(gamma[None], first[None])
    np.testing.assert_allclose(mean[0], want_mean, rtol=1e-10)
    np.testing.assert_allclose(cov[0], np.linalg.inv(prec), rtol=1e-10)
    ivec = model.extract(gamma[None], first[None])[0]
    np.testing.assert_allclose(ivec, want_mean - prior, rtol=1e-10, atol=1e-12)
    # the objective is the marginal log-likelihood of the stacked frames
    acc = IvectorAcc.zeros(c, d, r)
    model.accumulate(gamma[None], first[None], acc)
    acc.second = np.einsum("tc,ti,tj->cij", post, x, x)
    want_ll = multivariate_normal(A @ prior, A @ A.T + noise).logpdf(x.ravel())
    assert model.log_likelihood(acc) == pytest.approx(want_ll, rel=1e-10)


def test_posterior_mean_with_soft_counts_is_the_map_point():
    rng = np.random.default_rng(1)
    model = tiny_model(rng, c=4, d=3, r=4)
    x = rng.standard_normal((9, 3))
    post = rng.dirichlet(np.ones(4), size=9)
    inv = np.linalg.inv(model.covars)

    def neg_log_post(w):
        prior = w.copy()
        prior[0] -= model.prior_offset
        resid = x[:, None, :] - np.einsum("cdr,r->cd", model.M, w)[None]  # (T, C, D)
        return 0.5 * prior @ prior + 0.5 * np.einsum("tc,tci,cij,tcj->", post, resid, inv, resid)

    best = minimize(neg_log_post, np.zeros(4), method="BFGS", options={"gtol": 1e-10}).x
    mean = model.posterior(post.sum(0)[None], (post.T @ x)[None])[0][0]
    np.testing.assert_allclose(mean, best, atol=1e-5)


def test_batched_accumulation_equals_one_batch():
    rng = np.random.default_rng(2)
    model = tiny_model(rng)
    gamma = rng.uniform(0, 5, (10, 3))
    first = rng.standard_normal((10, 3, 2))
    one, two = IvectorAcc.zeros(3, 2, 3), IvectorAcc.zeros(3, 2, 3)
    model.accumulate(gamma, first, one)
    model.accumulate(gamma[:4], first[:4], two)
    part = IvectorAcc.zeros(3, 2, 3)
    model.accumulate(gamma[4:], first[4:], part)
    two += part
    for name in ("gamma", "Y", "A_packed", "sum_w", "sum_wwt"):
        np.testing.assert_allclose(getattr(two, name), getattr(one, name), rtol=1e-10, atol=1e-12)
    assert two.utt_objective == pytest.approx(one.utt_objective, rel=1e-12)
    # A_c against a direct sum over utterances of γ_uc (P_u⁻¹ + ŵ_u ŵ_uᵀ)
    want = np.zeros((3, 3, 3))
    for u in range(10):
        mean, cov, _, _ = model.posterior(gamma[u:u + 1], first[u:u + 1])
        want += gamma[u][:, None, None] * (cov[0] + np.outer(mean[0], mean[0]))[None]
    np.testing.assert_allclose(one.A(), want, rtol=1e-10)


def planted_corpus(rng, c=4, d=5, r=3, utts=300, frames=60, offset=10.0):
    means = rng.standard_normal((c, d)) * 3
    T = rng.standard_normal((c, d, r)) * 1.5
    T[:, :, 0] = means / offset
    gammas, firsts, second = [], [], np.zeros((c, d, d))
    for _ in range(utts):
        w = rng.standard_normal(r)
        w[0] += offset
        align = rng.integers(0, c, frames)
        x = np.einsum("tdr,r->td", T[align], w) + rng.standard_normal((frames, d)) * np.sqrt(0.3)
        post = np.eye(c)[align]
        gammas.append(post.sum(0))
        firsts.append(post.T @ x)
        second += np.einsum("tc,ti,tj->cij", post, x, x)
    return T, np.array(gammas), np.array(firsts), second, means


def test_planted_subspace_is_recovered_and_objective_is_monotone():
    rng = np.random.default_rng(3)
    c, d, r = 4, 5, 3
    T, gammas, firsts, second, means = planted_corpus(rng, c, d, r)
    ubm = FullGmm(np.full(c, 1 / c), means, np.stack([np.eye(d)] * c))
    model = IvectorExtractor.init_from_ubm(ubm, r, prior_offset=100.0, seed=1)
    objectives, gains = [], []
    for _ in range(12):
        acc = IvectorAcc.zeros(c, d, r)
        for start in range(0, len(gammas), 64):
            model.accumulate(gammas[start:start + 64], firsts[start:start + 64], acc)
        acc.second = second
        model, info = estimate_extractor(model, acc, gaussian_min_count=10)
        objectives.append(info["objective"])
        gains.append(info["aux_gain"])
    assert all(b >= a - 1e-6 * abs(a) for a, b in zip(objectives, objectives[1:]))
    assert min(gains) >= -1e-6  # float noise on sums of ~1e5
    angles = np.degrees(subspace_angles(T.reshape(c * d, r), model.M.reshape(c * d, r)))
    assert angles.max() < 5.0
    np.testing.assert_allclose(model.covars, np.stack([0.3 * np.eye(d)] * c), atol=0.06)
    # after the prior update the training i-vectors are roughly standard normal
    ivecs = model.extract(gammas, firsts)
    assert np.abs(ivecs.mean(0)).max() < 0.2
    assert np.abs(np.cov(ivecs.T) - np.eye(r)).max() < 0.25


def test_prior_update_is_a_reparametrisation():
    rng = np.random.default_rng(4)
    c, d, r = 3, 4, 3
    T, gammas, firsts, second, means = planted_corpus(rng, c, d, r, utts=40, frames=20)
    model = IvectorExtractor(T + 0.1 * rng.standard_normal(T.shape), np.stack([np.eye(d)] * c), 10.0)
    acc = IvectorAcc.zeros(c, d, r)
    model.accumulate(gammas, firsts, acc)
    acc.second = second
    plain, _ = estimate_extractor(model, acc, update_prior=False)
    moved, info = estimate_extractor(model, acc, update_prior=True)
    m = acc.sum_w / acc.num_utts
    K = acc.sum_wwt / acc.num_utts - np.outer(m, m)
    e0 = np.eye(r)[0] * info["prior_offset"]
    # the supervector distribution N(M m̄, M K Mᵀ) is the same as N(M' o e0, M' M'ᵀ)
    for k in range(c):
        np.testing.assert_allclose(moved.M[k] @ e0, plain.M[k] @ m, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(moved.M[k] @ moved.M[k].T, plain.M[k] @ K @ plain.M[k].T, rtol=1e-9, atol=1e-10)
    # and the prior update is itself an improvement: the next likelihood is higher
    acc_plain, acc_moved = IvectorAcc.zeros(c, d, r), IvectorAcc.zeros(c, d, r)
    plain.accumulate(gammas, firsts, acc_plain)
    moved.accumulate(gammas, firsts, acc_moved)
    acc_plain.second = acc_moved.second = second
    assert moved.log_likelihood(acc_moved) >= plain.log_likelihood(acc_plain) - 1e-8


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-7), (np.float32, 1e-5)])
def test_utterance_stats_match_bruteforce(dtype, rtol):
    rng = np.random.default_rng(5)
    c, d = 4, 3
    diag = DiagGmm(np.full(c, 0.25), rng.standard_normal((c, d)) * 2, np.ones((c, d)))
    full = FullGmm(np.full(c, 0.25), diag.means, np.stack([random_spd(rng, d) for _ in range(c)]))
    utts = [("u1", rng.standard_normal((13, d)) * 2), ("u2", rng.standard_normal((4, d)) * 2)]
    second = np.zeros((c, d, d))
    got = list(iter_utterance_stats(utts, diag, full, num_gselect=c, min_post=0.0, second=second, max_frames=100,
                                    dtype=dtype))
    all_x = np.concatenate([u[1] for u in utts])
    dens = np.stack([0.25 * multivariate_normal(full.means[k], full.covars[k]).pdf(all_x) for k in range(c)], 1)
    post = dens / dens.sum(1, keepdims=True)
    np.testing.assert_allclose(got[0][1], post[:13].sum(0), rtol=rtol)
    np.testing.assert_allclose(got[1][2], post[13:].T @ utts[1][1], rtol=rtol, atol=rtol)
    np.testing.assert_allclose(second, np.einsum("tc,ti,tj->cij", post, all_x, all_x), rtol=rtol, atol=rtol)
    # with selection and pruning every frame still carries total posterior 1
    pruned = list(iter_utterance_stats(utts, diag, full, num_gselect=2, min_post=0.3, dtype=dtype))
    assert [k for k, _, _ in pruned] == ["u1", "u2"]
    np.testing.assert_allclose([g.sum() for _, g, _ in pruned], [13, 4], rtol=rtol)
    batches = list(iter_stats_batches(((k, pack_stats(g, f)) for k, g, f in got), c, d, batch_size=1))
    np.testing.assert_allclose(batches[1][2][0], got[1][2], rtol=1e-6)


def test_speaker_mean_and_length_norm():
    v = np.array([[3.0, 4.0], [0.0, 2.0]])
    np.testing.assert_allclose(np.linalg.norm(length_normalize(v), axis=1), np.sqrt(2))
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    avg = unit.mean(0)
    np.testing.assert_allclose(speaker_mean(v), avg / np.linalg.norm(avg) * np.sqrt(2))
