import os
import socket

import torch
import torch.multiprocessing as mp
from nnet_helpers import make_tiny_data, tiny_config

from sidkd.nnet import checkpoint as ckpt
from sidkd.nnet.config import load_config
from sidkd.nnet.trainer import train


def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path, standin_fbank_backend, caplog):
    data, teacher = make_tiny_data(str(tmp_path), missing_teacher=("spk1-u2",))
    config = load_config(None, tiny_config())
    caplog.set_level("INFO")
    full_path, _ = train(config, data, str(tmp_path / "full"), teacher)
    assert "11 kept + 1 skipped" in caplog.text
    assert "samples/s" in caplog.text and "acc" in caplog.text
    part_path, _ = train(config, data, str(tmp_path / "part"), teacher, stop_after_epoch=1)
    assert part_path.endswith("epoch_1.pt") and not os.path.exists(tmp_path / "part" / "final.pt")
    resumed_path, _ = train(config, data, str(tmp_path / "part"), teacher, resume=True)
    full, resumed = ckpt.load(full_path)["model"], ckpt.load(resumed_path)["model"]
    assert full.keys() == resumed.keys()
    for name in full:
        assert torch.equal(full[name], resumed[name]), name
    for epoch in (2, 3):
        a = ckpt.load(str(tmp_path / "full" / "checkpoints" / f"epoch_{epoch}.pt"))
        b = ckpt.load(str(tmp_path / "part" / "checkpoints" / f"epoch_{epoch}.pt"))
        assert a["step"] == b["step"] == 3 * epoch
        for name in a["model"]:
            assert torch.equal(a["model"][name], b["model"][name]), name
    # training moved the weights, and final.pt is the mean of the last two epochs
    e1 = ckpt.load(str(tmp_path / "full" / "checkpoints" / "epoch_1.pt"))["model"]
    e2 = ckpt.load(str(tmp_path / "full" / "checkpoints" / "epoch_2.pt"))["model"]
    e3 = ckpt.load(str(tmp_path / "full" / "checkpoints" / "epoch_3.pt"))["model"]
    name = "embedder.embedding.weight"
    assert not torch.equal(e1[name], e3[name])
    torch.testing.assert_close(full[name], (e2[name] + e3[name]) / 2)
    # the KD head's teacher statistics are stored with the model
    assert "kd.normalizer.transform" in full


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, data, teacher, out, results):
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    config = load_config(None, tiny_config(optim={**tiny_config()["optim"], "num_epochs": 1, "average_last": 1}))
    _, model = train(config, data, out, teacher)
    results[rank] = {k: v.detach().clone() for k, v in model.named_parameters()}
    torch.distributed.destroy_process_group()


def test_two_cpu_processes_keep_identical_parameters(tmp_path, standin_fbank_backend):
    data, teacher = make_tiny_data(str(tmp_path))
    manager = mp.Manager()
    results = manager.dict()
    # fork, so that the children inherit the test's stand-in feature backend
    mp.start_processes(_ddp_worker, args=(2, _free_port(), data, teacher, str(tmp_path / "ddp"), results),
                       nprocs=2, join=True, start_method="fork")
    r0, r1 = results[0], results[1]
    initial = ckpt.load(str(tmp_path / "ddp" / "checkpoints" / "epoch_1.pt"))["model"]
    for name in r0:
        assert torch.equal(r0[name], r1[name]), name
        assert torch.equal(r0[name], initial[name]), name  # rank 0 saved what both hold
    # the parameters did train (compare against a fresh init with the same seed)
    from sidkd.nnet.models import build_model
    torch.manual_seed(3)
    fresh = build_model(tiny_config()["model"], 8)
    moved = any(not torch.equal(p, r0["embedder." + n]) for n, p in fresh.named_parameters())
    assert moved


def test_resume_with_another_network_is_a_clear_error(tmp_path, standin_fbank_backend):
    import pytest

    from sidkd.errors import DataError

    data, _ = make_tiny_data(str(tmp_path))
    conf = tiny_config(loss={"aam": {"margin": 0.2, "scale": 16.0}, "kd": {"weight": 0.0}})
    conf["optim"] = {**conf["optim"], "num_epochs": 1, "average_last": 1}
    train(load_config(None, conf), data, str(tmp_path / "exp"))
    conf["model"] = {**conf["model"], "embedding_dim": 6}
    with pytest.raises(DataError, match=r"config.model.embedding_dim: 8 -> 6\. .*--overwrite true"):
        train(load_config(None, conf), data, str(tmp_path / "exp"), resume=True)


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path):
    import random

    import numpy as np

    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.random(), np.random.standard_normal(3), torch.randn(2)  # move every generator
    path = str(tmp_path / "state.pt")
    ckpt.save_atomic({"format": ckpt.CHECKPOINT_FORMAT, "version": ckpt.FORMAT_VERSION, "rng": ckpt.rng_state()},
                     path)
    expected = (random.random(), np.random.standard_normal(4).tolist(), np.random.normal(), torch.randn(3))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    ckpt.set_rng_state(ckpt.load(path)["rng"])
    got = (random.random(), np.random.standard_normal(4).tolist(), np.random.normal(), torch.randn(3))
    assert got[:3] == expected[:3] and torch.equal(got[3], expected[3])
    assert [name for name in os.listdir(tmp_path)] == ["state.pt"]  # no temporary left behind
