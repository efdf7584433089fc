import math

import numpy as np
import torch

from sidkd.nnet.losses import AAMSoftmax, TeacherDistillation, long_short_kl, margin_at
from sidkd.nnet.losses.distill import TeacherNormalizer


def _hand_aam_logits(z, w, labels, m, s, K):
    """Written out per element in numpy: cos via explicit norms, θ via arccos."""
    B, C = z.shape[0], w.shape[0] // K
    out = np.zeros((B, C))
    for i in range(B):
        zi = z[i] / math.sqrt(float(np.dot(z[i], z[i])))
        for j in range(C):
            best = -2.0
            for k in range(K):
                wj = w[j * K + k] / math.sqrt(float(np.dot(w[j * K + k], w[j * K + k])))
                best = max(best, float(np.dot(wj, zi)))
            if j == labels[i]:
                theta = math.acos(min(1.0, max(-1.0, best)))
                best = math.cos(theta + m) if theta + m <= math.pi else best - m * math.sin(m)
            out[i, j] = s * best
    return out


def test_aam_logits_against_hand_computation():
    torch.manual_seed(0)
    for K in (1, 3):
        head = AAMSoftmax(6, 5, margin=0.3, scale=20.0, sub_centers=K).double()
        z = torch.randn(8, 6, dtype=torch.float64)
        labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
        # one sample exactly opposite its class weight: θ = π, the fallback branch
        with torch.no_grad():
            z[7] = -head.weight[2 * K]
            head.weight[2 * K + 1:2 * K + K] = head.weight[2 * K]  # all sub-centres of class 2 alike
        got = head.logits(z, labels).detach().numpy()
        ref = _hand_aam_logits(z.numpy(), head.weight.detach().numpy(), labels.numpy(), 0.3, 20.0, K)
        np.testing.assert_allclose(got, ref, rtol=1e-7, atol=1e-7)
        loss, _ = head(z, labels)
        logp = ref - ref.max(1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
        assert abs(loss.item() + logp[np.arange(8), labels.numpy()].mean()) < 1e-8


def test_sub_centre_k1_equals_plain_aam_and_k_copies_too():
    torch.manual_seed(3)
    plain = AAMSoftmax(7, 4, margin=0.2, scale=30.0, sub_centers=1)
    sub = AAMSoftmax(7, 4, margin=0.2, scale=30.0, sub_centers=1)
    sub.load_state_dict(plain.state_dict())
    z, labels = torch.randn(5, 7), torch.tensor([0, 1, 2, 3, 1])
    torch.testing.assert_close(plain(z, labels)[0], sub(z, labels)[0])
    # K=3 with all sub-centres equal to the plain weights gives the same loss
    multi = AAMSoftmax(7, 4, margin=0.2, scale=30.0, sub_centers=3)
    with torch.no_grad():
        multi.weight.copy_(plain.weight.repeat_interleave(3, dim=0))
    torch.testing.assert_close(multi(z, labels)[0], plain(z, labels)[0])


def test_margin_zero_is_cosine_softmax_and_schedule():
    head = AAMSoftmax(3, 2, margin=0.0, scale=10.0)
    z = torch.randn(4, 3)
    ref = 10.0 * torch.nn.functional.normalize(z, dim=1) @ torch.nn.functional.normalize(head.weight, dim=1).T
    torch.testing.assert_close(head.logits(z, torch.tensor([0, 1, 0, 1])), ref)
    assert margin_at(0, 0.2, 10, 30) == 0.0
    assert margin_at(20, 0.2, 10, 30) == 0.1
    assert margin_at(50, 0.2, 10, 30) == 0.2


def test_teacher_normalisations():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 5))
    t = rng.standard_normal((400, 5)) @ A + 3.0
    for kind in ("mean", "length", "whiten"):
        norm = TeacherNormalizer(5, kind).double()
        norm.fit(t)
        out = norm(torch.from_numpy(t)).numpy()
        if kind == "mean":
            np.testing.assert_allclose(out.mean(0), 0, atol=1e-10)
        if kind == "length":
            np.testing.assert_allclose(np.linalg.norm(out, axis=1), math.sqrt(5), rtol=1e-10)
        if kind == "whiten":
            np.testing.assert_allclose(np.cov(out.T), np.eye(5), atol=1e-8)
    # statistics travel with the state_dict
    norm2 = TeacherNormalizer(5, "whiten").double()
    norm2.load_state_dict(norm.state_dict())
    np.testing.assert_allclose(norm2(torch.from_numpy(t)).numpy(), out)


