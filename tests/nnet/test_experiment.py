"""A model directory knows its configuration (sidkd.nnet.experiment): config.yaml records exactly what
a training used; asking the same directory for another configuration is an error naming the keys
that differ (never a silent reuse or a resume under the new settings); --overwrite trains again;
the keys that change no number do not count."""

import json
import os
import shutil

import pytest
import torch
import yaml
from nnet_helpers import make_tiny_data, tiny_config

from sidkd.errors import DataError
from sidkd.nnet import checkpoint as ckpt
from sidkd.nnet import experiment
from sidkd.nnet.config import load_config
from sidkd.nnet.trainer import train


def config_with(**over):
    conf = tiny_config()
    for dotted, value in over.items():
        node = conf
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return load_config(None, conf)


def record(out):
    with open(os.path.join(out, "config.yaml")) as handle:
        return yaml.safe_load(handle)


def mtime(path):
    return os.stat(path).st_mtime_ns


def test_config_yaml_records_the_merged_config_and_the_inputs(tmp_path, standin_fbank_backend):
    data, teacher = make_tiny_data(str(tmp_path))
    config = config_with(loss__kd__weight=0.0, seed=5)
    out = str(tmp_path / "nokd")
    train(config, data, out, teacher)
    rec = record(out)
    assert rec["config"] == config  # every merged value, the overrides and the seed included
    assert rec["config"]["loss"]["kd"]["weight"] == 0.0 and rec["config"]["seed"] == 5
    # λ = 0 reads no teacher: none is recorded, so the same no-KD run with another teacher is the same
    assert rec["inputs"] == {"train_data": data, "train_data_digest": experiment.data_digest(data)}
    assert rec["config_hash"] == experiment.config_hash(config, rec["inputs"])
    assert rec["run"]["device"] == "cpu" and rec["run"]["precision"] == "fp32"
    # model.json holds the recorded sections, not a second account of them
    with open(os.path.join(out, "model.json")) as handle:
        desc = json.load(handle)
    assert (desc["features"], desc["model"], desc["aam"]) == (
        rec["config"]["features"], rec["config"]["model"], rec["config"]["loss"]["aam"])
    assert (desc["kd_normalisation"], desc["kd_target"]) == (
        rec["config"]["loss"]["kd"]["normalisation"], rec["config"]["loss"]["kd"]["target"])
    kd_out = str(tmp_path / "kd")
    train(config_with(loss__kd__weight=0.5), data, kd_out, teacher)
    inputs = record(kd_out)["inputs"]
    assert inputs["teacher"] == teacher and inputs["teacher_digest"] == experiment.rspec_digest(teacher)


def test_another_configuration_in_the_same_directory_is_an_error_naming_the_keys(tmp_path, standin_fbank_backend):
    data, teacher = make_tiny_data(str(tmp_path))
    out = str(tmp_path / "exp")
    first = config_with(loss__kd__weight=0.5)
    train(first, data, out, teacher)
    final = os.path.join(out, "final.pt")
    stamp, before = mtime(final), ckpt.load(final)["model"]
    other = config_with(loss__kd__weight=0.5, loss__kd__normalisation="length", seed=4)
    with pytest.raises(DataError) as err:
        train(other, data, out, teacher, resume=True)
    text = str(err.value)
    assert "config.loss.kd.normalisation: 'whiten' -> 'length'" in text and "config.seed: 3 -> 4" in text
    assert "--overwrite true" in text and "weight" not in text  # only the keys that differ
    assert mtime(final) == stamp and record(out)["config"] == first  # nothing was touched
    # the same configuration: finished earlier, nothing is trained again
    path, model = train(first, data, out, teacher, resume=True)
    assert path == final and model is None and mtime(final) == stamp
    # overwrite: trained again under the new configuration, recorded
    train(other, data, out, teacher, resume=True, overwrite=True)
    assert record(out)["config"] == other
    after = ckpt.load(final)["model"]
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_a_checkpoint_is_never_resumed_under_another_configuration(tmp_path, standin_fbank_backend):
    data, teacher = make_tiny_data(str(tmp_path))
    out = str(tmp_path / "exp")
    train(config_with(loss__kd__weight=0.5), data, out, teacher, stop_after_epoch=1)
    assert os.path.isfile(os.path.join(out, "checkpoints", "epoch_1.pt"))
    with pytest.raises(DataError, match=r"config.loss.kd.weight: 0.5 -> 1.0"):
        train(config_with(loss__kd__weight=1.0), data, out, teacher, resume=True)
    # nor under other inputs: the data dir lost an utterance
    with open(os.path.join(data, "wav.scp")) as handle:
        lines = handle.readlines()
    with open(os.path.join(data, "wav.scp"), "w") as handle:
        handle.writelines(lines[:-1])
    with open(os.path.join(data, "utt2spk")) as handle:
        lines = handle.readlines()
    with open(os.path.join(data, "utt2spk"), "w") as handle:
        handle.writelines(lines[:-1])
    with pytest.raises(DataError, match="inputs.train_data_digest"):
        train(config_with(loss__kd__weight=0.5), data, out, teacher, resume=True)


