"""Sizes fitted to the data (sidkd.sizes): kept where the data allows them, else clipped with the
reason; a training records what it fitted in config.yaml."""

import os

import pytest
import yaml
from nnet_helpers import make_tiny_data, tiny_config

from sidkd.bin import fit_sizes
from sidkd.errors import DataError
from sidkd.nnet.config import load_config
from sidkd.sizes import fit_batch, fit_lda_dim, fit_student_config, teacher_warnings


def test_an_lda_keeps_its_dimension_where_the_speakers_allow_it_and_else_one_below_them():
    assert fit_lda_dim(150, 170, 200) == (150, None)  # the recipe: 170 PLDA speakers
    assert fit_lda_dim(150, 151, 200) == (150, None)
    dim, why = fit_lda_dim(150, 150, 200)
    assert dim == 149 and "150 -> 149: the data has 150 speakers" in why
    assert fit_lda_dim(150, 4, 200)[0] == 3
    dim, why = fit_lda_dim(150, 400, 100)
    assert dim == 100 and "the vectors have 100 dimensions" in why
    with pytest.raises(DataError, match="at least 2 speakers, the data has 1"):
        fit_lda_dim(150, 1, 200)


def test_a_batch_keeps_its_size_with_fewer_speakers_and_more_crops_each():
    conf = {"batch_size": 128, "utts_per_speaker": 2, "speaker_weight_power": 1.0}
    assert fit_batch(conf, 64) == (conf, None) and fit_batch(conf, 421)[1] is None
    fitted, why = fit_batch(conf, 4)
    assert (fitted["batch_size"], fitted["utts_per_speaker"]) == (128, 32) and fitted["speaker_weight_power"] == 1.0
    assert why == ("a batch of 64 speakers x 2 crops needs 64 training speakers, the data has 4: "
                   "data.utts_per_speaker 2 -> 32 (4 speakers x 32 crops)")
    fitted, why = fit_batch(conf, 3)  # 128 is no multiple of 3: the nearest batch above
    assert (fitted["batch_size"], fitted["utts_per_speaker"]) == (129, 43) and "data.batch_size 128 -> 129" in why


def test_a_student_config_is_fitted_to_its_speakers_only_where_it_must(tmp_path):
    utt2spk = tmp_path / "utt2spk"
    utt2spk.write_text("".join(f"s{i}-u{j} s{i}\n" for i in range(4) for j in range(3)))
    conf = load_config(os.path.join(os.path.dirname(__file__), "..", "..", "conf", "student_kd.yaml"))
    fitted, notes = fit_student_config(conf, str(utt2spk))
    assert fitted["data"]["utts_per_speaker"] == 32 and fitted["loss"]["kd"]["lda"]["dim"] == 3
    assert len(notes) == 2 and notes[1].startswith("loss.kd.lda.dim 150 -> 3")
    assert conf["data"]["utts_per_speaker"] == 2 and conf["loss"]["kd"]["lda"]["dim"] == 150  # not changed in place
    # no LDA in the target, or no distillation: the LDA setting is left as it is
    for other in ({"target": "ivector"}, {"weight": 0.0}):
        conf_other = load_config(None, {**conf, "loss": {**conf["loss"], "kd": {**conf["loss"]["kd"], **other}}})
        assert fit_student_config(conf_other, str(utt2spk))[0]["loss"]["kd"]["lda"]["dim"] == 150


def test_the_teacher_warns_naming_the_setting_to_lower():
    assert teacher_warnings(1_292_658, 3551, 72, 256, 200) == []  # the recipe's data/train
    got = teacher_warnings(20_000, 32, 72, 256, 200)
    assert "20000 voiced frames for 256 Gaussians: 78 per Gaussian, below the 2628" in got[0]
    assert "./run.sh --ivector-num-gauss 4" in got[0]
    assert "an i-vector of 200 dimensions from 32 training utterances" in got[1] and "--ivector-dim 16" in got[1]


def test_fit_sizes_prints_the_dimension_and_logs_why(tmp_path, capsys):
    utt2spk = tmp_path / "utt2spk"
    utt2spk.write_text("a1 a\na2 a\nb1 b\nb2 b\nc1 c\n")  # c has one utterance: no PLDA speaker
    assert fit_sizes.main(["lda", "--name", "lda_dim", "--dim", "150", "--max-dim", "200", str(utt2spk)]) == 0
    out = capsys.readouterr()
    assert out.out == "1\n"
    assert "lda_dim 150 -> 1: the data has 2 speakers" in out.err and "speakers with >= 2 utterances" in out.err


def test_a_training_records_the_sizes_it_fitted(tmp_path, standin_fbank_backend):
    from sidkd.nnet.trainer import train

    data, teacher = make_tiny_data(str(tmp_path))
    speakers = len({line.split()[1] for line in open(os.path.join(data, "utt2spk"))})
    conf = tiny_config(optim={**tiny_config()["optim"], "num_epochs": 1, "average_last": 1})
    conf["data"].update(batch_size=4 * speakers, utts_per_speaker=2)  # 2x the speakers there are
    out = str(tmp_path / "exp")
    train(load_config(None, conf), data, out, teacher)
    record = yaml.safe_load(open(os.path.join(out, "config.yaml")))
    assert record["config"]["data"]["batch_size"] == 4 * speakers
    assert record["config"]["data"]["utts_per_speaker"] == 4  # batch speakers: all the data has
    assert record["run"]["sizes"] == [f"a batch of {2 * speakers} speakers x 2 crops needs {2 * speakers} training "
                                      f"speakers, the data has {speakers}: data.utts_per_speaker 2 -> 4 "
                                      f"({speakers} speakers x 4 crops)"]


def test_a_transfer_batch_keeps_its_size_with_fewer_target_or_replayed_speakers(tmp_path):
    from sidkd.sizes import fit_transfer_batch, fit_transfer_config

    conf = {"batch_size": 128, "utts_per_speaker": 2}
    assert fit_transfer_batch(conf, 0.5, 159, 421) == (conf, None)  # the recipe: 32 + 32 speakers of 159, 421
    assert fit_transfer_batch(conf, 0.0, 64, None) == (conf, None)
    fitted, why = fit_transfer_batch(conf, 0.5, 4, 421)  # 64 target-domain crops: 4 speakers x 16
    assert fitted == {"batch_size": 128, "utts_per_speaker": 16}
    assert why.endswith("data.utts_per_speaker 2 -> 16 (4 target-domain + 4 replayed speakers x 16 crops)")
    assert fit_transfer_batch(conf, 0.5, 40, 3)[0]["utts_per_speaker"] == 32  # the long data's 3 speakers: 2 x 32
    assert fit_transfer_batch(conf, 0.0, 3, None)[0]["utts_per_speaker"] == 64  # whole groups: 2 speakers x 64
    utt2spk = tmp_path / "utt2spk"
    utt2spk.write_text("".join(f"s{i}-u{j} s{i}\n" for i in range(4) for j in range(3)))
    config = {"replay": {"ratio": 0.0}, "data": dict(conf)}
    fitted, notes = fit_transfer_config(config, str(utt2spk), None)
    assert fitted["data"]["utts_per_speaker"] == 32 and config["data"]["utts_per_speaker"] == 2 and len(notes) == 1
