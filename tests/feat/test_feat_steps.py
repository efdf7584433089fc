"""steps/make_mfcc.sh, make_fbank.sh, compute_vad_decision.sh on a tiny data dir (needs utils/)."""

import glob
import os
import shutil
import subprocess
import sys

import kaldiio

from tests.conftest import CORPORA
from tests.conftest import REPO_ROOT as REPO


def make_recipe(tmp_path):
    for item in ("steps", "utils", "conf", "sidkd", "path.sh", "cmd.sh"):
        os.symlink(os.path.join(REPO, item), tmp_path / item)
    data = tmp_path / "data" / "mini"
    data.mkdir(parents=True)
    corpora = CORPORA
    utts = []
    for spk in ("03401e93", "0487ba9b"):
        for path in sorted(glob.glob(os.path.join(corpora, "speechcommands", spk, "*.flac")))[:4]:
            utts.append((f"{spk}-{os.path.basename(path)[:-5]}", spk, path))
    utts.append(("0487ba9b-zz_missing", "0487ba9b", str(tmp_path / "missing.flac")))
    utts.sort()
    (data / "wav.scp").write_text("".join(f"{u} {p}\n" for u, _, p in utts))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s, _ in utts))
    spk2utt = {}
    for u, s, _ in utts:
        spk2utt.setdefault(s, []).append(u)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    return tmp_path, data, len(utts) - 1


def sh(args, cwd, check=True):
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])
    env = dict(os.environ, LC_ALL="C", OMP_NUM_THREADS="1", PYTHONPATH=REPO, PATH=path)
    proc = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-4000:]}")
    return proc


def test_feature_steps_skip_report_and_combine(tmp_path):
    recipe, data, good = make_recipe(tmp_path)
    # 1 of the utterances is missing: over the default 1%, the step fails and names it.
    failed = sh(["steps/make_mfcc.sh", "--nj", "2", "data/mini"], recipe, check=False)
    assert failed.returncode != 0
    assert "0487ba9b-zz_missing" in failed.stdout and "more than --max-fail-fraction" in failed.stdout
    done = sh(["steps/make_mfcc.sh", "--nj", "2", "--max-fail-fraction", "0.2", "data/mini"], recipe)
    assert f"{good + 1} utterances, {good} with mfcc features, 1 skipped" in done.stdout
    feats = kaldiio.load_scp(str(data / "feats.scp"))
    assert len(feats) == good and all(feats[k].shape == (100, 24) for k in feats)
    assert (data / "utt2num_frames").read_text().split()[1::2] == ["100"] * good
    assert sorted(glob.glob(str(recipe / "mfcc" / "raw_mfcc_mini.*.ark"))) == [
        str(recipe / "mfcc" / f"raw_mfcc_mini.{j}.ark") for j in (1, 2)
    ]
    fixed = sh(["utils/fix_data_dir.sh", "data/mini"], recipe)
    assert f"kept {good} of {good + 1}" in fixed.stdout
    vad = sh(["steps/compute_vad_decision.sh", "--nj", "2", "data/mini"], recipe)
    assert f"{good} of {good} utterances have VAD; voiced frames:" in vad.stdout
    vads = kaldiio.load_scp(str(data / "vad.scp"))
    assert sorted(vads) == sorted(feats) and all(vads[k].shape == (100,) for k in vads)
    sh(["utils/validate_data_dir.sh", "--no-text", "data/mini"], recipe)

    unwanted = shutil.ignore_patterns("split*", ".backup", "feats.scp", "vad.scp", "utt2num_frames")
    shutil.copytree(data, recipe / "data" / "mini_fbank", ignore=unwanted)
    sh(["steps/make_fbank.sh", "--nj", "1", "data/mini_fbank"], recipe)
    fbank = kaldiio.load_scp(str(recipe / "data" / "mini_fbank" / "feats.scp"))
    assert all(fbank[k].shape == (100, 80) for k in fbank) and len(fbank) == good


def stage1(recipe, mfcc_conf="conf/mfcc.conf", max_fail="0.01"):
    """run.sh's stage 1 for one data dir, as run.sh runs it: (exit status, what the steps printed)."""
    said = ""
    for args in (["utils/restore_data_dir.sh", "data/mini"],
                 ["steps/make_mfcc.sh", "--nj", "2", "--mfcc-config", mfcc_conf, "--max-fail-fraction", max_fail,
                  "data/mini"],
                 ["utils/fix_data_dir.sh", "data/mini"]):
        proc = sh(args, recipe, check=False)
        said += proc.stdout
        if proc.returncode != 0:
            break
    return subprocess.CompletedProcess(args, proc.returncode, said)


def test_stage1_reruns_after_its_own_failure_and_filters_the_trials(tmp_path):
    """A first stage 1 at the wrong rate fails for every utterance and leaves an empty
    utt2num_frames; the rerun at the right rate starts from the data dir stage 0 made (nothing
    poisoned, no utterance lost). An utterance it cannot read (a 0-byte file) leaves the trials with
    it, counted."""
    recipe, data, good = make_recipe(tmp_path)
    (tmp_path / "missing.flac").write_bytes(b"")
    utts = sorted(line.split()[0] for line in open(data / "utt2spk"))
    trials = [f"{a} {b} {'target' if a[:8] == b[:8] else 'nontarget'}" for i, a in enumerate(utts) for b in utts[i + 1:]]
    (data / "trials").write_text("".join(t + "\n" for t in trials))
    wrong = recipe / "mfcc8k.conf"
    wrong.write_text(open(os.path.join(REPO, "conf", "mfcc.conf")).read() + "--sample-frequency=8000\n--high-freq=-400\n")
    failed = stage1(recipe, mfcc_conf="mfcc8k.conf")
    assert failed.returncode != 0 and "./run.sh --sample-rate <Hz> --stage 1" in failed.stdout
    assert (data / "utt2num_frames").read_text() == ""  # what used to stop every rerun

    rerun = stage1(recipe, max_fail="0.2")
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert sorted(line.split()[0] for line in open(data / "utt2spk")) == [u for u in utts if "zz_missing" not in u]
    dropped = sum("zz_missing" in t for t in trials)
    assert (f"trials: removed {dropped}: of {len(trials)} trials, those naming 1 utterance(s) no longer in the "
            f"data dir: '0487ba9b-zz_missing'") in rerun.stdout
    assert "file is empty (0 bytes)" in rerun.stdout
    assert (data / "trials").read_text().splitlines() == [t for t in trials if "zz_missing" not in t]
    # stage 1 once more (say, after the missing file was found): from stage 0's data dir again
    (tmp_path / "missing.flac").unlink()
    (tmp_path / "missing.flac").symlink_to(glob.glob(os.path.join(CORPORA, "speechcommands", "03401e93", "*.flac"))[0])
    again = stage1(recipe)
    assert again.returncode == 0, again.stdout[-3000:]
    assert sorted(line.split()[0] for line in open(data / "utt2spk")) == utts
    assert len((data / "trials").read_text().splitlines()) == len(trials)
