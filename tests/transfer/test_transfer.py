"""The transfer stage: its losses against hand computations, the long views, freezing and resume."""

import math
import os

import numpy as np
import pytest
import torch

from sidkd.errors import DataError
from sidkd.nnet import checkpoint as ckpt
from sidkd.nnet.losses import AAMSoftmax
from sidkd.nnet.config import load_config
from sidkd.nnet.models import TransferNet, embedder_blocks
from sidkd.nnet.transfer import load_source, transfer
from sidkd.nnet.transfer_data import concatenated_view
from tests.nnet.nnet_helpers import tiny_config


def transfer_config(**over):
    base = tiny_config()
    conf = {"seed": 5, "device": "cpu", "short_seconds": 0.3, "freeze": {"blocks": 0, "epochs": 0},
            "replay": {"ratio": 0.0, "init_from_source": True}, "speed": base["speed"],
            "loss": {"msce": {"sub_centers": 2, "margin": 0.2, "scale": 16.0, "margin_warmup_epochs": [0, 1]},
                     "kl": {"weight": 0.5, "temperature": 2.0, "long_view": "concat", "long_seconds": 0.8},
                     "kd": {"weight": 0.3, "normalisation": "length"}},
            "data": base["data"], "augment": base["augment"],
            "optim": {**base["optim"], "num_epochs": 2, "average_last": 1, "log_interval": 1}}
    conf.update(over)
    return load_config(None, conf, "transfer")


