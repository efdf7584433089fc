"""local/make_dev_split.sh: the validation speakers are held out whole, never of an excluded
(prefixed) corpus, their trials pair only them, and a student trained on the train part has
never seen one of them."""

import json
import subprocess

from nnet_helpers import make_tiny_data, tiny_config

from sidkd.io.datadir import read_utt2spk
from tests.conftest import REPO_ROOT, tool_env


def _split(data, out, seed=777, num=2, exclude="spk0"):
    proc = subprocess.run(["local/make_dev_split.sh", "--num-speakers", str(num), "--seed", str(seed),
                           "--exclude-prefixes", exclude, data, f"{out}/tr", f"{out}/dev"], cwd=REPO_ROOT,
                          env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc


def test_dev_split_is_speaker_disjoint_from_what_the_student_trains_on(tmp_path, standin_fbank_backend):
    from sidkd.nnet.config import load_config
    from sidkd.nnet.trainer import train

    data, _ = make_tiny_data(str(tmp_path), speakers=6, utts=3)
    proc = _split(data, str(tmp_path / "a"))
    assert proc.returncode == 0, proc.stdout
    assert "2 speakers, 6 utterances, 15 trials (6 target)" in proc.stdout
    full = read_utt2spk(f"{data}/utt2spk")
    train_part = read_utt2spk(f"{tmp_path}/a/tr/utt2spk")
    dev = read_utt2spk(f"{tmp_path}/a/dev/utt2spk")
    dev_speakers = set(dev.values())
    assert len(dev_speakers) == 2 and "spk0" not in dev_speakers  # spk0 is of the excluded "corpus"
    assert not dev_speakers & set(train_part.values())
    assert sorted({**dev, **train_part}) == sorted(full)
    assert not set(dev) & set(train_part)
    with open(f"{tmp_path}/a/dev/trials") as f:
        trials = [line.split() for line in f]
    assert len(trials) == 15
    for enroll, test, label in trials:
        assert enroll in dev and test in dev
        assert label == ("target" if dev[enroll] == dev[test] else "nontarget")
    # seeded: the same seed gives the same split, and the held-out list is kept with it
    again = _split(data, str(tmp_path / "b"))
    assert again.returncode == 0
    assert read_utt2spk(f"{tmp_path}/b/dev/utt2spk") == dev
    with open(f"{tmp_path}/a/dev/held_out.spk") as f:
        assert f.read().split() == sorted(dev_speakers)
    # the student trained on the train part knows none of the held-out speakers
    conf = tiny_config()
    conf["optim"].update(num_epochs=1, average_last=1)
    conf["loss"]["kd"]["weight"] = 0.0
    train(load_config(None, conf), f"{tmp_path}/a/tr", str(tmp_path / "exp"))
    with open(tmp_path / "exp" / "model.json") as f:
        trained_on = set(json.load(f)["speakers"])
    assert trained_on == set(train_part.values()) and not trained_on & dev_speakers


def test_dev_split_needs_enough_candidates(tmp_path):
    data, _ = make_tiny_data(str(tmp_path), speakers=3, utts=2)
    proc = _split(data, str(tmp_path / "a"), num=2, exclude="spk0")
    assert proc.returncode != 0
    assert "asked for 2 held-out speakers, only 2 candidates" in proc.stdout
    assert not (tmp_path / "a" / "dev").exists() and not (tmp_path / "a" / "tr").exists()


def test_dev_split_is_kept_for_the_same_parameters_and_remade_for_others(tmp_path):
    data, _ = make_tiny_data(str(tmp_path), speakers=8, utts=3)
    out = str(tmp_path / "a")
    first = _split(data, out, seed=1)
    assert first.returncode == 0, first.stdout
    before = read_utt2spk(f"{out}/dev/utt2spk")
    params = open(f"{out}/dev/split_params").read()
    assert "num_speakers=2 seed=1 " in params and "src_utt2spk_sha1=" in params
    same = _split(data, out, seed=1)
    assert same.returncode == 0 and "exists; kept" in same.stdout
    # another seed: remade, with a line naming what changed
    seeds = {}
    for seed in range(2, 12):
        other = _split(data, out, seed=seed)
        assert other.returncode == 0 and f"(now: seed={seed} )" in other.stdout, other.stdout
        seeds[seed] = set(read_utt2spk(f"{out}/dev/utt2spk").values())
        if seeds[seed] != set(before.values()):
            break
    assert any(s != set(before.values()) for s in seeds.values())  # some seed holds out other speakers
    # a rebuilt source (one utterance fewer) remakes the split too
    with open(f"{data}/utt2spk") as handle:
        lines = handle.readlines()
    with open(f"{data}/utt2spk", "w") as handle:
        handle.writelines(lines[1:])
    with open(f"{data}/wav.scp") as handle:
        lines = handle.readlines()
    with open(f"{data}/wav.scp", "w") as handle:
        handle.writelines(lines[1:])
    rebuilt = _split(data, out, seed=seed)
    assert rebuilt.returncode == 0 and "src_utt2spk_sha1=" in rebuilt.stdout and "remaking" in rebuilt.stdout
    both = {**read_utt2spk(f"{out}/dev/utt2spk"), **read_utt2spk(f"{out}/tr/utt2spk")}
    assert len(both) == 8 * 3 - 1


def test_the_held_out_speakers_follow_the_seed(tmp_path):
    """Drawn afresh each time (new output dirs): the same seed holds out the same speakers, and the
    seeds between them hold out more than one set: a script that ignores --seed, or draws unseeded,
    fails one of the two."""
    data, _ = make_tiny_data(str(tmp_path), speakers=8, utts=2)  # 7 candidates, 21 possible pairs
    held_out = {}
    for seed in (1, 2, 3, 4):
        for attempt in range(2):
            out = str(tmp_path / f"seed{seed}_{attempt}")
            proc = _split(data, out, seed=seed)
            assert proc.returncode == 0, proc.stdout
            speakers = open(f"{out}/dev/held_out.spk").read().split()
            assert speakers == sorted(set(read_utt2spk(f"{out}/dev/utt2spk").values()))
            held_out.setdefault(seed, []).append(speakers)
    for seed, draws in held_out.items():
        assert draws[0] == draws[1], f"seed {seed} held out {draws[0]}, then {draws[1]}"
    assert len({tuple(draws[0]) for draws in held_out.values()}) > 1, held_out
