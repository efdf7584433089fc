import os

from utils_helpers import make_data_dir, read, run_script, write


def test_fix_repairs_and_counts(tmp_path):
    data, _ = make_data_dir(str(tmp_path), with_text=True)
    original = read(os.path.join(data, "utt2spk"))
    # unsorted + duplicate utt2spk, a text line missing, an audio file missing, stale spk2utt
    write(os.path.join(data, "utt2spk"), original[::-1] + [original[0]])
    text = read(os.path.join(data, "text"))
    write(os.path.join(data, "text"), [t for t in text if not t.startswith("spkC-u1 ")])
    os.remove(os.path.join(str(tmp_path), "audio", "spkB-u2.wav"))
    write(os.path.join(data, "spk2utt"), ["spkA spkA-u1"])
    write(os.path.join(data, "utt2dur"), [f"{u.split()[0]} 1.0" for u in original] + ["ghost 1.0"])
    assert run_script("validate_data_dir.sh", "--no-feats", data).returncode != 0

    out = run_script("fix_data_dir.sh", data)
    assert out.returncode == 0, out.stderr
    assert "utt2spk: removed 1: duplicate key lines" in out.stderr
    assert "text: removed 1: utterances missing from it" in out.stderr
    assert "wav.scp: removed 1: audio file does not exist" in out.stderr
    assert "kept 6 of 8 utterances (2 removed)" in out.stderr
    expected = [u for u in original if not u.startswith(("spkC-u1 ", "spkB-u2 "))]
    assert read(os.path.join(data, "utt2spk")) == expected
    assert read(os.path.join(data, "spk2utt")) == [
        "spkA spkA-u1 spkA-u2 spkA-u3", "spkB spkB-u1", "spkC spkC-u2 spkC-u3"
    ]
    assert [line.split()[0] for line in read(os.path.join(data, "utt2dur"))] == [u.split()[0] for u in expected]
    assert len(read(os.path.join(data, ".backup", "utt2spk"))) == 9
    out = run_script("validate_data_dir.sh", "--no-feats", data)
    assert out.returncode == 0, out.stderr


def test_fix_with_segments_keeps_used_recordings(tmp_path):
    data, _ = make_data_dir(str(tmp_path), speakers={"s1": 2, "s2": 1}, with_segments=True)
    os.remove(os.path.join(str(tmp_path), "audio", "s2-rec.wav"))
    out = run_script("fix_data_dir.sh", data)
    assert out.returncode == 0, out.stderr
    assert "wav.scp: removed 1: audio file does not exist" in out.stderr
    assert [line.split()[0] for line in read(os.path.join(data, "wav.scp"))] == ["s1-rec"]
    assert read(os.path.join(data, "spk2utt")) == ["s1 s1-u1 s1-u2"]
    assert run_script("validate_data_dir.sh", "--no-feats", data).returncode == 0


def test_fix_nothing_left_is_an_error(tmp_path):
    data, _ = make_data_dir(str(tmp_path), speakers={"s1": 1})
    write(os.path.join(data, "feats.scp"), ["other x.ark:1"])
    out = run_script("fix_data_dir.sh", data)
    assert out.returncode != 0 and "no utterance is left" in out.stderr