def hand_msce(z, w, labels, scale, margin, k):
    """−mean log softmax of the margin logits, element by element with explicit norms and arccos."""
    losses = []
    for i in range(z.shape[0]):
        zi = z[i] / math.sqrt(float(z[i] @ z[i]))
        logits = []
        for j in range(w.shape[0] // k):
            best = max(float(w[j * k + c] @ zi) / math.sqrt(float(w[j * k + c] @ w[j * k + c])) for c in range(k))
            if j == labels[i]:
                best = math.cos(math.acos(best) + margin)  # θ + m stays below π for these draws
            logits.append(scale * best)
        top = max(logits)
        log_norm = top + math.log(sum(math.exp(v - top) for v in logits))
        losses.append(log_norm - logits[labels[i]])
    return sum(losses) / len(losses)


@pytest.mark.parametrize("margin", [0.0, 0.25])
def test_msce_at_one_sub_centre_is_the_plain_loss(margin):
    torch.manual_seed(1)
    z = torch.randn(7, 5, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    head = AAMSoftmax(5, 4, margin=margin, scale=10.0, sub_centers=1).double()
    loss, _ = head(z, labels)
    ref = hand_msce(z.numpy(), head.weight.detach().numpy(), labels.numpy(), 10.0, margin, 1)
    assert abs(loss.item() - ref) < 1e-10
    if margin == 0.0:  # the plain softmax cross-entropy of s·cos, as torch writes it
        cos = torch.nn.functional.normalize(z, dim=1) @ torch.nn.functional.normalize(head.weight, dim=1).T
        assert abs(loss.item() - torch.nn.functional.cross_entropy(10.0 * cos, labels).item()) < 1e-10
    # K = 3: the best sub-centre decides the class logit
    head3 = AAMSoftmax(5, 4, margin=margin, scale=10.0, sub_centers=3).double()
    loss3, _ = head3(z, labels)
    ref3 = hand_msce(z.numpy(), head3.weight.detach().numpy(), labels.numpy(), 10.0, margin, 3)
    assert abs(loss3.item() - ref3) < 1e-10


def tiny_net(source_dir, sub_centers=1, margin=0.2):
    from sidkd.nnet.models import build_model
    from sidkd.nnet.features import frontend_from_config

    desc, state = load_source(source_dir)
    embedder = build_model(desc["model"], frontend_from_config(desc["features"]).num_bins)
    embedder.load_state_dict({k[9:]: v for k, v in state.items() if k.startswith("embedder.")})
    return TransferNet(embedder, AAMSoftmax(embedder.embedding_dim, 4, margin, 16.0, sub_centers)).double()


def test_transfer_net_loss_and_kl(source):
    net = tiny_net(source[0]).eval()
    blocks = embedder_blocks(net.embedder)  # stem + one BasicBlock per stage, from the input side
    assert len(blocks) == 5 and blocks[0] is net.embedder.stem and blocks[1] is net.embedder.stages[0][0]
    torch.manual_seed(2)
    short = torch.randn(6, 30, 8, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    ce, kl, mse, _ = net(short, labels, long=short.detach().clone(), temperature=2.0)
    z = net.embedder(short).detach().numpy()
    assert abs(ce.item() - hand_msce(z, net.head.weight.detach().numpy(), labels.numpy(), 16.0, 0.2, 1)) < 1e-9
    assert abs(kl.item()) < 1e-12 and mse.item() == 0.0  # the same view on both sides: no divergence

    long = torch.randn(6, 80, 8, dtype=torch.float64, requires_grad=True)
    _, kl, _, _ = net(short, labels, long=long, temperature=2.0)
    # T²·KL(p_long ‖ p_short) by hand, p = softmax(s·cos / T) without margin
    def posterior(x):
        zz = net.embedder(x).detach().numpy()
        zz = zz / np.linalg.norm(zz, axis=1, keepdims=True)
        w = net.head.weight.detach().numpy()
        w = w / np.linalg.norm(w, axis=1, keepdims=True)
        logits = 16.0 * zz @ w.T / 2.0
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    p, q = posterior(long), posterior(short)
    assert abs(kl.item() - 4.0 * np.mean(np.sum(p * np.log(p / q), axis=1))) < 1e-9
    assert kl.item() > 1e-6
    kl.backward()
    assert long.grad is None  # the long side is detached ...
    assert short.grad is not None and short.grad.abs().sum() > 0  # ... the short side learns
    head_grad = net.head.weight.grad
    assert head_grad is not None and head_grad.abs().sum() > 0


def test_concatenated_view_has_the_speaker_and_the_length():
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 0, 0, 1, 2])
    samples = [np.full(100 + 10 * i, i, dtype=np.int16) for i in range(len(labels))]
    for anchor in range(len(labels)):
        same = np.flatnonzero(labels == labels[anchor])
        x, used = concatenated_view(samples, same, anchor, 450, rng)
        assert len(x) == 450 and x.dtype == np.float32
        assert all(labels[u] == labels[anchor] for u in used)
        if len(same) > 1:
            others = set(same.tolist()) - {anchor}
            assert anchor not in used and set(used) == others  # all others used: 450 > any two clips
            assert len(set(used[:len(others)])) == len(others)  # a random order, then cycled
        else:
            assert used == [anchor] * len(used)  # alone: the anchor repeated
        # the samples are the used utterances end to end (each sample value names its utterance)
        expected = np.concatenate([samples[u] for u in used])[:450]
        assert np.array_equal(x, expected.astype(np.float32))
        assert sum(len(samples[u]) for u in used[:-1]) < 450 <= sum(len(samples[u]) for u in used)


def _params(path):
    return ckpt.load(path)["model"]


def test_freezing_and_resume(source, tmp_path, caplog):
    source_dir, data, teacher = source
    config = transfer_config(freeze={"blocks": 2, "epochs": 1})
    caplog.set_level("INFO")
    full_path, _ = transfer(config, source_dir, data, str(tmp_path / "full"), teacher_rspec=teacher)
    assert "11 of 12 utterances have one" in caplog.text and ", kl " in caplog.text and ", mse " in caplog.text
    part_path, _ = transfer(config, source_dir, data, str(tmp_path / "part"), teacher_rspec=teacher,
                            stop_after_epoch=1)
    assert part_path.endswith("epoch_1.pt")
    _, src = load_source(source_dir)
    epoch1 = _params(part_path)
    frozen_prefixes = ("embedder.stem.", "embedder.stages.0.0.")
    frozen = [n for n in src if n.startswith(frozen_prefixes)]
    assert frozen and any(n.endswith("running_mean") for n in frozen)
    for name in frozen:  # parameters and batch-norm statistics of the frozen blocks: untouched
        assert torch.equal(epoch1[name], src[name]), name
    moved = [n for n in src if n.startswith("embedder.") and not n.startswith(frozen_prefixes)
             and torch.is_floating_point(src[n]) and not torch.equal(epoch1[n], src[n])]
    assert "embedder.embedding.weight" in moved and "embedder.stages.1.0.conv1.weight" in moved
    # released after epoch 1: the first blocks train in epoch 2
    epoch2 = _params(str(tmp_path / "full" / "checkpoints" / "epoch_2.pt"))
    assert not torch.equal(epoch2["embedder.stem.0.weight"], src["embedder.stem.0.weight"])
    # resume gives exactly the uninterrupted run
    resumed_path, _ = transfer(config, source_dir, data, str(tmp_path / "part"), teacher_rspec=teacher, resume=True)
    full, resumed = _params(full_path), _params(resumed_path)
    assert full.keys() == resumed.keys()
    for name in full:
        assert torch.equal(full[name], resumed[name]), name
    # the output reads like a student directory: embeddings come out of it
    from sidkd.nnet.embed import load_embedder

    embedder, desc = load_embedder(str(tmp_path / "full"))
    assert desc["num_classes"] == 4 and desc["transfer"]["source"] == source_dir
    assert embedder(torch.randn(2, 40, 8)).shape == (2, 8)


def test_source_long_view_through_the_program(source, tmp_path, capfd):
    """Long view 'source': the source head stays the source model's; the program runs end to end."""
    import yaml

    from sidkd.bin.transfer_student import main

    source_dir, data, _ = source
    config = transfer_config()
    conf_path = tmp_path / "transfer.yaml"
    conf_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "src_view"
    argv = ["--config", str(conf_path), "--source", source_dir, "--train-data", data, "--long-data", data,
            "--dir", str(out), "--set", "loss.kl.long_view=source loss.kd.weight=0",
            "--set", "optim.num_epochs=1 optim.average_last=1 loss.msce.sub_centers=3"]
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        assert main(argv) == 0
    finally:  # main() put its own stderr handler on the root logger: give pytest's back
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
    err = capfd.readouterr().err
    assert "long view source" in err and ", kl " in err
    final = _params(str(out / "final.pt"))
    _, src = load_source(source_dir)
    assert torch.equal(final["source_head.weight"], src["aam.weight"])
    assert final["head.weight"].shape[0] == 4 * 3
    with pytest.raises(DataError, match="--long-data"):
        transfer(config | {"loss": {**config["loss"], "kl": {**config["loss"]["kl"], "long_view": "source"}}},
                 source_dir, data, str(tmp_path / "x"))
    assert not os.path.exists(tmp_path / "x" / "final.pt")


def _ddp_worker(rank, world, port, source_dir, data, teacher, out, results):
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    config = transfer_config(freeze={"blocks": 2, "epochs": 1})
    _, model = transfer(config, source_dir, data, out, teacher_rspec=teacher, stop_after_epoch=1)
    params = {k for k, _ in model.named_parameters()}
    results[rank] = {k: (v.detach().clone(), k in params) for k, v in model.state_dict().items()}
    torch.distributed.destroy_process_group()


def test_two_processes_freeze_and_agree(source, tmp_path):
    """Under DDP the frozen blocks stay untouched too (their gradients stay None on every rank)."""
    import socket

    import torch.multiprocessing as mp

    source_dir, data, teacher = source
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = mp.Manager().dict()
    # fork: the children inherit the stand-in feature backend of this module
    mp.start_processes(_ddp_worker, args=(2, port, source_dir, data, teacher, str(tmp_path / "ddp"), results),
                       nprocs=2, join=True, start_method="fork")
    _, src = load_source(source_dir)
    r0, r1 = results[0], results[1]
    for name, (value, is_param) in r0.items():
        if is_param:  # (batch-norm statistics are each process's own after its last forward)
            assert torch.equal(value, r1[name][0]), name
    for name in src:
        if name.startswith(("embedder.stem.", "embedder.stages.0.0.")):  # parameters and statistics
            assert torch.equal(r0[name][0], src[name]) and torch.equal(r1[name][0], src[name]), name
    assert not torch.equal(r0["embedder.embedding.weight"][0], src["embedder.embedding.weight"])


def test_bad_input_is_named(source, tmp_path):
    import subprocess

    from tests.conftest import REPO_ROOT, tool_env

    source_dir, data, _ = source
    proc = subprocess.run(["steps/transfer_student.sh", str(tmp_path / "nowhere"), data, "none", str(tmp_path / "o")],
                          cwd=REPO_ROOT, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 1 and f"no such file: {tmp_path / 'nowhere'}/model.json" in proc.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss:\n  kl: {wieght: 1.0}\n")
    with pytest.raises(DataError, match="unknown setting loss.kl.'wieght'"):
        load_config(str(bad), None, "transfer")
    with pytest.raises(DataError, match="freeze.blocks 9: the embedder has only 5 blocks"):
        transfer(transfer_config(freeze={"blocks": 9, "epochs": 1}), source_dir, data, str(tmp_path / "f"),
                 teacher_rspec=source[2])