def test_speed_only_keys_do_not_count_and_resume_stays_exact(tmp_path, standin_fbank_backend):
    data, teacher = make_tiny_data(str(tmp_path))
    slow = config_with(speed__prefetch=0, optim__log_interval=1)
    fast = config_with(speed__prefetch=2, optim__log_interval=5)
    assert experiment.config_hash(slow, {}) == experiment.config_hash(fast, {})
    full, _ = train(slow, data, str(tmp_path / "full"), teacher)
    train(slow, data, str(tmp_path / "part"), teacher, stop_after_epoch=1)
    resumed, _ = train(fast, data, str(tmp_path / "part"), teacher, resume=True)
    a, b = ckpt.load(full)["model"], ckpt.load(resumed)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert record(str(tmp_path / "part"))["config"]["speed"]["prefetch"] == 2  # as last run


def test_a_directory_without_config_yaml_is_not_reused(tmp_path, standin_fbank_backend):
    data, teacher = make_tiny_data(str(tmp_path))
    out = str(tmp_path / "exp")
    config = config_with()
    train(config, data, out, teacher, stop_after_epoch=1)
    os.remove(os.path.join(out, "config.yaml"))  # as a model from before configurations were recorded
    with pytest.raises(DataError, match="no config.yaml"):
        train(config, data, out, teacher, resume=True)
    train(config, data, out, teacher, resume=True, overwrite=True)
    assert os.path.isfile(os.path.join(out, "final.pt")) and record(out)["config"] == config


def test_rspec_digest_follows_the_archives_an_scp_points_into(tmp_path):
    _, teacher = make_tiny_data(str(tmp_path))
    before = experiment.rspec_digest(teacher)
    scp = teacher.split(":", 1)[1]
    ark = open(scp).readline().split()[1].rsplit(":", 1)[0]
    shutil.copy(ark, ark + ".bak")
    with open(ark, "r+b") as handle:  # one byte of a vector changes; the scp file does not
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last[0] ^ 1]))
    assert experiment.rspec_digest(teacher) != before
    shutil.copy(ark + ".bak", ark)
    assert experiment.rspec_digest(teacher) == before


def test_a_directory_whose_training_failed_before_its_first_checkpoint_is_fresh(tmp_path):
    """A first training that stopped before an epoch ended (say, the data had too few speakers for
    a batch) leaves config.yaml and an empty checkpoints/: its fixed rerun, another configuration,
    starts there without --overwrite; once a checkpoint exists the same rerun is refused."""
    out = str(tmp_path / "exp")
    first = experiment.make_record(config_with(data__batch_size=128), {"train_data": "d"}, {})
    fixed = experiment.make_record(config_with(data__batch_size=8), {"train_data": "d"}, {})
    assert experiment.claim(out, first, resume=True, overwrite=False) == "fresh"
    os.makedirs(os.path.join(out, "checkpoints"))  # made, but the first epoch never ended
    assert experiment.claim(out, fixed, resume=True, overwrite=False) == "fresh"
    assert record(out)["config"]["data"]["batch_size"] == 8
    os.makedirs(os.path.join(out, "checkpoints"))
    open(os.path.join(out, "checkpoints", "epoch_1.pt"), "wb").close()
    with pytest.raises(DataError, match=r"config.data.batch_size: 8 -> 128.*--overwrite true"):
        experiment.claim(out, first, resume=True, overwrite=False)
