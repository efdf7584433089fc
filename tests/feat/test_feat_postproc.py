"""VAD, sliding CMN and deltas against per-frame loops written out from Kaldi's definitions."""

import numpy as np
import pytest

from sidkd.errors import DataError
from sidkd.feat import (
    SlidingCmvnOptions,
    VadOptions,
    add_deltas,
    apply_cmvn_sliding,
    compute_vad,
    select_voiced_frames,
)


def vad_by_definition(log_energy, threshold, mean_scale, context, proportion):
    n = len(log_energy)
    limit = threshold + mean_scale * sum(log_energy) / n
    out = []
    for t in range(n):
        loud = total = 0
        for u in range(t - context, t + context + 1):
            if 0 <= u < n:
                total += 1
                loud += log_energy[u] > limit
        out.append(1.0 if loud >= total * proportion else 0.0)
    return np.array(out)


@pytest.mark.parametrize(
    "threshold,scale,context,proportion",
    [(5.0, 0.5, 0, 0.6), (5.5, 0.5, 2, 0.12), (9.0, 0.0, 3, 0.5), (-1.0, 1.0, 10, 0.9)],
)
def test_vad_matches_definition(threshold, scale, context, proportion):
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 300):
        feats = rng.normal(size=(n, 5))
        feats[:, 0] = rng.uniform(0, 20, size=n)
        opts = VadOptions(threshold, scale, context, proportion)
        got = compute_vad(feats, opts)
        assert got.dtype == np.float32 and got.shape == (n,)
        want = vad_by_definition(list(feats[:, 0]), threshold, scale, context, proportion)
        assert np.array_equal(got, want)


def test_vad_empty_and_bad_shape():
    assert compute_vad(np.zeros((0, 3))).shape == (0,)
    with pytest.raises(DataError):
        compute_vad(np.zeros(5))


def test_select_voiced_frames():
    feats = np.arange(12, dtype=np.float32).reshape(6, 2)
    vad = np.array([1, 0, 0, 1, 1, 0], dtype=np.float32)
    assert np.array_equal(select_voiced_frames(feats, vad), feats[[0, 3, 4]])
    with pytest.raises(DataError, match="VAD has 5 frames"):
        select_voiced_frames(feats, vad[:5])


def cmvn_by_definition(x, window, min_window, center, norm_vars):
    """Frame by frame, Kaldi's window rule, then the window statistics summed directly."""
    n, dim = x.shape
    out = np.zeros_like(x, dtype=np.float64)
    for t in range(n):
        if center:
            start = t - window // 2
            end = start + window
        else:
            start = t - window
            end = t + 1
        if start < 0:
            end -= start
            start = 0
        if not center and end > t:
            end = max(t + 1, min_window)
        if end > n:
            start -= end - n
            end = n
            if start < 0:
                start = 0
        frames = x[start:end].astype(np.float64)
        mean = frames.sum(axis=0) / len(frames)
        row = x[t] - mean
        if norm_vars:
            if len(frames) == 1:
                row = np.zeros(dim)
            else:
                var = (frames**2).sum(axis=0) / len(frames) - mean**2
                row = row / np.sqrt(np.maximum(var, 1e-10))
        out[t] = row
    return out


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("norm_vars", [False, True])
@pytest.mark.parametrize("window,min_window", [(300, 100), (7, 3), (10, 20), (1, 1)])
def test_cmvn_sliding_matches_definition(center, norm_vars, window, min_window):
    rng = np.random.default_rng(2)
    opts = SlidingCmvnOptions(window, min_window, center, norm_vars)
    for n in (1, 2, 5, 9, 150, 640):
        x = (rng.normal(size=(n, 4)) * [1, 3, 10, 0.1] + [50, -20, 0, 5]).astype(np.float32)
        got = apply_cmvn_sliding(x, opts)
        want = cmvn_by_definition(x, window, min_window, center, norm_vars)
        assert got.shape == x.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=2e-4, rtol=1e-4)


def deltas_by_definition(x, order, window):
    """Kaldi's DeltaFeatures: order-k coefficients convolve order-(k-1) ones with j/sum(j^2)."""
    scales = [[1.0]]
    norm = sum(j * j for j in range(-window, window + 1))
    for _ in range(order):
        prev = scales[-1]
        prev_half = (len(prev) - 1) // 2
        cur = [0.0] * (len(prev) + 2 * window)
        for j in range(-window, window + 1):
            for k in range(-prev_half, prev_half + 1):
                cur[j + k + prev_half + window] += j * prev[k + prev_half] / norm
        scales.append(cur)
    n, dim = x.shape
    out = np.zeros((n, dim * (order + 1)))
    for t in range(n):
        for i, taps in enumerate(scales):
            half = (len(taps) - 1) // 2
            for j in range(-half, half + 1):
                u = min(max(t + j, 0), n - 1)
                out[t, i * dim : (i + 1) * dim] += taps[j + half] * x[u]
    return out


@pytest.mark.parametrize("order,window", [(2, 2), (1, 3), (3, 1), (0, 2)])
def test_deltas_match_definition(order, window):
    rng = np.random.default_rng(3)
    for n in (1, 3, 40):
        x = rng.normal(size=(n, 3)).astype(np.float32)
        got = add_deltas(x, order, window)
        assert got.shape == (n, 3 * (order + 1))
        np.testing.assert_allclose(got, deltas_by_definition(x, order, window), atol=1e-5)


def test_deltas_of_a_ramp():
    # Closed form: away from the edges the delta of a ramp is its slope, the delta-delta zero.
    x = np.arange(20, dtype=np.float32)[:, None] * 0.5
    out = add_deltas(x, 2, 2)
    np.testing.assert_allclose(out[4:-4, 1], 0.5, atol=1e-6)
    np.testing.assert_allclose(out[4:-4, 2], 0.0, atol=1e-6)
