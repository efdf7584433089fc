"""Fixtures of the transfer tests: the stand-in fbank of tests/nnet, and one tiny trained source model."""

import pytest

import sidkd.nnet.features as features
from tests.nnet.nnet_helpers import StandInFbankOptions, make_tiny_data, standin_fbank, tiny_config


@pytest.fixture(scope="module", autouse=True)
def standin_fbank_backend():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(features, "fbank_backend", lambda: (StandInFbankOptions, standin_fbank))
        yield


@pytest.fixture(scope="module")
def source(tmp_path_factory, standin_fbank_backend):
    """(source model dir, data dir, teacher rspecifier): a tiny student trained for one epoch."""
    from sidkd.nnet.config import load_config
    from sidkd.nnet.trainer import train

    root = tmp_path_factory.mktemp("source")
    data, teacher = make_tiny_data(str(root), missing_teacher=("spk2-u1",))
    config = load_config(None, tiny_config(optim={**tiny_config()["optim"], "num_epochs": 1, "average_last": 1}))
    train(config, data, str(root / "student"), teacher)
    return str(root / "student"), data, teacher
