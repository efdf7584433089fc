"""Run a study: train what is unfinished, embed, score, and append one row per system × seed × trial
set × back-end to its ledger studies/<name>/results.tsv, which is committed; exp/ is not.

    local/run_study.sh [--max-minutes M] [--nj N] [--dry-run true] studies/kd_targets.yaml

A study file (studies/<name>.yaml) lists its systems; each is a variant file, seeds and optional
``set`` overrides, laid under the study's ``scale`` (the differences of a scale file such as
conf/student_study.yaml, laid over every system). The runner merges each system's configuration,
hashes it with its inputs exactly as the training will (sidkd.nnet.experiment), and skips a system
whose hash has every row in the ledger: a finished row is never computed again, whatever was lost
from exp/. Otherwise it trains (resuming a checkpoint left by a killed run), embeds, trains the
back-ends and scores with the recipe's steps, then appends the rows (atomically, one system at a
time) and its merged configuration as studies/<name>/configs/<hash>.yaml. ``--max-minutes M``
starts no training that the ledger's measured time (the mean training time of its finished
systems, measured anew after each one, less the epochs a killed run left as checkpoints) says would
end after M minutes from the runner's start, with the embedding and scoring time of the systems it
has finished added; with nothing measured yet it starts one, which measures. Every system line says done / to run, with an estimate; the last line the ETA.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import os
import re
import subprocess
import sys
import time

import yaml

from sidkd.backend.backends import columns
from sidkd.errors import DataError
from sidkd.io.datadir import atomic_write_text
from sidkd.metrics.results import RESULTS_HEADER, read_results_table, read_rows
from sidkd.nnet.config import KINDS, load_config, merge, parse_overrides
from sidkd.nnet.experiment import config_hash, model_digest
from sidkd.nnet.teacher_targets import target_uses_crops
from sidkd.sizes import fit_student_config, fit_transfer_config

LEDGER_HEADER = RESULTS_HEADER + ["seed", "config_hash", "commit", "train_seconds", "samples_per_s", "date"]
STUDY_KEYS = {"description", "kind", "scale", "train_data", "teacher", "crop_teacher", "source", "long_data",
              "seeds", "systems", "trials", "lda_dim", "asnorm", "asnorm_top_n", "order"}
# order of the runs: every seed of a system before the next system, or (by_seed) every system of a
# seed before the next seed, so that a study stopped half way has whole pairs to compare
ORDERS = ("by_system", "by_seed")
SYSTEM_KEYS = {"name", "config", "seeds", "set"}
SOURCE = "source"  # a transfer study's system with `config: source`: the source model, scored as it is
# test_data: the test side from another data dir with the same utterance ids (a degraded copy of
# data, sidkd.bin.degrade_data_dir); the enrolment side stays the clean data.
# lda_dim: this trial set's LDA dimension (default: the study's), below its back-end's PLDA speakers
TRIAL_KEYS = {"name", "data", "test_data", "backend_data", "max_duration", "both_sides", "lda_dim"}


def read_study(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        study = yaml.safe_load(handle) or {}
    where = path
    unknown = set(study) - STUDY_KEYS
    if unknown:
        raise DataError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(STUDY_KEYS)}")
    study.setdefault("kind", "student")
    if study["kind"] not in KINDS:
        raise DataError(f"{where}: kind {study['kind']!r}, expected one of {KINDS}")
    for key in ("train_data", "systems", "trials"):
        if not study.get(key):
            raise DataError(f"{where}: '{key}' is required")
    if study.setdefault("order", "by_system") not in ORDERS:
        raise DataError(f"{where}: order {study['order']!r}, expected one of {ORDERS}")
    if study["kind"] == "transfer" and not study.get("source"):
        raise DataError(f"{where}: a transfer study needs 'source' (the source model dir)")
    names = set()
    for system in study["systems"]:
        bad = set(system) - SYSTEM_KEYS
        if bad or "name" not in system or "config" not in system:
            raise DataError(f"{where}: system {system!r}: needs name and config; may have seeds, set")
        if system["name"] in names or not re.fullmatch(r"[A-Za-z0-9_.+-]+", system["name"]):
            raise DataError(f"{where}: system name {system['name']!r} is repeated or not a plain word")
        names.add(system["name"])
        if system["config"] == SOURCE and (study["kind"] != "transfer" or set(system) - {"name", "config"}):
            raise DataError(f"{where}: system {system['name']!r}: 'config: {SOURCE}' (the source model as it is) "
                            "belongs to a transfer study and takes no seeds or set")
    for trial in study["trials"]:
        bad = set(trial) - TRIAL_KEYS
        if bad or not {"name", "data", "backend_data"} <= set(trial):
            raise DataError(f"{where}: trial set {trial!r}: needs name, data, backend_data; may have "
                            f"test_data, max_duration, both_sides, lda_dim")
    return study


def check_prerequisites(study: dict, where: str) -> None:
    """The data dirs, trials and source a study reads must exist before anything runs."""
    needed = [os.path.join(study["train_data"], "wav.scp")]
    for trial in study["trials"]:
        needed += [os.path.join(trial["data"], "wav.scp"), os.path.join(trial["data"], "trials"),
                   os.path.join(trial["backend_data"], "wav.scp"),
                   os.path.join(trial.get("test_data", trial["data"]), "wav.scp")]
    if study["kind"] == "transfer":
        needed.append(os.path.join(study["source"], "final.pt"))
    missing = [path for path in needed if not os.path.isfile(path)]
    if missing:
        raise DataError(f"{where}: missing {', '.join(sorted(set(missing)))}: make them first (the study file's "
                        f"comment names the commands)")


def scale_layer(study: dict) -> dict:
    """The scale file's own settings (its differences from its base), laid over every system."""
    path = study.get("scale")
    if not path:
        return {}
    with open(path, encoding="utf-8") as handle:
        layer = yaml.safe_load(handle) or {}
    layer.pop("base", None)
    return layer


