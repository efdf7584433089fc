"""Kill and resume, feature stage: steps/make_mfcc.sh is SIGKILLed (the whole process group: the
step, run.pl and the jobs) at seeded random points, and after each kill nothing on disk that a
later stage would read is incomplete; a rerun then gives features bit-identical to an
uninterrupted run.
"""

import glob
import os
import shutil
import subprocess
import time

import kaldiio
import numpy as np
from killing import env, kill_and_rerun

from tests.conftest import CORPORA, REPO_ROOT

SPEAKERS = ("03401e93", "0487ba9b", "0b57a6ed")


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


def check_nothing_half_written(root, kind, reference, ref_job_keys):
    """What a killed run left: every scp names only complete archives with the right contents."""
    outdir, scp_name = {"mfcc": ("mfcc_run", "feats.scp"), "vad": ("vad_run", "vad.scp")}[kind]
    for scp in sorted((root / outdir).glob("*.scp")):
        job = scp.name.split(".")[1]
        assert ".tmp." not in scp.read_text()
        values = load_all(scp)  # every entry readable
        assert list(values) == ref_job_keys[job], f"{scp} is not the complete job {job} list"
        assert all(np.array_equal(values[k], reference[k]) for k in values)
    data_scp = root / "data" / "run" / scp_name
    if data_scp.exists():
        values = load_all(data_scp)
        assert sorted(values) == sorted(reference)
        assert all(np.array_equal(values[k], reference[k]) for k in reference)


def kill_feature_step(root, command, kind, rng, reference_seconds, reference, ref_job_keys, num_kills):
    outdir = root / {"mfcc": "mfcc_run", "vad": "vad_run"}[kind]
    killed = kill_and_rerun(root, command, lambda: check_nothing_half_written(root, kind, reference, ref_job_keys),
                            rng, reference_seconds, num_kills, started=lambda: bool(glob.glob(str(outdir / "*.tmp.*"))))
    assert not [f for f in os.listdir(outdir) if ".tmp." in f], "leftovers of the killed runs remain"
    return killed


def timed_reference(root, command, data_scp, outdir, prefix):
    start = time.monotonic()
    subprocess.run(command, cwd=root, env=env(), check=True, capture_output=True, timeout=300)
    seconds = time.monotonic() - start
    job_keys = {scp.name.split(".")[1]: list(kaldiio.load_scp(str(scp))) for scp in (root / outdir).glob(f"{prefix}.*.scp")}
    return seconds, load_all(root / "data" / "ref" / data_scp), job_keys


def vad_step(name):
    return ["steps/compute_vad_decision.sh", "--nj", "2", f"data/{name}", f"exp/make_vad/{name}", f"vad_{name}"]


def test_feature_stage_killed_and_rerun_equals_uninterrupted(tmp_path):
    num_utts = make_recipe(tmp_path)
    rng = np.random.default_rng(20261121)
    seconds, reference, job_keys = timed_reference(tmp_path, make_mfcc(tmp_path, "ref"), "feats.scp", "mfcc_ref", "raw_mfcc_ref")
    assert len(reference) == num_utts
    killed = kill_feature_step(tmp_path, make_mfcc(tmp_path, "run"), "mfcc", rng, seconds, reference, job_keys, 3)
    assert killed >= 2, "the kills should interrupt the step (machine far faster than the reference run?)"
    resumed = load_all(tmp_path / "data" / "run" / "feats.scp")
    assert sorted(resumed) == sorted(reference)
    for key in reference:
        assert resumed[key].dtype == reference[key].dtype and np.array_equal(resumed[key], reference[key]), key
    assert (tmp_path / "data" / "run" / "utt2num_frames").read_text() == (tmp_path / "data" / "ref" / "utt2num_frames").read_text()

    # The stage's second step, VAD, on those features.
    seconds, reference, job_keys = timed_reference(tmp_path, vad_step("ref"), "vad.scp", "vad_ref", "vad_ref")
    killed = kill_feature_step(tmp_path, vad_step("run"), "vad", rng, seconds, reference, job_keys, 2)
    assert killed >= 1
    resumed = load_all(tmp_path / "data" / "run" / "vad.scp")
    assert sorted(resumed) == sorted(reference) and all(np.array_equal(resumed[k], reference[k]) for k in reference)
