import numpy as np
import torch

from sidkd.nnet.models import build_model
from sidkd.nnet.pooling import AttentiveStatsPool, StatsPool


def test_stats_pool_matches_numpy():
    torch.manual_seed(0)
    h = torch.randn(3, 5, 17, dtype=torch.float64)
    out = StatsPool(5)(h).numpy()
    ref = np.concatenate([h.numpy().mean(-1), h.numpy().std(-1)], axis=1)
    assert out.shape == (3, 10)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


def test_attentive_pool_written_out_by_definition():
    torch.manual_seed(1)
    pool = AttentiveStatsPool(4, attention_dim=6).double()
    h = torch.randn(2, 4, 9, dtype=torch.float64)
    out = pool(h).detach().numpy()
    W = pool.hidden.weight[:, :, 0].detach().numpy()
    b = pool.hidden.bias.detach().numpy()
    v = pool.score.weight[:, :, 0].detach().numpy()
    k = pool.score.bias.detach().numpy()
    for i in range(2):
        hi = h[i].numpy()  # (C, T)
        e = v @ np.tanh(W @ hi + b[:, None]) + k[:, None]  # (C, T)
        alpha = np.exp(e - e.max(1, keepdims=True))
        alpha /= alpha.sum(1, keepdims=True)
        mu = (alpha * hi).sum(1)
        sigma = np.sqrt((alpha * hi**2).sum(1) - mu**2)
        np.testing.assert_allclose(out[i], np.concatenate([mu, sigma]), rtol=1e-8, atol=1e-8)


def test_attentive_pool_uniform_attention_equals_stats_pool():
    pool = AttentiveStatsPool(4, attention_dim=3)
    torch.nn.init.zeros_(pool.score.weight)  # constant scores: α = 1/T
    h = torch.randn(2, 4, 11)
    torch.testing.assert_close(pool(h), StatsPool(4)(h), rtol=1e-5, atol=1e-5)


def test_pooling_gradients_reach_input_and_attention():
    torch.manual_seed(2)
    pool = AttentiveStatsPool(4, attention_dim=3).double()
    h = torch.randn(2, 4, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: pool(x), (h,))
    pool(h).sum().backward()
    assert pool.hidden.weight.grad.abs().sum() > 0 and pool.score.weight.grad.abs().sum() > 0
    # a constant channel: σ is floored, the gradient stays finite
    hc = torch.ones(1, 4, 5, requires_grad=True)
    StatsPool(4)(hc).sum().backward()
    assert torch.isfinite(hc.grad).all()


def test_resnet_shapes_and_variable_length():
    torch.manual_seed(0)
    for pooling in ("attentive", "stats"):
        model = build_model({"type": "resnet", "depths": [1, 1, 1, 1], "width": 4, "embedding_dim": 12,
                             "pooling": pooling, "attention_dim": 8}, feat_dim=21)
        model.eval()
        for frames in (17, 40):
            assert model(torch.randn(3, frames, 21)).shape == (3, 12)
