"""The speed: options (sidkd.nnet.speed): bf16 gives the fp32 loss within a stated tolerance, the
fast paths resume exactly, the yamls parse, and the helpers fail cleanly. Speed itself is measured
by bench/bench_student.py, never here."""

import copy
import os
import threading

import pytest
import torch
from nnet_helpers import make_tiny_data, tiny_config

from sidkd.errors import DataError
from sidkd.nnet import checkpoint as ckpt
from sidkd.nnet import speed as speed_mod
from sidkd.nnet.losses import AAMSoftmax
from sidkd.nnet.models import build_model
from sidkd.nnet.speed import Prefetch, check_speed, prepare_embedder, try_compile
from sidkd.nnet.config import load_config
from sidkd.nnet.models import StudentWithHeads
from sidkd.nnet.trainer import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CPU = torch.device("cpu")
SPEED = tiny_config()["speed"]  # fp32, single, no prefetch

# bf16 keeps 8 bits of mantissa (relative rounding 2^-9 = 0.2 % per value); through the trunk of a
# small ResNet the embeddings differ by about 1 %, and the AAM loss of a random batch by well under
# 2 % of its value. A wrong cast (pooling or loss in bf16, or no autocast at all) breaks one of the
# checks below: the loss gap would be exactly 0, or the pooling would see bf16 input.
BF16_LOSS_RTOL = 0.02


def _student(seed=0):
    torch.manual_seed(seed)
    embedder = build_model({"type": "resnet", "depths": [1, 1, 1, 1], "width": 8, "embedding_dim": 32,
                            "pooling": "attentive", "attention_dim": 16}, 24)
    return StudentWithHeads(embedder, AAMSoftmax(32, 10, margin=0.2, scale=16.0))


def test_bf16_loss_matches_fp32_within_tolerance():
    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(8, 60, 24, generator=gen)
    labels = torch.randint(0, 10, (8,), generator=gen)
    fp32 = _student()
    bf16 = copy.deepcopy(fp32)
    assert prepare_embedder(bf16.embedder, {**SPEED, "precision": "bf16"}, CPU) is torch.bfloat16
    seen = {}

    def note(name, tensor):  # a hook that returns None leaves the module's input/output alone
        seen.setdefault(name, tensor.dtype)

    bf16.embedder.pool.register_forward_pre_hook(lambda _m, args: note("pool", args[0]))
    trunk = bf16.embedder.stages.register_forward_hook(lambda _m, _a, out: note("trunk", out))
    loss32, _, _ = fp32(feats, labels)
    loss16, _, logits16 = bf16(feats, labels)
    trunk.remove()
    assert seen == {"trunk": torch.bfloat16, "pool": torch.float32}  # autocast on the trunk, off for the pooling
    assert loss16.dtype == logits16.dtype == torch.float32
    gap = abs(loss16.item() - loss32.item())
    assert 0 < gap <= BF16_LOSS_RTOL * abs(loss32.item()), (loss16.item(), loss32.item())
    # the gradients reach fp32 master weights, in the same direction
    loss16.backward()
    loss32.backward()
    g16, g32 = bf16.embedder.stem[0].weight.grad, fp32.embedder.stem[0].weight.grad
    assert g16.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(g16.flatten(), g32.flatten(), dim=0) > 0.95


def test_fp32_and_auto_without_native_bf16_leave_the_forward_alone(monkeypatch):
    model = _student()
    monkeypatch.setattr(speed_mod, "native_bf16", lambda device: False)
    assert prepare_embedder(model.embedder, {**SPEED, "precision": "auto"}, CPU) is None
    assert "forward" not in vars(model.embedder)
    monkeypatch.setattr(speed_mod, "native_bf16", lambda device: True)
    assert speed_mod.autocast_dtype("auto", CPU) is torch.bfloat16
    assert speed_mod.autocast_dtype("fp32", CPU) is None


