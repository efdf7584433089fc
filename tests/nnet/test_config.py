"""Variants as files (sidkd.nnet.config): a yaml names its base and holds its differences; the
command line adds dotted key=value overrides; every layer is validated; every shipped yaml loads."""

import copy
import glob
import os

import pytest
import yaml
from nnet_helpers import make_tiny_data, tiny_config

from sidkd.errors import DataError
from sidkd.nnet.config import defaults_for, load_config, parse_overrides
from tests.conftest import REPO_ROOT

CONF = os.path.join(REPO_ROOT, "conf")


def flatten(tree, prefix=""):
    """{"a.b": leaf} of a nested dict: the independent view the tests compare in."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def write(path, conf):
    path.write_text(yaml.safe_dump(conf))
    return str(path)


def test_a_variant_is_its_base_with_its_differences_and_a_base_chain_resolves_beside_each_file(tmp_path):
    (tmp_path / "sub").mkdir()
    base = write(tmp_path / "base.yaml", tiny_config())
    write(tmp_path / "sub" / "mid.yaml", {"base": "../base.yaml", "loss": {"kd": {"weight": 0.0}}, "seed": 9})
    top = write(tmp_path / "sub" / "top.yaml", {"base": "mid.yaml", "loss": {"kd": {"normalisation": "length"}},
                                                 "features": {"fbank": {"dither": 0.0}}})
    got = flatten(load_config(top))
    want = flatten(load_config(base))
    want.update({"loss.kd.weight": 0.0, "seed": 9, "loss.kd.normalisation": "length", "features.fbank.dither": 0.0})
    assert got == want
    assert "base" not in load_config(top)
    # the command line's overrides come last
    over = flatten(load_config(top, parse_overrides("seed=4 loss.kd.weight=0.25")))
    assert over == {**want, "seed": 4, "loss.kd.weight": 0.25}


def test_unknown_keys_missing_bases_and_loops_name_the_file(tmp_path):
    write(tmp_path / "base.yaml", tiny_config())
    bad = write(tmp_path / "bad.yaml", {"base": "base.yaml", "loss": {"kd": {"targett": "lda"}}})
    with pytest.raises(DataError, match=r"bad\.yaml: unknown setting loss\.kd\.'targett'"):
        load_config(bad)
    bad_base = write(tmp_path / "bad_base.yaml", {**tiny_config(), "optim": {"lr_final": 1.0}})
    variant = write(tmp_path / "v.yaml", {"base": "bad_base.yaml"})
    with pytest.raises(DataError, match=r"bad_base\.yaml: unknown setting optim\.'lr_final'"):
        load_config(variant)
    missing = write(tmp_path / "missing.yaml", {"base": "nowhere.yaml"})
    with pytest.raises(DataError, match=r"missing\.yaml: its base 'nowhere\.yaml' is not a file"):
        load_config(missing)
    write(tmp_path / "a.yaml", {"base": "b.yaml"})
    loop = write(tmp_path / "b.yaml", {"base": "a.yaml"})
    with pytest.raises(DataError, match="chain loops"):
        load_config(loop)
    with pytest.raises(DataError, match="override: unknown setting loss.kd.'wieght'"):
        load_config(str(tmp_path / "base.yaml"), parse_overrides("loss.kd.wieght=1"))


def test_overrides_are_dotted_keys_with_yaml_values():
    assert parse_overrides(["seed=3 loss.kd.weight=0.5", "loss.kd.target=lda"]) == {
        "seed": 3, "loss": {"kd": {"weight": 0.5, "target": "lda"}}}
    assert parse_overrides("short_seconds=[0.5,2] replay.init_from_source=false data.chunks_per_epoch=null") == {
        "short_seconds": [0.5, 2], "replay": {"init_from_source": False}, "data": {"chunks_per_epoch": None}}
    assert parse_overrides(None) == {} and parse_overrides(["", " "]) == {}
    for bad in ("seed", "=3", "loss..kd=1", "a=1 a.b=2"):
        with pytest.raises(DataError, match="override"):
            parse_overrides(bad)


def test_loading_leaves_the_defaults_untouched(tmp_path):
    before = copy.deepcopy(defaults_for("student"))
    config = load_config(write(tmp_path / "x.yaml", {"model": {"width": 64}, "loss": {"kd": {"lda": {"dim": 3}}}}),
                         parse_overrides("seed=1"))
    config["loss"]["aam"]["margin"] = -1.0  # a caller changing its configuration changes no later one
    assert defaults_for("student") == before
    assert load_config(None) == before


SHIPPED = sorted(glob.glob(os.path.join(CONF, "*.yaml")))


@pytest.mark.parametrize("path", SHIPPED, ids=os.path.basename)
def test_every_shipped_yaml_loads_and_a_variant_differs_from_its_base_only_where_it_says(path):
    kind = "transfer" if os.path.basename(path).startswith("transfer") else "student"
    config = load_config(path, None, kind)
    with open(path) as handle:
        own = yaml.safe_load(handle) or {}
    base = own.pop("base", None)
    if base is None:
        return
    parent = flatten(load_config(os.path.join(CONF, base), None, kind))
    child = flatten(config)
    changed = {k for k in child if child[k] != parent.get(k)}
    assert changed <= set(flatten(own)), sorted(changed - set(flatten(own)))


def test_the_recipe_variants_are_what_their_names_say(capsys):
    """What run.sh reads of them, through sidkd.bin.show_config."""
    from sidkd.bin.show_config import main

    def show(name, *keys, kind="student"):
        capsys.readouterr()
        assert main(["--kind", kind, os.path.join(CONF, f"{name}.yaml"), *keys]) == 0
        return capsys.readouterr().out.split("\n")[:-1]

    assert show("student_kd", "loss.kd.weight", "loss.kd.target") == ["1.0", "speaker_mean_lda"]
    assert show("student_nokd", "loss.kd.weight") == ["0.0"]
    assert show("student_kd_whiten", "loss.kd.normalisation", "loss.kd.target") == ["whiten", "ivector"]
    for target in ("lda", "speaker_mean", "speaker_mean_lda", "crop", "crop_lda", "relation"):
        assert show(f"student_kd_{target}", "loss.kd.target", "loss.kd.weight") == [target, "1.0"]
        # the teacher run.sh extracts for it: the crop targets read i-vectors of crops
        assert show(f"student_kd_{target}", "kd_teacher") == ["crops" if target.startswith("crop") else "utterances"]
    want = {"transfer_ce": ["1", "0.0"], "transfer_msce": ["3", "0.0"], "transfer_kl": ["1", "1.0"],
            "transfer_msce_kl": ["3", "1.0"]}
    for name, values in want.items():
        assert show(name, "loss.msce.sub_centers", "loss.kl.weight", kind="transfer") == values
    assert show("transfer_kl", "short_seconds", "loss.kl", kind="transfer")[1].startswith("{")


def test_asking_a_trained_system_for_another_target_names_the_key_and_overwrite_retrains(tmp_path, standin_fbank_backend):
    """The program level of sidkd.nnet.experiment: train_student with a variant file, then the
    same directory with another loss.kd.target."""
    from sidkd.bin import train_student

    data, teacher = make_tiny_data(str(tmp_path))
    conf = tiny_config(optim={**tiny_config()["optim"], "num_epochs": 1, "average_last": 1})
    write(tmp_path / "student.yaml", conf)
    write(tmp_path / "student_kd_lda.yaml", {"base": "student.yaml", "loss": {"kd": {"target": "lda", "lda": {"dim": 3}}}})
    out = str(tmp_path / "exp")
    common = ["--train-data", data, "--teacher-scp", teacher, "--dir", out]
    assert train_student.main(["--config", str(tmp_path / "student.yaml"), *common]) == 0
    with pytest.raises(DataError) as err:
        train_student.main(["--config", str(tmp_path / "student_kd_lda.yaml"), *common])
    assert "config.loss.kd.target: 'ivector' -> 'lda'" in str(err.value) and "--overwrite true" in str(err.value)
    assert train_student.main(["--config", str(tmp_path / "student_kd_lda.yaml"), *common, "--overwrite", "true"]) == 0
    with open(os.path.join(out, "config.yaml")) as handle:
        assert yaml.safe_load(handle)["config"]["loss"]["kd"]["target"] == "lda"


@pytest.mark.parametrize("setting, message", [
    ("optim.num_epochs=-1", "optim.num_epochs=-1 (from --set): not allowed; set it to a whole number >= 1"),
    ("optim.num_epochs=two", "optim.num_epochs='two' (from --set): not allowed; set it to a whole number >= 1"),
    ("optim.num_epochs=2.5", "optim.num_epochs=2.5 (from --set): not allowed; set it to a whole number >= 1"),
    ("optim.num_epochs=2", "optim.average_last=3 (from {conf}/student.yaml): not allowed; final.pt averages the "
                           "last checkpoints of optim.num_epochs=2 epochs: set it to at most 2"),
    ("optim.lr=0", "optim.lr=0 (from --set): not allowed; set it to a number > 0"),
    ("data.batch_size=true", "data.batch_size=True (from --set): not allowed; set it to a whole number >= 1"),
    ("data.batch_size=10 data.utts_per_speaker=3", "data.batch_size=10 (from --set): not allowed; a batch is whole "
                                                   "groups of data.utts_per_speaker=3 crops of one speaker: set it "
                                                   "to a multiple of 3"),
    ("data.chunks_per_epoch=0", "data.chunks_per_epoch=0 (from --set): not allowed; set it to a whole number >= 1, "
                                "or null"),
    ("loss.kd.lda.dim=0", "loss.kd.lda.dim=0 (from --set): not allowed; set it to a whole number >= 1"),
    ("loss.aam.margin_warmup_epochs=null", "loss.aam.margin_warmup_epochs=None (from --set): not allowed; set it "
                                           "to [start, end] epochs, 0 <= start <= end"),
    ("loss.aam.margin_warmup_epochs=[3,1]", "loss.aam.margin_warmup_epochs=[3, 1] (from --set): not allowed"),
])
def test_every_value_is_checked_before_a_training_starts_naming_key_value_origin_and_range(setting, message):
    with pytest.raises(DataError) as err:
        load_config(os.path.join(CONF, "student_kd.yaml"), parse_overrides(setting))
    assert message.format(conf=CONF) in str(err.value)


@pytest.mark.parametrize("setting, message", [
    ("replay.ratio=half", "replay.ratio='half' (from --set): not allowed; set it to a number >= 0"),
    ("replay.ratio=-0.5", "replay.ratio=-0.5 (from --set): not allowed; set it to a number >= 0"),
    ("replay.ratio=1", "replay.ratio=1 (from --set): not allowed; set it to the replayed share of each batch, "
                       "0 <= ratio < 1"),
])
def test_a_transfer_value_is_checked_likewise(setting, message):
    with pytest.raises(DataError) as err:
        load_config(os.path.join(CONF, "transfer.yaml"), parse_overrides(setting), kind="transfer")
    assert message in str(err.value)
    assert load_config(os.path.join(CONF, "transfer.yaml"), parse_overrides("replay.ratio=0"),
                       kind="transfer")["replay"]["ratio"] == 0


def test_values_in_range_pass_and_a_bad_value_in_a_file_names_the_file(tmp_path):
    config = load_config(os.path.join(CONF, "student_kd.yaml"),
                         parse_overrides("optim.num_epochs=1 optim.average_last=1 optim.lr=1e-3 data.chunks_per_epoch=null"))
    assert config["optim"]["num_epochs"] == 1 and config["data"]["chunks_per_epoch"] is None
    bad = write(tmp_path / "bad.yaml", {"base": os.path.join(CONF, "student.yaml"), "optim": {"num_epochs": 0}})
    with pytest.raises(DataError, match=r"optim.num_epochs=0 \(from .*bad\.yaml\): not allowed"):
        load_config(bad)


def test_train_student_refuses_a_bad_value_before_it_makes_its_directory(tmp_path):
    from sidkd.bin import train_student

    data, teacher = make_tiny_data(str(tmp_path))
    out = tmp_path / "exp"
    with pytest.raises(DataError, match=r"optim.num_epochs='two' \(from --set\)"):
        train_student.main(["--config", os.path.join(CONF, "student_kd.yaml"), "--train-data", data,
                            "--teacher-scp", teacher, "--dir", str(out), "--set", "optim.num_epochs=two"])
    assert not out.exists()


def test_the_base_yamls_are_the_only_defaults():
    """No constructor or option default that disagrees with conf/student.yaml / conf/transfer.yaml:
    the networks take every size from the yaml, and where a loss or front end keeps a default, it
    is the base yaml's value (for both kinds of training where both use it)."""
    import inspect

    from sidkd.nnet.features import FeatureFrontEnd
    from sidkd.nnet.losses import AAMSoftmax, RelationDistillation, TeacherDistillation
    from sidkd.nnet.models import ResNetSpeaker
    from sidkd.nnet.pooling import AttentiveStatsPool

    def defaults(fn):
        return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}

    student, transfer = defaults_for("student"), defaults_for("transfer")
    assert defaults(ResNetSpeaker) == {}
    for head in (student["loss"]["aam"], transfer["loss"]["msce"]):
        assert defaults(AAMSoftmax) == {k: head[k] for k in ("margin", "scale", "sub_centers")}
    for kd in (student["loss"]["kd"], transfer["loss"]["kd"]):
        assert defaults(TeacherDistillation)["normalisation"] == kd["normalisation"]
    relation = student["loss"]["kd"]["relation"]
    assert defaults(RelationDistillation) == {"loss": relation["loss"], "temperature": relation["temperature"]}
    assert defaults(AttentiveStatsPool)["attention_dim"] == student["model"]["attention_dim"]
    features = student["features"]
    assert {k: v for k, v in defaults(FeatureFrontEnd).items() if k != "options"} == {
        "cmn": features["cmn"], "sample_rate": features["sample_rate"], "kind": features["kind"]}


def test_a_configuration_is_its_base_yaml_where_it_says_nothing(tmp_path):
    """A yaml without a base is laid over the kind's base yaml: what it leaves out is the base's,
    and a key the base does not have is an error."""
    own = write(tmp_path / "own.yaml", {"seed": 11})
    config = load_config(own)
    assert config == {**defaults_for("student"), "seed": 11}
    assert load_config(None, None, "transfer") == defaults_for("transfer")
    with pytest.raises(DataError, match="unknown setting 'short_seconds'"):
        load_config(write(tmp_path / "t.yaml", {"short_seconds": 1.0}))
