"""The study runner (local/run_study.sh): a study killed during a training and run again ends with
the ledger of an uninterrupted run (the measured columns aside); a finished study run again trains
nothing and says so; rows carry the configuration hash the model directory records."""

import os
import re
import subprocess

import numpy as np
import yaml
from killing import env, kill_and_rerun
from tiny_student import TINY_YAML, speaker_files, write_data_dir

from tests.conftest import REPO_ROOT

# what the ledger measures (time, speed, when, which commit) may differ between runs; nothing else
MEASURED = ("commit", "train_seconds", "samples_per_s", "date")


def make_study(root):
    for item in ("steps", "utils", "local", "conf", "sidkd", "path.sh", "cmd.sh"):
        os.symlink(os.path.join(REPO_ROOT, item), root / item)
    files = speaker_files(7, 4)
    write_data_dir(str(root / "data" / "train"), files[:4])
    dev = write_data_dir(str(root / "data" / "dev"), [(s, f[:3]) for s, f in files[4:]])
    with open(root / "data" / "dev" / "trials", "w") as handle:
        for i, (a, sa) in enumerate(dev):
            for b, sb in dev[i + 1:]:
                handle.write(f"{a} {b} {'target' if sa == sb else 'nontarget'}\n")
    conf = yaml.safe_load(open(TINY_YAML))
    conf["optim"]["num_epochs"] = 3
    (root / "student.yaml").write_text(yaml.safe_dump(conf))
    (root / "student_nokd.yaml").write_text("base: student.yaml\nloss: {kd: {weight: 0.0}}\n")
    (root / "scale.yaml").write_text("base: student.yaml\ndata: {chunks_per_epoch: 8}\n")
    (root / "studies").mkdir()
    study = {"kind": "student", "scale": "scale.yaml", "train_data": "data/train", "lda_dim": 2, "asnorm": False,
             "seeds": [1],
             "systems": [{"name": "nokd", "config": "student_nokd.yaml"},
                         {"name": "nokd_fast", "config": "student_nokd.yaml", "set": "optim.lr=0.02"}],
             "trials": [{"name": "dev", "data": "data/dev", "backend_data": "data/train"},
                        {"name": "dev_short", "data": "data/dev", "backend_data": "data/train", "max_duration": 0.5,
                         "both_sides": True}]}
    (root / "studies" / "tiny.yaml").write_text(yaml.safe_dump(study))
    return ["local/run_study.sh", "--nj", "1", "studies/tiny.yaml"]


def ledger(root, drop=MEASURED):
    lines = [line.rstrip("\n").split("\t") for line in open(root / "studies" / "tiny" / "results.tsv")]
    keep = [i for i, name in enumerate(lines[0]) if name not in drop]
    return sorted([row[i] for i in keep] for row in lines[1:])