def test_deepcopy_of_a_bf16_embedder_runs_its_own_weights():
    model = _student()
    prepare_embedder(model.embedder, {**SPEED, "precision": "bf16"}, CPU)
    twin = copy.deepcopy(model.embedder)
    with torch.no_grad():
        for p in twin.parameters():
            p.zero_()
    feats = torch.randn(2, 40, 24)
    twin.eval()
    model.embedder.eval()
    assert not torch.equal(twin(feats), model.embedder(feats))


@pytest.mark.parametrize("speed", [
    {"precision": "fp32", "optimizer_impl": "foreach", "prefetch": 2, "channels_last": False},
    {"precision": "bf16", "optimizer_impl": "foreach", "prefetch": 1, "channels_last": True},
], ids=["default-on-avx2", "bf16-channels-last"])
def test_the_fast_paths_resume_exactly(tmp_path, standin_fbank_backend, speed):
    data, teacher = make_tiny_data(str(tmp_path))
    config = load_config(None, tiny_config(speed={"compile": False, **speed}))
    full_path, _ = train(config, data, str(tmp_path / "full"), teacher)
    train(config, data, str(tmp_path / "part"), teacher, stop_after_epoch=1)
    resumed_path, _ = train(config, data, str(tmp_path / "part"), teacher, resume=True)
    full, resumed = ckpt.load(full_path)["model"], ckpt.load(resumed_path)["model"]
    for name in full:
        assert torch.equal(full[name], resumed[name]), name
    state = torch.load(str(tmp_path / "part" / "checkpoints" / "epoch_2.pt"), weights_only=True)
    assert all(v.dtype == torch.float32 for v in state["model"].values() if torch.is_floating_point(v))


def test_prefetch_and_foreach_change_no_number(tmp_path, standin_fbank_backend):
    """The thread makes the same batches and foreach AdamW the same update as the serial path."""
    data, teacher = make_tiny_data(str(tmp_path))
    serial = load_config(None, tiny_config(speed={"optimizer_impl": "single", "prefetch": 0}))
    fast = load_config(None, tiny_config(speed={"optimizer_impl": "foreach", "prefetch": 2}))
    a = ckpt.load(train(serial, data, str(tmp_path / "a"), teacher)[0])["model"]
    b = ckpt.load(train(fast, data, str(tmp_path / "b"), teacher)[0])["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["student.yaml", "student_gpu.yaml", "transfer.yaml"])
def test_the_shipped_yamls_parse_with_valid_speed_options(name):
    kind = "transfer" if name.startswith("transfer") else "student"
    config = load_config(os.path.join(REPO, "conf", name), kind=kind)
    check_speed(config["speed"])


def test_bad_speed_options_are_named(tmp_path):
    with pytest.raises(DataError, match="precision"):
        check_speed({**SPEED, "precision": "fp8"})
    with pytest.raises(DataError, match="optimizer_impl"):
        check_speed({**SPEED, "optimizer_impl": "fast"})
    path = tmp_path / "bad.yaml"
    path.write_text("speed: {precission: bf16}\n")
    with pytest.raises(DataError, match="precission"):
        load_config(str(path))


def test_compile_failure_falls_back_to_eager_and_changes_nothing(monkeypatch):
    model = _student()
    before = copy.deepcopy(model.embedder.state_dict())

    def broken_compile(*_args, **_kwargs):
        model.embedder._compiled_call_impl = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no compiler"))

    monkeypatch.setattr(model.embedder, "compile", broken_compile)
    assert try_compile(model.embedder, torch.randn(4, 40, 24)) is False
    after = model.embedder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the trial moved no batch-norm statistic
    assert all(p.grad is None for p in model.embedder.parameters())
    model.embedder(torch.randn(4, 40, 24))  # eager again


def test_prefetch_keeps_order_raises_errors_and_stops_its_thread():
    assert list(Prefetch(range(20), 3)) == list(range(20))

    def failing():
        yield 1
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        list(Prefetch(failing(), 2))
    before = threading.active_count()
    for item in Prefetch(range(1000), 2):
        if item == 3:
            break
    assert threading.active_count() == before