class Run:
    """One system × seed of a study: its merged config, inputs, hash and directories."""

    def __init__(self, study: dict, study_name: str, system: dict, seed: int, scale: dict):
        self.study, self.system, self.seed = study, system, seed
        self.scored_as_is = study["kind"] == "transfer" and system["config"] == SOURCE
        if self.scored_as_is:
            self._as_source(study["source"])
            return
        self.name = f"{system['name']}_seed{seed}"
        overrides = merge(merge(scale, parse_overrides(system.get("set"))), {"seed": seed})
        self.config = load_config(system["config"], overrides, kind=study["kind"])
        # sizes fitted to the data as the training will fit them (the same hash): sidkd.sizes
        if study["kind"] == "student":
            self.config = fit_student_config(self.config, os.path.join(study["train_data"], "utt2spk"))[0]
        else:
            long_data = study.get("long_data")
            self.config = fit_transfer_config(self.config, os.path.join(study["train_data"], "utt2spk"),
                                              os.path.join(long_data, "utt2spk") if long_data else None)[0]
        self.dir = os.path.join("exp", "studies", study_name, self.name)
        self.teacher = self._teacher()
        self.inputs = self._inputs()
        self.hash = config_hash(self.config, self.inputs)

    def _as_source(self, source: str) -> None:
        """The source model dir as it is: its own configuration and seed; nothing is trained. Its hash
        is of the training record and of the weights: a source retrained on another machine (another
        precision, other numbers) under the same configuration is another row, never an old one's."""
        record_path = os.path.join(source, "config.yaml")
        try:
            with open(record_path, encoding="utf-8") as handle:
                record = yaml.safe_load(handle)
            self.config = record["config"]
            self.hash = config_hash(self.config, {"trained_as": str(record["config_hash"]),
                                                  "weights": model_digest(source)})
        except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
            raise DataError(f"{record_path}: cannot read the source's training record ({exc})") from None
        self.seed = int(self.config.get("seed", 0))
        self.name = f"{self.system['name']}_seed{self.seed}"
        self.dir, self.teacher, self.inputs = source, None, {}

    def _teacher(self) -> str | None:
        kd = self.config["loss"]["kd"]
        if float(kd["weight"]) <= 0:
            return None
        if self.study["kind"] == "student" and target_uses_crops(kd["target"]):
            return self.study.get("crop_teacher")
        return self.study.get("teacher")

    def _inputs(self) -> dict:
        """The inputs the training will record (its task's), for the configuration hash."""
        teacher = f"scp:{self.teacher}" if self.teacher else None
        if self.study["kind"] == "student":
            from sidkd.nnet.trainer import StudentTask
            return StudentTask(self.study["train_data"], teacher).inputs(self.config)
        from sidkd.nnet.transfer import TransferTask
        return TransferTask(self.study["source"], self.study["train_data"], self.study.get("long_data"),
                            teacher).inputs(self.config)

    def train_command(self, config_path: str, cuda_cmd: str) -> list[str]:
        common = ["--cmd", cuda_cmd, "--nnet-config", config_path]
        teacher = self.teacher or "none"
        if self.study["kind"] == "student":
            return ["steps/train_student.sh", *common, self.study["train_data"], teacher, self.dir]
        long = ["--long-data", self.study["long_data"]] if self.study.get("long_data") else []
        return ["steps/transfer_student.sh", *common, *long, self.study["source"], self.study["train_data"],
                teacher, self.dir]

    def share_left(self) -> float:
        """The share of the training still to run: 1 less the epochs checkpointed in its directory
        (by an earlier, killed run of this configuration); none for a model scored as it is."""
        if self.scored_as_is:
            return 0.0
        epochs = int(self.config["optim"]["num_epochs"])
        done = [int(m.group(1)) for p in glob.glob(os.path.join(self.dir, "checkpoints", "epoch_*.pt"))
                if (m := re.search(r"epoch_(\d+)\.pt$", p))]
        return 1.0 - min(max(done, default=0), epochs) / epochs