def test_kd_loss_alone_drives_tiny_student_to_planted_targets():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.standard_normal((64, 10))).float()
    planted = torch.from_numpy(rng.standard_normal((10, 6))).float()
    teacher = x @ planted + 2.0  # targets the student can reach exactly
    student = torch.nn.Sequential(torch.nn.Linear(10, 8))
    kd = TeacherDistillation(8, 6, normalisation="mean")
    kd.normalizer.fit(teacher.numpy())
    opt = torch.optim.Adam(list(student.parameters()) + list(kd.parameters()), lr=0.05)
    first = kd(student(x), teacher).item()
    for _ in range(300):
        opt.zero_grad()
        loss = kd(student(x), teacher)
        loss.backward()
        opt.step()
    target = teacher - teacher.mean(0)
    direct = ((kd.projection(student(x)) - target) ** 2).sum(1).mean().item() / 6
    assert direct < 1e-3 * first
    assert loss.item() < 1e-3 * first


def test_kl_zero_on_equal_views_and_gradient_only_on_short_side():
    torch.manual_seed(0)
    logits = torch.randn(4, 6)
    assert abs(long_short_kl(logits, logits.clone(), 2.0).item()) < 1e-6
    long = torch.randn(4, 6, requires_grad=True)
    short = torch.randn(4, 6, requires_grad=True)
    T = 2.0
    loss = long_short_kl(long, short, T)
    p = torch.softmax(long.detach() / T, 1)
    ref = T**2 * (p * (torch.log(p) - torch.log_softmax(short.detach() / T, 1))).sum(1).mean()
    torch.testing.assert_close(loss, ref)
    loss.backward()
    assert long.grad is None
    assert short.grad.abs().sum() > 0
    # d/d short = T * (q - p) / B
    q = torch.softmax(short.detach() / T, 1)
    torch.testing.assert_close(short.grad, T * (q - p) / 4)


def test_kd_loss_leaves_out_absent_targets():
    """skip_absent: a teacher row of NaN (no target) adds nothing; the mean runs over the others; a
    batch without any target gives 0 with the projection still in the graph (DDP needs its gradient)."""
    torch.manual_seed(0)
    z = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(5, 3, dtype=torch.float64)
    absent = torch.tensor([False, True, False, False, True])
    with_gaps = teacher.clone()
    with_gaps[absent] = float("nan")
    for kind in ("none", "mean", "length", "whiten"):
        kd = TeacherDistillation(4, 3, kind, skip_absent=True).double()
        kd.normalizer.fit(teacher[~absent].numpy())
        got = kd(z, with_gaps)
        # by hand: ‖P z − n(t)‖² / R averaged over the three rows that have a target
        target = kd.normalizer(teacher[~absent]).detach()
        projected = kd.projection(z[~absent]).detach()
        expected = ((projected - target) ** 2).sum(1).mean() / 3
        assert torch.isfinite(got) and abs(got.item() - expected.item()) < 1e-12
        # every row present: exactly the plain loss
        plain = TeacherDistillation(4, 3, kind).double()
        plain.load_state_dict(kd.state_dict())
        assert torch.equal(kd(z, teacher), plain(z, teacher))
    got.backward()
    assert torch.isfinite(z.grad).all() and torch.equal(z.grad[absent], torch.zeros(2, 4, dtype=torch.float64))
    kd.zero_grad()
    nothing = kd(z, torch.full((5, 3), float("nan"), dtype=torch.float64))
    nothing.backward()
    assert nothing.item() == 0.0 and kd.projection.weight.grad is not None
