"""steps/extract_crop_ivectors.sh: the crops listed are crop_starts' positions, and each crop's
i-vector is the one of exactly those frames (checked against extract_ivectors.sh on a data dir of
the same slices cut here by hand)."""

import os

import numpy as np
import pytest

from sidkd.io.ark import ArchiveWriter, load_table
from sidkd.nnet.teacher_targets import crop_starts
from tests.ivector.test_ivector_steps import make_data_dir, run_step


@pytest.fixture(scope="module")
def extractor(tmp_path_factory):
    root = tmp_path_factory.mktemp("crop_ivectors")
    data, exp = str(root / "data"), str(root / "exp")
    make_data_dir(data, frames=200)
    feats = load_table(f"scp:{data}/feats.scp")
    # one short utterance: it gets one crop, the whole of it
    short = "spk0-utt0"
    feats[short] = feats[short][:40]
    vad = load_table(f"scp:{data}/vad.scp")
    vad[short] = vad[short][:40]
    with ArchiveWriter(f"ark,scp:{data}/feats2.ark,{data}/feats.scp") as w:
        for k in sorted(feats):
            w[k] = feats[k]
    with ArchiveWriter(f"ark,scp:{data}/vad2.ark,{data}/vad.scp") as w:
        for k in sorted(vad):
            w[k] = vad[k]
    with open(f"{data}/utt2num_frames", "w") as f:
        f.writelines(f"{k} {len(feats[k])}\n" for k in sorted(feats))
    run_step("steps/train_diag_ubm.sh", "--nj", "2", "--num-gaussians", "4", "--num-iters", "1", "--num-iters-init",
             "4", "--subsample", "1", data, f"{exp}/diag_ubm")
    run_step("steps/train_full_ubm.sh", "--nj", "2", "--num-iters", "1", "--num-gselect", "3", data,
             f"{exp}/diag_ubm", f"{exp}/full_ubm")
    run_step("steps/train_ivector_extractor.sh", "--nj", "2", "--ivector-dim", "4", "--num-gselect", "3",
             "--gaussian-min-count", "10", "--num-iters", "1", f"{exp}/full_ubm", data, f"{exp}/extractor")
    conf = root / "mfcc.conf"
    conf.write_text("--frame-shift=10\n--snip-edges=false\n")
    return root, data, exp, feats, vad, str(conf)


def test_crop_ivectors_are_the_ivectors_of_the_listed_slices(extractor):
    root, data, exp, feats, vad, conf = extractor
    out = run_step("steps/extract_crop_ivectors.sh", "--nj", "2", "--num-crops", "3", "--crop-seconds", "0.5",
                   "--mfcc-config", conf, "--num-gselect", "3", f"{exp}/extractor", data, f"{exp}/crops")
    assert "70 crops listed, 70 crop i-vectors" in out  # 23 utterances x 3 + the short one's single crop
    with open(f"{exp}/crops/frame_shift") as f:
        assert float(f.read()) == 0.01
    crops = [line.split() for line in open(f"{exp}/crops/crops")]
    for key, utt, start, num in crops:
        k = int(key.rsplit("-crop", 1)[1])
        assert key == f"{utt}-crop{k}"
        assert int(start) == crop_starts(len(feats[utt]), 50, 3)[k]
        assert int(num) == min(50, len(feats[utt]))
    # the same slices cut by hand, through the plain i-vector step
    hand = root / "hand"
    hand.mkdir()
    with ArchiveWriter(f"ark,scp:{hand}/feats.ark,{hand}/feats.scp") as wf, \
            ArchiveWriter(f"ark,scp:{hand}/vad.ark,{hand}/vad.scp") as wv:
        for key, utt, start, num in sorted(crops, key=lambda c: c[0].encode()):
            s, n = int(start), int(num)
            wf[key] = feats[utt][s:s + n]
            wv[key] = vad[utt][s:s + n]
    lines = sorted(((key, utt.split("-")[0]) for key, utt, _, _ in crops), key=lambda c: c[0].encode())
    (hand / "utt2spk").write_text("".join(f"{k} {s}\n" for k, s in lines))
    spk2utt = {}
    for k, s in lines:
        spk2utt.setdefault(s, []).append(k)
    (hand / "spk2utt").write_text("".join(f"{s} {' '.join(u)}\n" for s, u in sorted(spk2utt.items())))
    run_step("steps/extract_ivectors.sh", "--nj", "1", "--num-gselect", "3", f"{exp}/extractor", str(hand),
             f"{exp}/hand_ivectors")
    got, want = load_table(f"scp:{exp}/crops/ivector.scp"), load_table(f"scp:{exp}/hand_ivectors/ivector.scp")
    assert sorted(got) == sorted(want) and len(got) == 70
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-5)
    assert not os.path.exists(f"{exp}/crops/crop_feats")  # --cleanup true
    # asked again with the same settings: kept; with another crop length: remade for that length
    stamp = os.stat(f"{exp}/crops/ivector.scp").st_mtime_ns
    again = run_step("steps/extract_crop_ivectors.sh", "--nj", "2", "--num-crops", "3", "--crop-seconds", "0.5",
                     "--mfcc-config", conf, "--num-gselect", "3", f"{exp}/extractor", data, f"{exp}/crops")
    assert "exist; kept" in again and os.stat(f"{exp}/crops/ivector.scp").st_mtime_ns == stamp
    other = run_step("steps/extract_crop_ivectors.sh", "--nj", "2", "--num-crops", "3", "--crop-seconds", "0.3",
                     "--mfcc-config", conf, "--num-gselect", "3", f"{exp}/extractor", data, f"{exp}/crops")
    assert "(now: crop_frames=30 )" in other and "remaking" in other
    assert {int(line.split()[3]) for line in open(f"{exp}/crops/crops")} <= set(range(1, 31))
    assert max(int(line.split()[3]) for line in open(f"{exp}/crops/crops")) == 30


def test_crop_step_refuses_snip_edges_and_bad_lengths(extractor, tmp_path):
    _, data, exp, _, _, conf = extractor
    snip = tmp_path / "snip.conf"
    snip.write_text("--frame-shift=10\n")  # Kaldi's default snip-edges=true
    import subprocess

    from tests.ivector.test_ivector_steps import ENV, REPO
    for opts, message in (([" --mfcc-config", str(snip)], "need --snip-edges=false"),
                          (["--mfcc-config", conf, "--crop-seconds", "0.505"], "not a whole number")):
        opts = [o.strip() for o in opts]
        proc = subprocess.run(["steps/extract_crop_ivectors.sh", *opts, f"{exp}/extractor", data, str(tmp_path / "x")],
                              cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.returncode != 0 and message in proc.stdout, proc.stdout