def read_ledger(path: str) -> list[list[str]]:
    return read_rows(path, header=LEDGER_HEADER)


def git_commit() -> str:
    """HEAD, with +dirty when a tracked file other than a study's own ledger or configs (which the
    runner writes) differs from it; "unknown" outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                text=True, check=True).stdout.splitlines()
        dirty = [line for line in status if not re.match(r"studies/[^/]+/(results\.tsv|configs/)", line[3:])]
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def epoch_speeds(model_dir: str) -> dict[int, float]:
    """epoch -> samples/s from the training logs (the last word on each epoch: a resumed run's)."""
    speeds: dict[int, float] = {}
    logs = sorted(glob.glob(os.path.join(model_dir, "log", "train.*.log"))) + [os.path.join(model_dir, "log", "train.log")]
    for path in logs:
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                m = re.search(r"epoch (\d+)/\d+: .*?, ([0-9.]+) samples/s", line)
                if m:
                    speeds[int(m.group(1))] = float(m.group(2))
    return speeds


def is_current(scp: str, model: str, utt2spk: str) -> bool:
    """Whether ``scp`` holds an embedding of every utterance, made after ``model`` was written."""
    try:
        if os.path.getmtime(scp) < os.path.getmtime(model):
            return False
        with open(scp, encoding="utf-8") as a, open(utt2spk, encoding="utf-8") as b:
            return [line.split()[0] for line in a] == [line.split()[0] for line in b]
    except OSError:
        return False


def sh(command: list[str], log_file=None) -> None:
    proc = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT if log_file else None)
    if proc.returncode != 0:
        raise DataError(f"{' '.join(command)}: failed (exit {proc.returncode})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="run_study", description=__doc__.split("\n")[0])
    parser.add_argument("--max-minutes", type=float, default=0.0,
                        help="start no training that would end later than this after the start (0: no limit)")
    parser.add_argument("--nj", type=int, default=2, help="parallel jobs of the embedding and scoring steps")
    parser.add_argument("--cmd", default="run.pl", help="job runner of the embedding and scoring steps")
    parser.add_argument("--cuda-cmd", default="run.pl", help="job runner of the trainings")
    parser.add_argument("--dry-run", default="false", choices=["true", "false"], help="print the plan, run nothing")
    parser.add_argument("--allow-uncommitted", default="false", choices=["true", "false"],
                        help="run from a tree with uncommitted changes (its rows' commit ends in +dirty)")
    parser.add_argument("study", help="studies/<name>.yaml")
    args = parser.parse_args(argv)
    start = time.monotonic()
    study = read_study(args.study)
    name = os.path.splitext(os.path.basename(args.study))[0]
    ledger_dir = os.path.join(os.path.dirname(args.study) or ".", name)
    ledger = os.path.join(ledger_dir, "results.tsv")
    scale = scale_layer(study)
    check_prerequisites(study, args.study)
    runs = [Run(study, name, system, int(seed), scale)
            for system in study["systems"]
            for seed in ([0] if system["config"] == SOURCE else system.get("seeds", study.get("seeds", [1])))]
    if study["order"] == "by_seed":
        runs.sort(key=lambda run: run.seed)  # stable: the systems' order within a seed
    wanted = {(t["name"], b) for t in study["trials"] for b in backends_of(study, t)}

    def done_rows(run: Run) -> set[tuple[str, str]]:
        return {(r[2], r[1]) for r in read_ledger(ledger) if r[7] == run.hash}

    def minutes_of(run: Run) -> float | None:
        """The training time the ledger measured (the mean over its systems: one study, one scale),
        less what a killed run left as checkpoints; None before the first system is measured."""
        seconds = {r[7]: float(r[9]) for r in read_ledger(ledger) if re.fullmatch(r"[0-9.]+", r[9])}
        return sum(seconds.values()) / len(seconds) / 60 * run.share_left() if seconds else None

    todo = [run for run in runs if not wanted <= done_rows(run)]
    for run in runs:
        guess = minutes_of(run) if run in todo else None
        state = ("done" if run not in todo else "scored as it is, no training" if run.scored_as_is
                 else "to run" + (", trained: embedding and scoring only" if guess == 0
                                  else f", about {guess:.0f} min" if guess else ""))
        print(f"{args.study}: {run.name} (hash {run.hash[:12]}): {state}", flush=True)
    trained = [run for run in todo if not run.scored_as_is]
    known = [m for m in map(minutes_of, trained) if m is not None]
    print(f"{args.study}: {len(runs) - len(todo)} of {len(runs)} done, {len(todo)} to run"
          + (f", ETA {sum(known):.0f} min" + (" (+ runs of unknown speed)" if len(known) < len(trained) else "")
             if known else ""), flush=True)
    if args.dry_run == "true":
        return 0
    commit = git_commit()  # the code the rows come from: the checkout as the runner started
    if commit.endswith("+dirty") and args.allow_uncommitted != "true" and len(todo) > 0:
        raise DataError(f"the checkout has uncommitted changes (git status): rows made now could not name the "
                        f"code they come from; commit first, or pass --allow-uncommitted true (their commit is then "
                        f"marked {commit})")
    os.makedirs(os.path.join(ledger_dir, "configs"), exist_ok=True)
    scoring = []  # minutes of embedding and scoring of each system this process ran
    for run in todo:
        elapsed, guess = (time.monotonic() - start) / 60, minutes_of(run)  # measured anew after each system
        if guess is not None and scoring:
            guess += sum(scoring) / len(scoring)  # the time after the training too, once measured
        if args.max_minutes > 0 and guess is not None and elapsed + guess > args.max_minutes:
            print(f"{args.study}: {run.name}: not started: it would end at about "
                  f"{elapsed + guess:.0f} min, past --max-minutes {args.max_minutes:g}", flush=True)
            continue
        scoring.append(run_one(run, study, ledger, ledger_dir, commit, args) / 60)
        print(f"{args.study}: {run.name}: rows appended to {ledger}", flush=True)
    left = [run for run in runs if not wanted <= done_rows(run)]
    print(f"{args.study}: {len(runs) - len(left)} of {len(runs)} done"
          + (f"; left: {' '.join(r.name for r in left)}" if left else "; the study is complete"), flush=True)
    return 0


def lda_dim_of(study: dict, trial: dict) -> int:
    return int(trial.get("lda_dim", study.get("lda_dim", 150)))


def backends_of(study: dict, trial: dict) -> list[str]:
    """The columns local/score_backends.sh fills for this trial set (the back-end registry's at its
    LDA dimension)."""
    return columns(lda_dim_of(study, trial), bool(study.get("asnorm", True)))


def run_one(run: Run, study: dict, ledger: str, ledger_dir: str, commit: str, args) -> float:
    """Trains (or resumes, or finds finished) one system, embeds, scores, appends its rows; returns the
    seconds spent after the training (embedding and scoring)."""
    config_path = os.path.join(ledger_dir, "configs", f"{run.hash[:16]}.yaml")
    if not os.path.exists(config_path):
        text = (f"# {run.name} of {ledger}: the merged configuration of config hash {run.hash}\n"
                + yaml.safe_dump(run.config, sort_keys=False))
        atomic_write_text(config_path, text)
    if not run.scored_as_is:
        os.makedirs(run.dir, exist_ok=True)
        sh(run.train_command(config_path, args.cuda_cmd))
    trained_at = time.monotonic()
    # only the trial sets the ledger lacks: a set added to a finished study leaves the old rows as they were
    done = {(r[2], r[1]) for r in read_ledger(ledger) if r[7] == run.hash}
    trials = [t for t in study["trials"] if any((t["name"], b) not in done for b in backends_of(study, t))]
    xv = {}
    for trial in trials:
        test = (trial.get("test_data", trial["data"]), trial.get("max_duration", 0))
        for data, crop in ((trial["backend_data"], 0), (trial["data"], 0), test):
            key = (data, crop)
            if key in xv:
                continue
            out = os.path.join(run.dir, f"xvectors_{os.path.basename(data.rstrip('/'))}" + (f"_{crop:g}s" if crop else ""))
            xv[key] = os.path.join(out, "xvector.scp")
            if is_current(xv[key], os.path.join(run.dir, "final.pt"), os.path.join(data, "utt2spk")):
                continue  # embedded by this model already (a trial set added to a study after its training)
            opts = ["--max-duration", f"{crop:g}"] if crop else []
            sh(["steps/extract_embeddings.sh", "--nj", str(args.nj), "--cmd", args.cmd, *opts, run.dir, data, out])
    scratch = os.path.join(run.dir, "results.tsv")
    if os.path.exists(scratch):
        os.remove(scratch)
    plda_dirs = {}
    for trial in trials:
        train_scp, lda_dim = xv[(trial["backend_data"], 0)], lda_dim_of(study, trial)
        plda_dir = plda_dirs.get((train_scp, lda_dim))
        if plda_dir is None:
            plda_dir = plda_dirs[(train_scp, lda_dim)] = os.path.join(os.path.dirname(train_scp), f"plda_lda{lda_dim}")
            sh(["steps/train_plda.sh", "--cmd", args.cmd, "--lda-dim", str(lda_dim), train_scp,
                trial["backend_data"], plda_dir])
        test_scp = xv[(trial.get("test_data", trial["data"]), trial.get("max_duration", 0))]
        enrol_scp = test_scp if trial.get("both_sides") else xv[(trial["data"], 0)]
        sh(["local/score_backends.sh", "--cmd", args.cmd, "--top-n", str(study.get("asnorm_top_n", 300)),
            "--asnorm", "true" if study.get("asnorm", True) else "false", "--plot", "false",
            "--results", scratch, "--test-scp", test_scp, "--trials-name", trial["name"], run.name,
            train_scp, enrol_scp, plda_dir, os.path.join(trial["data"], "trials"),
            os.path.join(run.dir, "scores", trial["name"])])
    table = read_results_table(scratch)
    speeds = epoch_speeds(run.dir)
    samples_per_s = f"{sum(speeds.values()) / len(speeds):.1f}" if speeds else "n/a"
    seconds = "n/a"  # a source scored as it is was not trained here: no time of this study's
    if not run.scored_as_is:
        try:
            with open(os.path.join(run.dir, "train_seconds"), encoding="utf-8") as handle:
                seconds = handle.read().strip()
        except OSError:
            pass
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = read_ledger(ledger)
    for trial in trials:
        for backend in (b for b in backends_of(study, trial) if (trial["name"], b) not in done):
            values = table.get((run.name, backend, trial["name"]))
            if values is None:
                raise DataError(f"{scratch}: no row for {run.name} {backend} {trial['name']}")
            rows.append([run.name, backend, trial["name"], *values, str(run.seed), run.hash, commit, seconds,
                         samples_per_s, date])
    atomic_write_text(ledger, "".join("\t".join(r) + "\n" for r in [LEDGER_HEADER] + rows))
    return time.monotonic() - trained_at


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DataError as exc:
        print(f"ERROR (run_study) {exc}", file=sys.stderr)
        sys.exit(1)
