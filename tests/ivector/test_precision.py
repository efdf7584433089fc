"""The default float32 path of the UBM and extractor statistics against the all-double path, on
data of the recipe's scale (72-dim features with MFCC-like spreads, 64 Gaussians, 300-frame
utterances). Tolerances are stated per quantity: float32 keeps ~7 digits per product; sums over
chunks and jobs are float64 in both paths, so the differences stay at the single-product level."""

import numpy as np
import pytest

from sidkd.gmm import DiagGmm, DiagGmmStats, FullGmm, FullGmmStats, estimate_diag, estimate_full
from sidkd.ivector import IvectorExtractor, iter_utterance_stats

C, D = 64, 72


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(11)
    spread = np.linspace(8.0, 0.5, D)  # c0-like dimensions wide, high cepstra and deltas narrow
    centres = rng.standard_normal((C, D)) * spread
    utts = []
    for u in range(30):
        comp = rng.integers(0, C, 300)
        x = centres[comp] + rng.standard_normal((300, D)) * spread * 0.5
        utts.append((f"u{u:02d}", x.astype(np.float32)))  # archives hold float32
    diag = DiagGmm(np.full(C, 1.0 / C), centres, (spread * 0.6) ** 2 * np.ones((C, 1)))
    frames = np.concatenate([x for _, x in utts])
    full = FullGmm.from_diag(diag)
    stats = FullGmmStats.zeros(C, D)
    full.accumulate(frames, diag.gselect(frames, 10), stats, dtype=np.float64)
    full = estimate_full(full, stats)  # full covariances with real correlations
    return utts, frames, diag, full


def test_diag_em_float32_matches_float64(corpus):
    _, frames, diag, _ = corpus
    s32, s64 = DiagGmmStats.zeros(C, D), DiagGmmStats.zeros(C, D)
    diag.accumulate(frames, s32)
    diag.accumulate(frames, s64, dtype=np.float64)
    np.testing.assert_allclose(diag.component_logliks(frames), diag.component_logliks(frames, dtype=np.float64),
                               rtol=1e-5, atol=2e-3)
    assert s32.loglik == pytest.approx(s64.loglik, rel=1e-6)
    np.testing.assert_allclose(s32.occupancy, s64.occupancy, rtol=1e-4, atol=1e-3)
    m32, _ = estimate_diag(diag, s32)
    m64, _ = estimate_diag(diag, s64)
    np.testing.assert_allclose(m32.means, m64.means, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(m32.variances, m64.variances, rtol=1e-4)


def test_gselect_float32_agrees_with_float64(corpus):
    _, frames, diag, _ = corpus
    g32 = np.sort(diag.gselect(frames, 20, sort=False), axis=1)
    g64 = np.sort(diag.gselect(frames, 20, sort=False, dtype=np.float64), axis=1)
    # a selection can only differ where the 20th and 21st Gaussians are within float32 rounding
    assert np.mean(np.all(g32 == g64, axis=1)) > 0.999


def test_full_em_float32_matches_float64(corpus):
    _, frames, diag, full = corpus
    gsel = diag.gselect(frames, 20, dtype=np.float64)
    s32, s64 = FullGmmStats.zeros(C, D), FullGmmStats.zeros(C, D)
    full.accumulate(frames, gsel, s32)
    full.accumulate(frames, gsel, s64, dtype=np.float64)
    np.testing.assert_allclose(full.selected_logliks(frames, gsel), full.selected_logliks(frames, gsel, dtype=np.float64),
                               rtol=1e-5, atol=5e-3)
    assert s32.loglik == pytest.approx(s64.loglik, rel=1e-6)
    np.testing.assert_allclose(s32.occupancy, s64.occupancy, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(s32.second, s64.second, rtol=1e-4, atol=1e-2 * np.abs(s64.second).max() * 1e-4)
    m32, m64 = estimate_full(full, s32), estimate_full(full, s64)
    np.testing.assert_allclose(m32.means, m64.means, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(m32.covars, m64.covars, rtol=1e-3, atol=1e-4 * np.abs(m64.covars).max())


def test_ivectors_from_float32_stats_match_float64(corpus):
    utts, _, diag, full = corpus
    second32, second64 = np.zeros((C, D, D)), np.zeros((C, D, D))
    st32 = list(iter_utterance_stats(utts, diag, full, num_gselect=20, min_post=0.025, second=second32))
    st64 = list(iter_utterance_stats(utts, diag, full, num_gselect=20, min_post=0.025, second=second64,
                                     dtype=np.float64))
    g32, g64 = np.stack([g for _, g, _ in st32]), np.stack([g for _, g, _ in st64])
    f32, f64 = np.stack([f for _, _, f in st32]), np.stack([f for _, _, f in st64])
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(f32, f64, rtol=1e-4, atol=1e-3 * np.abs(f64).max() * 1e-2)
    np.testing.assert_allclose(second32, second64, rtol=1e-4, atol=1e-6 * np.abs(second64).max())
    extractor = IvectorExtractor.init_from_ubm(full, 20)
    iv32 = extractor.extract(g32.astype(np.float64), f32.astype(np.float64))
    iv64 = extractor.extract(g64, f64)
    cosine = np.sum(iv32 * iv64, axis=1) / np.linalg.norm(iv32, axis=1) / np.linalg.norm(iv64, axis=1)
    assert cosine.min() > 1 - 1e-6
    np.testing.assert_allclose(iv32, iv64, rtol=1e-3, atol=1e-3 * np.abs(iv64).max())
