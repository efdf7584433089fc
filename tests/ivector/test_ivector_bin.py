"""The UBM / extractor programs chained on a synthetic archive, as the steps chain them."""

import os
import subprocess
import sys

import numpy as np
import pytest

from sidkd.bin import (
    compute_ivector_stats,
    extract_ivectors,
    full_gmm_acc_stats,
    full_gmm_est,
    full_gmm_init_from_diag,
    gmm_global_acc_stats,
    gmm_global_est,
    gmm_global_init_from_feats,
    ivector_extractor_acc_stats,
    ivector_extractor_est,
    ivector_extractor_init,
    ivector_mean_by_speaker,
)
from sidkd.errors import DataError
from sidkd.gmm import DiagGmm, DiagGmmStats, FullGmmStats
from sidkd.io.ark import ArchiveWriter, load_table
from sidkd.ivector import IvectorAcc, IvectorExtractor
from tests.conftest import tool_env


def write_corpus(tmp_path, num_spk=6, utts=4, dim=3, comps=4):
    """Speakers shift a 4-component mixture along a speaker-specific direction."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((comps, dim)) * 4
    spk2utt = []
    splits = [tmp_path / "feats.1.ark", tmp_path / "feats.2.ark"]
    writers = [ArchiveWriter(f"ark:{p}") for p in splits]
    for s in range(num_spk):
        shift = rng.standard_normal((comps, dim)) * 1.0
        names = []
        for u in range(utts):
            align = rng.integers(0, comps, 150)
            x = centres[align] + shift[align] + 0.5 * rng.standard_normal((150, dim))
            key = f"spk{s}-u{u}"
            writers[(s * utts + u) % 2][key] = x.astype(np.float32)
            names.append(key)
        spk2utt.append(f"spk{s} {' '.join(names)}\n")
    for w in writers:
        w.close()
    (tmp_path / "spk2utt").write_text("".join(spk2utt))
    return [f"ark:{p}" for p in splits]


def test_programs_train_and_extract(tmp_path):
    feats = write_corpus(tmp_path)
    d = str(tmp_path)
    gmm_global_init_from_feats.main(["--num-gauss=4", "--num-iters=6", "--num-frames=2000", feats[0], f"{d}/0.dubm"])
    for it in range(2):
        for j in (1, 2):
            gmm_global_acc_stats.main(["--subsample=2", f"{d}/{it}.dubm", feats[j - 1], f"{d}/{it}.{j}.dacc"])
        gmm_global_est.main([f"{d}/{it}.dubm", f"{d}/{it}.1.dacc", f"{d}/{it}.2.dacc", f"{d}/{it + 1}.dubm"])
    lls = [sum(DiagGmmStats.load(f"{d}/{it}.{j}.dacc").loglik for j in (1, 2)) for it in range(2)]
    assert lls[1] >= lls[0] - 1e-6
    assert DiagGmm.load(f"{d}/2.dubm").num_gauss == 4

    full_gmm_init_from_diag.main([f"{d}/2.dubm", f"{d}/0.ubm"])
    for it in range(2):
        for j in (1, 2):
            full_gmm_acc_stats.main(["--num-gselect=2", f"{d}/2.dubm", f"{d}/{it}.ubm", feats[j - 1], f"{d}/{it}.{j}.facc"])
        full_gmm_est.main(["--min-count=1", f"{d}/{it}.ubm", f"{d}/{it}.1.facc", f"{d}/{it}.2.facc", f"{d}/{it + 1}.ubm"])
    full_ll = [sum(FullGmmStats.load(f"{d}/{it}.{j}.facc").loglik for j in (1, 2)) for it in range(2)]
    assert full_ll[1] >= full_ll[0] - 1e-6

    for j in (1, 2):
        compute_ivector_stats.main(["--num-gselect=3", "--min-post=0.025", f"--second-order={d}/so.{j}.npz",
                                    f"{d}/2.dubm", f"{d}/2.ubm", feats[j - 1], f"ark,scp:{d}/st.{j}.ark,{d}/st.{j}.scp"])
    ivector_extractor_init.main(["--ivector-dim=3", f"{d}/2.ubm", f"{d}/0.ie"])
    objectives = []
    for it in range(3):
        for j in (1, 2):
            ivector_extractor_acc_stats.main([f"--second-order={d}/so.{j}.npz", "--batch-size=5", f"{d}/{it}.ie",
                                              f"scp:{d}/st.{j}.scp", f"{d}/{it}.{j}.iacc"])
        ivector_extractor_est.main(["--gaussian-min-count=10", f"{d}/{it}.ie", f"{d}/{it}.1.iacc",
                                    f"{d}/{it}.2.iacc", f"{d}/{it + 1}.ie"])
        acc = IvectorAcc.load(f"{d}/{it}.1.iacc")
        acc += IvectorAcc.load(f"{d}/{it}.2.iacc")
        objectives.append(IvectorExtractor.load(f"{d}/{it}.ie").log_likelihood(acc))
    assert objectives == sorted(objectives)

    for j in (1, 2):
        extract_ivectors.main([f"{d}/3.ie", f"scp:{d}/st.{j}.scp", f"ark,scp:{d}/iv.{j}.ark,{d}/iv.{j}.scp"])
    (tmp_path / "ivector.scp").write_text((tmp_path / "iv.1.scp").read_text() + (tmp_path / "iv.2.scp").read_text())
    ivecs = load_table(f"scp:{d}/ivector.scp")
    assert len(ivecs) == 24 and all(v.shape == (3,) for v in ivecs.values())
    # same-speaker pairs are closer (cosine, after centring) than different-speaker pairs
    keys = sorted(ivecs)
    mat = np.stack([ivecs[k] for k in keys])
    mat -= mat.mean(0)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    spk = np.array([k.split("-")[0] for k in keys])
    cos = mat @ mat.T
    same = (spk[:, None] == spk[None]) & ~np.eye(len(keys), dtype=bool)
    assert cos[same].mean() > cos[spk[:, None] != spk[None]].mean() + 0.3

    ivector_mean_by_speaker.main([f"{d}/spk2utt", f"scp:{d}/ivector.scp",
                                  f"ark,scp:{d}/spk_ivector.ark,{d}/spk_ivector.scp", f"{d}/num_utts.ark"])
    spk_vecs = load_table(f"scp:{d}/spk_ivector.scp")
    assert sorted(spk_vecs) == [f"spk{s}" for s in range(6)]
    np.testing.assert_allclose(np.linalg.norm(spk_vecs["spk0"]), np.sqrt(3), rtol=1e-5)
    assert (tmp_path / "num_utts.ark").read_text().splitlines()[0] == "spk0 4"


def test_bad_input_is_one_error_line(tmp_path):
    with ArchiveWriter(f"ark:{tmp_path}/f.ark") as w:
        w["good"] = np.zeros((10, 3), dtype=np.float32)
        w["bad"] = np.zeros((10, 5), dtype=np.float32)
    DiagGmm(np.array([1.0]), np.zeros((1, 3)), np.ones((1, 3))).save(f"{tmp_path}/m.dubm")
    env = tool_env()
    proc = subprocess.run([sys.executable, "-m", "sidkd.bin.gmm_global_acc_stats", f"{tmp_path}/m.dubm",
                           f"ark:{tmp_path}/f.ark", f"{tmp_path}/x.acc"], capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    assert "ERROR (gmm_global_acc_stats" in proc.stderr and "bad" in proc.stderr
    assert "Traceback" not in proc.stderr and not os.path.exists(f"{tmp_path}/x.acc")


@pytest.mark.parametrize("prog", ["ivector_extractor_est", "extract_ivectors", "full_gmm_acc_stats"])
def test_help_runs(prog):
    env = tool_env()
    proc = subprocess.run([sys.executable, "-m", f"sidkd.bin.{prog}", "--help"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "usage" in proc.stdout.lower()


def test_stored_gaussian_selection_gives_the_same_stats_and_is_checked(tmp_path):
    feats = write_corpus(tmp_path)
    d = str(tmp_path)
    gmm_global_init_from_feats.main(["--num-gauss=4", "--num-iters=4", "--num-frames=2000", feats[0], f"{d}/0.dubm"])
    full_gmm_init_from_diag.main([f"{d}/0.dubm", f"{d}/0.ubm"])
    common = ["--num-gselect=2", "--subsample=2", f"{d}/0.dubm", f"{d}/0.ubm"]
    full_gmm_acc_stats.main(common + [feats[0], f"{d}/plain.acc"])
    full_gmm_acc_stats.main([f"--write-gselect={d}/g.npz"] + common + [feats[0], f"{d}/write.acc"])
    full_gmm_acc_stats.main([f"--read-gselect={d}/g.npz"] + common + [feats[0], f"{d}/read.acc"])
    plain, written, read = (FullGmmStats.load(f"{d}/{n}.acc") for n in ("plain", "write", "read"))
    for other in (written, read):
        np.testing.assert_array_equal(other.second, plain.second)
        assert other.loglik == plain.loglik and other.num_frames == plain.num_frames
    # a selection made from other features, or with other options, is refused, naming the file
    with pytest.raises(DataError, match="g.npz: stored selection does not match the features at utterance"):
        full_gmm_acc_stats.main([f"--read-gselect={d}/g.npz"] + common + [feats[1], f"{d}/bad.acc"])
    with pytest.raises(DataError, match="g.npz: made with --num-gselect 2"):
        full_gmm_acc_stats.main([f"--read-gselect={d}/g.npz", "--num-gselect=3", "--subsample=2", f"{d}/0.dubm",
                                 f"{d}/0.ubm", feats[0], f"{d}/bad.acc"])
    assert not os.path.exists(f"{d}/bad.acc")
