"""Fixture: the stand-in fbank backend in place of sidkd.feat's (see nnet_helpers)."""

import pytest
from nnet_helpers import StandInFbankOptions, standin_fbank

import sidkd.nnet.features as features


@pytest.fixture
def standin_fbank_backend(monkeypatch):
    monkeypatch.setattr(features, "fbank_backend", lambda: (StandInFbankOptions, standin_fbank))