def run(root, command):
    proc = subprocess.run(command, cwd=root, env=env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_killed_study_ends_with_the_uninterrupted_ledger_and_a_finished_one_trains_nothing(tmp_path):
    ref_root, root = tmp_path / "ref", tmp_path / "run"
    ref_root.mkdir()
    root.mkdir()
    command = make_study(ref_root)
    make_study(root)
    # a limit: the first system runs (nothing measured yet), then its measured time stops the second
    out = run(ref_root, [*command[:-1], "--max-minutes", "0.01", command[-1]])
    assert "0 of 2 done, 2 to run" in out and "nokd_fast_seed1: not started: it would end at about" in out
    assert "1 of 2 done; left: nokd_fast_seed1" in out
    out = run(ref_root, command)
    assert "1 of 2 done, 1 to run" in out and "the study is complete" in out
    rows = ledger(ref_root, drop=())
    header = open(ref_root / "studies" / "tiny" / "results.tsv").readline().rstrip("\n").split("\t")
    assert len(rows) == 2 * 2 * 2  # systems × seeds × trial sets × back-ends
    assert {r[0] for r in rows} == {"nokd_seed1", "nokd_fast_seed1"}
    assert {(r[1], r[2]) for r in rows} == {(b, t) for b in ("cosine", "lda2+plda") for t in ("dev", "dev_short")}
    # each row's hash is the one its model directory records, and its merged config is in the ledger
    for row in rows:
        fields = dict(zip(header, row))
        with open(ref_root / "exp" / "studies" / "tiny" / fields["system"] / "config.yaml") as handle:
            record = yaml.safe_load(handle)
        assert record["config_hash"] == fields["config_hash"]
        assert record["config"]["seed"] == int(fields["seed"]) and record["config"]["data"]["chunks_per_epoch"] == 8
        saved = ref_root / "studies" / "tiny" / "configs" / f"{fields['config_hash'][:16]}.yaml"
        assert yaml.safe_load(saved.read_text()) == record["config"]
        assert 0 <= float(fields["EER%"]) <= 100 and float(fields["train_seconds"]) >= 0
    # run again: nothing is trained, and it says so
    again = run(ref_root, command)
    assert "2 of 2 done, 0 to run" in again and "the study is complete" in again
    assert "steps/train_student.sh" not in again and not list((ref_root / "exp").glob("studies/tiny/*/log/check.log"))
    assert ledger(ref_root, drop=()) == rows
    uninterrupted = ledger(ref_root)

    # a condition added to the finished study: a degraded test side (same utterance ids, clean
    # enrolment); the models are not retrained, only the new test side is embedded, old rows stay
    subprocess.run(["python", "-m", "sidkd.bin.degrade_data_dir", "--noise-data", "data/train", "--snr-db", "0",
                    "--num-talkers", "2", "data/dev", "data/dev_babble"], cwd=ref_root, env=env(), check=True)
    study = yaml.safe_load(open(ref_root / "studies" / "tiny.yaml"))
    study["trials"].append({"name": "dev_babble", "data": "data/dev", "test_data": "data/dev_babble",
                            "backend_data": "data/train", "lda_dim": 1})  # its own LDA, beside the study's 2
    (ref_root / "studies" / "tiny.yaml").write_text(yaml.safe_dump(study))
    model_dir = ref_root / "exp" / "studies" / "tiny" / "nokd_seed1"
    clean = os.stat(model_dir / "xvectors_dev" / "xvector.scp").st_mtime_ns
    out = run(ref_root, command)
    assert "0 of 2 done, 2 to run" in out and "the study is complete" in out
    assert out.count("this configuration finished training earlier") == 2
    assert os.stat(model_dir / "xvectors_dev" / "xvector.scp").st_mtime_ns == clean
    added = ledger(ref_root, drop=())
    assert [r for r in added if r[2] != "dev_babble"] == rows and len(added) == len(rows) + 2 * 2
    assert {r[1] for r in added if r[2] == "dev_babble"} == {"cosine", "lda1+plda"}
    for system in ("nokd_seed1", "nokd_fast_seed1"):
        dims = ref_root / "exp" / "studies" / "tiny" / system / "xvectors_train"
        assert (dims / "plda_lda1" / "lda_dim").read_text().strip() == "1"
        assert (dims / "plda_lda2" / "lda_dim").read_text().strip() == "2"
    for system in ("nokd_seed1", "nokd_fast_seed1"):
        scores = ref_root / "exp" / "studies" / "tiny" / system / "scores"
        assert (scores / "dev_babble" / "cosine" / "scores").read_text() != (scores / "dev" / "cosine" / "scores").read_text()

    # a transfer study's `config: source` row: that model scored as it is, untrained, under its own
    # hash and seed; the same model, trials and back-end give the student study's numbers
    transfer = {"kind": "transfer", "source": "exp/studies/tiny/nokd_seed1", "train_data": "data/train",
                "lda_dim": 2, "asnorm": False, "systems": [{"name": "source", "config": "source"}],
                "trials": [{"name": "dev", "data": "data/dev", "backend_data": "data/train"}]}
    (ref_root / "studies" / "from_source.yaml").write_text(yaml.safe_dump(transfer))
    out = run(ref_root, ["local/run_study.sh", "--nj", "1", "studies/from_source.yaml"])
    assert "steps/transfer_student.sh" not in out and "the study is complete" in out
    scored = [line.rstrip("\n").split("\t") for line in open(ref_root / "studies" / "from_source" / "results.tsv")][1:]
    student = {(r[1], r[2]): r for r in rows if r[0] == "nokd_seed1"}
    assert len(scored) == 2
    for r in scored:
        assert r[0] == "source_seed1" and r[3:6] == student[(r[1], r[2])][3:6]
        assert r[7] != student[(r[1], r[2])][7]  # the source's hash also covers its weights
        assert r[9] == "n/a"  # not trained by this study

    # killed during its training and run again: the same rows as uninterrupted (one system is enough:
    # the runner goes through its systems one after another with the same code)
    study = yaml.safe_load(open(root / "studies" / "tiny.yaml"))
    study["systems"] = study["systems"][:1]
    (root / "studies" / "tiny.yaml").write_text(yaml.safe_dump(study))

    def checkpoints():
        return bool(list((root / "exp" / "studies" / "tiny").glob("*/checkpoints/epoch_*.pt")))

    killed = kill_and_rerun(root, command, lambda: None, np.random.default_rng(3), 20.0, 1, started=checkpoints)
    assert killed >= 1
    assert ledger(root) == [row for row in uninterrupted if row[0] == "nokd_seed1"]


def test_max_minutes_starts_no_training_the_ledger_says_would_end_too_late(tmp_path):
    command = make_study(tmp_path)
    ledger_path = tmp_path / "studies" / "tiny" / "results.tsv"
    ledger_path.parent.mkdir(parents=True)
    # a finished system of this study that took 10 minutes
    header = ["system", "backend", "trials", "EER%", "minDCF(0.01)", "minDCF(0.001)", "seed", "config_hash",
              "commit", "train_seconds", "samples_per_s", "date"]
    ledger_path.write_text("\t".join(header) + "\n" + "\t".join(
        ["old_seed1", "cosine", "dev", "10.0", "0.5", "0.5", "1", "f" * 64, "x", "600", "50.0", "d"]) + "\n")
    out = run(tmp_path, [*command[:-1], "--max-minutes", "5", command[-1]])
    assert out.count("not started: it would end at about 10 min, past --max-minutes 5") == 2
    assert "ETA 20 min" in out and not (tmp_path / "exp" / "studies" / "tiny" / "nokd_seed1").exists()


def test_the_shipped_studies_validate_and_their_systems_load():
    import glob
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_study", os.path.join(REPO_ROOT, "local", "run_study.py"))
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    from sidkd.nnet.config import load_config, merge, parse_overrides

    paths = sorted(glob.glob(os.path.join(REPO_ROOT, "studies", "*.yaml")))
    assert paths
    cwd = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        for path in paths:
            study = runner.read_study(path)
            scale = runner.scale_layer(study)
            for system in study["systems"]:
                if system["config"] == runner.SOURCE:  # a model dir of exp/, scored as it is
                    continue
                config = load_config(system["config"], merge(scale, parse_overrides(system.get("set"))),
                                     kind=study["kind"])
                if scale:  # the study scale is in every system's configuration
                    assert config["optim"]["num_epochs"] == scale["optim"]["num_epochs"], (path, system)
    finally:
        os.chdir(cwd)


def test_a_study_without_its_data_names_what_is_missing(tmp_path):
    command = make_study(tmp_path)
    os.remove(tmp_path / "data" / "dev" / "trials")
    proc = subprocess.run(command, cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "missing data/dev/trials" in proc.stderr


def test_a_transfer_study_plans_its_variants_with_the_transfers_inputs(tmp_path):
    """Dry run of a transfer study: each variant × seed has a hash of its own, computed with the
    transfer's inputs (sidkd.nnet.transfer.TransferTask.inputs: the source model's digest counts)."""
    make_study(tmp_path)
    source = tmp_path / "exp" / "source"
    source.mkdir(parents=True)
    (source / "model.json").write_text("{}")
    (source / "final.pt").write_bytes(b"weights")
    study = {"kind": "transfer", "source": "exp/source", "train_data": "data/train", "long_data": "data/train",
             "lda_dim": 2, "asnorm": False, "seeds": [1, 2],
             "systems": [{"name": "ce", "config": "conf/transfer_ce.yaml"},
                         {"name": "msce_kl", "config": "conf/transfer_msce_kl.yaml"}],
             "trials": [{"name": "dev", "data": "data/dev", "backend_data": "data/train"}]}
    (tmp_path / "studies" / "transfer.yaml").write_text(yaml.safe_dump(study))
    command = ["local/run_study.sh", "--dry-run", "true", "studies/transfer.yaml"]
    out = run(tmp_path, command)
    hashes = dict(line.split(": ")[1].split(" (hash ") for line in out.splitlines() if "(hash " in line)
    assert sorted(hashes) == ["ce_seed1", "ce_seed2", "msce_kl_seed1", "msce_kl_seed2"]
    assert len(set(hashes.values())) == 4 and "0 of 4 done, 4 to run" in out
    # the source as a row of its own: scored as it is, under its own hash and seed, once
    (source / "config.yaml").write_text(yaml.safe_dump({"config_hash": "5" * 16, "config": {"seed": 3}}))
    study["systems"].insert(0, {"name": "source", "config": "source"})
    (tmp_path / "studies" / "transfer.yaml").write_text(yaml.safe_dump(study))
    def source_hash():
        out = run(tmp_path, command)
        assert "0 of 5 done" in out
        return re.search(r"source_seed3 \(hash (\w+)\): scored as it is, no training", out).group(1)

    first = source_hash()
    # the weights count: the same record with other weights (retrained elsewhere) is another source
    (source / "final.pt").write_bytes(b"weights retrained in bf16")
    second = source_hash()
    (source / "config.yaml").write_text(yaml.safe_dump({"config_hash": "6" * 16, "config": {"seed": 3}}))
    assert len({first, second, source_hash()}) == 3
    study["systems"][0]["seeds"] = [1, 2]
    (tmp_path / "studies" / "transfer.yaml").write_text(yaml.safe_dump(study))
    proc = subprocess.run(command, cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "takes no seeds or set" in proc.stderr
    del study["systems"][0]
    (tmp_path / "studies" / "transfer.yaml").write_text(yaml.safe_dump(study))
    (source / "final.pt").write_bytes(b"other weights")  # another source model: other configurations
    again = dict(line.split(": ")[1].split(" (hash ") for line in run(tmp_path, command).splitlines() if "(hash " in line)
    assert not set(again.values()) & set(hashes.values())
    assert not (tmp_path / "exp" / "studies").exists()  # a dry run runs nothing


def test_order_by_seed_runs_every_system_of_a_seed_first(tmp_path):
    command = make_study(tmp_path)
    path = tmp_path / "studies" / "tiny.yaml"
    study = yaml.safe_load(path.read_text())
    study.update(seeds=[1, 2], order="by_seed")
    path.write_text(yaml.safe_dump(study))
    out = run(tmp_path, [*command[:-1], "--dry-run", "true", command[-1]])
    planned = [line.split(": ")[1].split(" (hash")[0] for line in out.splitlines() if "(hash" in line]
    assert planned == ["nokd_seed1", "nokd_fast_seed1", "nokd_seed2", "nokd_fast_seed2"]
    study["order"] = "by_system"
    path.write_text(yaml.safe_dump(study))
    out = run(tmp_path, [*command[:-1], "--dry-run", "true", command[-1]])
    planned = [line.split(": ")[1].split(" (hash")[0] for line in out.splitlines() if "(hash" in line]
    assert planned == ["nokd_seed1", "nokd_seed2", "nokd_fast_seed1", "nokd_fast_seed2"]
    study["order"] = "random"
    path.write_text(yaml.safe_dump(study))
    proc = subprocess.run([*command[:-1], "--dry-run", "true", command[-1]], cwd=tmp_path, env=env(),
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "order 'random', expected one of" in proc.stdout + proc.stderr


def test_max_minutes_counts_the_embedding_and_scoring_time_it_measured(tmp_path, monkeypatch):
    """A system that trained in 1 min and then embedded and scored for 4 min: the next one, expected
    to take 1 + 4 min, is not started under --max-minutes 4 (training alone would fit)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_study", os.path.join(REPO_ROOT, "local", "run_study.py"))
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    command = make_study(tmp_path)
    monkeypatch.chdir(tmp_path)
    ran = []

    def measured_run_one(run, study, ledger, ledger_dir, commit, args):
        ran.append(run.name)
        rows = runner.read_ledger(ledger)
        for trial in study["trials"]:
            for backend in runner.backends_of(study, trial):
                rows.append([run.name, backend, trial["name"], "10.0", "0.5", "0.5", str(run.seed), run.hash,
                             commit, "60", "50.0", "d"])
        os.makedirs(ledger_dir, exist_ok=True)
        runner.atomic_write_text(ledger, "".join("\t".join(r) + "\n" for r in [runner.LEDGER_HEADER] + rows))
        return 240.0

    monkeypatch.setattr(runner, "run_one", measured_run_one)
    assert runner.main(["--max-minutes", "4", command[-1]]) == 0
    assert ran == ["nokd_seed1"]
    ran.clear()
    assert runner.main(["--max-minutes", "6", command[-1]]) == 0  # a fresh process: training time only
    assert ran == ["nokd_fast_seed1"]


# speakers of the recipe's training data dirs (README "Data"; data/train_dev_train: 30 held out;
# data/sc_dev_rest: data/sc_train less the 40 speakers of data/sc_dev)
RECIPE_SPEAKERS = {"data/train": 421, "data/train_dev_train": 391, "data/sc_train": 159, "data/sc_dev_rest": 119,
                   "data/train_dev_train_lab25": 99, "data/train_dev_train_lab50": 196,  # local/make_label_scarce.sh
                   "data/train_lab50": 211}


def test_the_committed_studies_merge_to_their_committed_configurations(tmp_path):
    """What makes the hash of every committed row: each system × seed of each study merges (as
    run_study merges it, sizes fitted to the recipe's speakers included) to exactly the configuration
    committed beside its rows, studies/<name>/configs/<hash>.yaml. A new key, a new default or a size
    fitted where the recipe's data did not need it would change the hash and retrain every row."""
    import glob
    import importlib.util

    from sidkd.nnet.config import load_config, merge, parse_overrides
    from sidkd.sizes import fit_student_config, fit_transfer_config

    spec = importlib.util.spec_from_file_location("run_study", os.path.join(REPO_ROOT, "local", "run_study.py"))
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    checked = 0
    cwd = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        for path in sorted(glob.glob("studies/*.yaml")):
            study = runner.read_study(path)
            scale = runner.scale_layer(study)
            name = os.path.splitext(os.path.basename(path))[0]
            hashes = {}
            for row in runner.read_ledger(os.path.join("studies", name, "results.tsv")):
                hashes.setdefault(row[0], set()).add(row[7][:16])
            if not hashes:
                continue  # a planned study: no committed row yet
            utt2spk = {}
            for role in ("train_data", "long_data"):
                if study.get(role):
                    utt2spk[role] = tmp_path / f"{name}.{role}.utt2spk"
                    speakers = RECIPE_SPEAKERS[study[role]]
                    utt2spk[role].write_text("".join(f"u{i}-{j} s{i}\n" for i in range(speakers) for j in range(2)))
            for system in study["systems"]:
                if system["config"] == runner.SOURCE:
                    continue
                for seed in system.get("seeds", study.get("seeds", [1])):
                    run = f"{system['name']}_seed{seed}"
                    overrides = merge(merge(scale, parse_overrides(system.get("set"))), {"seed": int(seed)})
                    config = load_config(system["config"], overrides, kind=study["kind"])
                    if study["kind"] == "student":
                        fitted, notes = fit_student_config(config, str(utt2spk["train_data"]))
                    else:
                        fitted, notes = fit_transfer_config(config, str(utt2spk["train_data"]),
                                                            str(utt2spk["long_data"]) if "long_data" in utt2spk else None)
                    assert fitted == config and not notes, (path, run, notes)
                    if run not in hashes:
                        continue  # a study in progress: this system has no committed row to protect yet
                    committed = [yaml.safe_load(open(os.path.join("studies", name, "configs", f"{h}.yaml")))
                                 for h in sorted(hashes[run])]
                    assert config in committed, (path, run)
                    checked += 1
    finally:
        os.chdir(cwd)
    assert checked >= 38


def test_the_runner_skips_by_configuration_hash_not_by_system_name(tmp_path, monkeypatch):
    """Rows of nokd's configuration filed under another name make nokd done; rows named nokd_fast
    with another hash leave nokd_fast to run (a runner keyed on names would do the opposite)."""
    import sys

    command = make_study(tmp_path)
    monkeypatch.chdir(tmp_path)
    sys.path.insert(0, os.path.join(REPO_ROOT, "local"))
    import run_study

    study = run_study.read_study("studies/tiny.yaml")
    nokd = run_study.Run(study, "tiny", study["systems"][0], 1, run_study.scale_layer(study))
    assert nokd.name == "nokd_seed1"
    ledger_path = tmp_path / "studies" / "tiny" / "results.tsv"
    ledger_path.parent.mkdir(parents=True)
    rows = [[name, backend, trials, "5.0", "0.5", "0.7", "1", config_hash, "abc", "10", "1.0", "d"]
            for name, config_hash in (("renamed_seed1", nokd.hash), ("nokd_fast_seed1", "f" * 64))
            for trials in ("dev", "dev_short") for backend in ("cosine", "lda2+plda")]
    ledger_path.write_text("\t".join(run_study.LEDGER_HEADER) + "\n" + "".join("\t".join(r) + "\n" for r in rows))
    out = run(tmp_path, [*command[:-1], "--dry-run", "true", command[-1]])
    assert re.search(r"nokd_seed1 \(hash \w+\): done", out), out
    assert re.search(r"nokd_fast_seed1 \(hash \w+\): to run", out), out
    assert "1 of 2 done, 1 to run" in out


def test_the_runner_refuses_an_uncommitted_checkout_unless_told(tmp_path):
    """In a git checkout with a changed tracked file (not the study's own ledger): an error naming
    --allow-uncommitted; with it, the run starts and its rows' commit ends in +dirty."""
    command = make_study(tmp_path)
    for args in (["init", "-q"], ["add", "studies"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "s"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    (tmp_path / "studies" / "tiny.yaml").write_text((tmp_path / "studies" / "tiny.yaml").read_text() + "# edited\n")
    proc = subprocess.run(command, cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "uncommitted changes (git status)" in proc.stderr and "--allow-uncommitted true" in proc.stderr
    assert not (tmp_path / "exp" / "studies").exists()
    dry = run(tmp_path, [*command[:-1], "--dry-run", "true", command[-1]])  # a plan is always allowed
    assert "0 of 2 done" in dry
