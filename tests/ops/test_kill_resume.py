"""Kill and resume, feature stage: steps/make_mfcc.sh is SIGKILLed (the whole process group: the
step, run.pl and the jobs) at seeded random points, and after each kill nothing on disk that a
later stage would read is incomplete; a rerun then gives features bit-identical to an
uninterrupted run.
"""

import glob
import os
import shutil
import signal
import subprocess
import sys
import time

import kaldiio
import numpy as np

from tests.conftest import CORPORA, REPO_ROOT

SPEAKERS = ("03401e93", "0487ba9b", "0b57a6ed")


def env():
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])
    return dict(os.environ, PYTHONPATH=REPO_ROOT, PATH=path, LC_ALL="C", OMP_NUM_THREADS="1")


def make_recipe(root):
    for item in ("steps", "utils", "conf", "sidkd", "path.sh"):
        os.symlink(os.path.join(REPO_ROOT, item), root / item)
    data = root / "data" / "ref"
    data.mkdir(parents=True)
    utts = []
    for spk in SPEAKERS:
        for path in sorted(glob.glob(os.path.join(CORPORA, "speechcommands", spk, "*.flac")))[:8]:
            utts.append((f"{spk}-{os.path.basename(path)[:-5]}", spk, path))
    utts.sort()
    # A pipe per utterance that takes a little time (as a decoder would): the jobs then spend
    # seconds writing their archives, so the kills land in every phase of the step.
    (data / "wav.scp").write_text("".join(f"{u} sleep 0.05; cat {p} |\n" for u, _, p in utts))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s, _ in utts))
    spk2utt = {}
    for u, s, _ in utts:
        spk2utt.setdefault(s, []).append(u)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    shutil.copytree(data, root / "data" / "run")
    return len(utts)


def make_mfcc(root, name):
    return ["steps/make_mfcc.sh", "--nj", "2", f"data/{name}", f"exp/make_mfcc/{name}", f"mfcc_{name}"]


def load_all(scp):
    return {key: np.array(value) for key, value in kaldiio.load_scp(str(scp)).items()}


def check_nothing_half_written(root, reference, ref_job_keys):
    """What the killed run left: any scp names only complete archives with the right features."""
    featdir = root / "mfcc_run"
    for scp in sorted(featdir.glob("raw_mfcc_run.*.scp")):
        job = scp.name.split(".")[1]
        assert ".tmp." not in scp.read_text()
        feats = load_all(scp)  # every entry readable
        assert list(feats) == ref_job_keys[job], f"{scp} is not the complete job {job} list"
        for key, value in feats.items():
            assert np.array_equal(value, reference[key]), key
    feats_scp = root / "data" / "run" / "feats.scp"
    if feats_scp.exists():
        feats = load_all(feats_scp)
        assert sorted(feats) == sorted(reference)
        assert all(np.array_equal(feats[k], reference[k]) for k in reference)


def test_make_mfcc_killed_and_rerun_equals_uninterrupted(tmp_path):
    num_utts = make_recipe(tmp_path)
    start = time.monotonic()
    subprocess.run(make_mfcc(tmp_path, "ref"), cwd=tmp_path, env=env(), check=True, capture_output=True, timeout=300)
    reference_seconds = time.monotonic() - start
    reference = load_all(tmp_path / "data" / "ref" / "feats.scp")
    assert len(reference) == num_utts
    ref_job_keys = {scp.name.split(".")[1]: list(kaldiio.load_scp(str(scp)))
                    for scp in (tmp_path / "mfcc_ref").glob("raw_mfcc_ref.*.scp")}

    rng = np.random.default_rng(20261121)
    # First kill: a seeded delay after the jobs start writing archives; then two at seeded times.
    kills = [("writing", rng.uniform(0.0, 0.4))] + [("start", f * reference_seconds) for f in rng.uniform(0.2, 0.8, 2)]
    killed_while_running = 0
    for event, delay in kills:
        proc = subprocess.Popen(make_mfcc(tmp_path, "run"), cwd=tmp_path, env=env(), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while event == "writing" and proc.poll() is None and time.monotonic() < deadline:
            if glob.glob(str(tmp_path / "mfcc_run" / "*.tmp.*")):
                break
            time.sleep(0.01)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the step, run.pl and every job at once
            killed_while_running += 1
        proc.wait(timeout=60)
        time.sleep(0.2)  # jobs of the group are gone by now; nothing of theirs writes after this
        check_nothing_half_written(tmp_path, reference, ref_job_keys)
    assert killed_while_running >= 2, "the kills should interrupt the step (machine far faster than the reference run?)"

    subprocess.run(make_mfcc(tmp_path, "run"), cwd=tmp_path, env=env(), check=True, capture_output=True, timeout=300)
    resumed = load_all(tmp_path / "data" / "run" / "feats.scp")
    assert sorted(resumed) == sorted(reference)
    for key in reference:
        assert resumed[key].dtype == reference[key].dtype and np.array_equal(resumed[key], reference[key]), key
    assert (tmp_path / "data" / "run" / "utt2num_frames").read_text() == (tmp_path / "data" / "ref" / "utt2num_frames").read_text()
    assert not [f for f in os.listdir(tmp_path / "mfcc_run") if ".tmp." in f], "leftovers of the killed runs remain"
