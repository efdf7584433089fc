import os

from utils_helpers import make_data_dir, read, run_script, write


def validate(data, *opts):
    return run_script("validate_data_dir.sh", "--no-feats", *opts, data)


def test_good_dir_passes(tmp_path):
    data, _ = make_data_dir(str(tmp_path), with_text=True)
    out = validate(data)
    assert out.returncode == 0, out.stderr
    assert "8 utterances, 3 speakers" in out.stderr


def test_segments_dir_passes(tmp_path):
    data, _ = make_data_dir(str(tmp_path), with_segments=True)
    assert validate(data).returncode == 0


def test_unsorted_file(tmp_path):
    data, _ = make_data_dir(str(tmp_path))
    lines = read(os.path.join(data, "wav.scp"))
    lines[1], lines[2] = lines[2], lines[1]
    write(os.path.join(data, "wav.scp"), lines)
    out = validate(data)
    assert out.returncode != 0
    assert "wav.scp:3: not sorted" in out.stderr and "'spkA-u2'" in out.stderr


def test_duplicate_key(tmp_path):
    data, _ = make_data_dir(str(tmp_path))
    lines = read(os.path.join(data, "utt2spk"))
    write(os.path.join(data, "utt2spk"), lines[:2] + [lines[1]] + lines[2:])
    out = validate(data)
    assert out.returncode != 0
    assert "utt2spk:3: duplicate key 'spkA-u2'" in out.stderr


def test_missing_audio_file(tmp_path):
    data, _ = make_data_dir(str(tmp_path))
    os.remove(os.path.join(str(tmp_path), "audio", "spkB-u1.wav"))
    out = validate(data)
    assert out.returncode != 0
    assert "wav.scp:4: audio file of 'spkB-u1' does not exist" in out.stderr
    assert validate(data, "--no-check-audio").returncode == 0


def test_pipe_is_not_run(tmp_path):
    data, _ = make_data_dir(str(tmp_path))
    lines = read(os.path.join(data, "wav.scp"))
    lines[0] = "spkA-u1 touch should-not-exist |"
    write(os.path.join(data, "wav.scp"), lines)
    out = run_script("validate_data_dir.sh", "--no-feats", data, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert not os.path.exists(tmp_path / "should-not-exist")


def test_utt2spk_spk2utt_disagree(tmp_path):
    data, _ = make_data_dir(str(tmp_path))
    lines = read(os.path.join(data, "spk2utt"))
    lines[0] = "spkA spkA-u1 spkA-u2"  # spkA-u3 missing
    write(os.path.join(data, "spk2utt"), lines)
    out = validate(data)
    assert out.returncode != 0
    assert "spk2utt: speaker 'spkA' disagrees with utt2spk" in out.stderr and "spkA-u3" in out.stderr


def test_empty_file(tmp_path):
    data, _ = make_data_dir(str(tmp_path), with_text=True)
    write(os.path.join(data, "text"), [])
    out = validate(data)
    assert out.returncode != 0
    assert "text: file is empty" in out.stderr
    assert validate(data, "--no-text").returncode == 0


def test_utterance_without_audio_and_feats_mismatch(tmp_path):
    data, _ = make_data_dir(str(tmp_path))
    lines = read(os.path.join(data, "wav.scp"))
    write(os.path.join(data, "wav.scp"), lines[:-1])
    out = validate(data)
    assert out.returncode != 0 and "wav.scp: 1 utterance(s) of utt2spk missing, e.g. 'spkC-u3'" in out.stderr
    assert validate(data, "--no-wav").returncode == 0
    write(os.path.join(data, "wav.scp"), lines)
    write(os.path.join(data, "feats.scp"), [f"{u.split()[0]} f.ark:{i}" for i, u in enumerate(lines[1:])])
    out = run_script("validate_data_dir.sh", data)
    assert out.returncode != 0 and "feats.scp: 1 utterance(s) of utt2spk missing, e.g. 'spkA-u1'" in out.stderr
    assert validate(data).returncode == 0  # --no-feats
    os.remove(os.path.join(data, "feats.scp"))
    out = run_script("validate_data_dir.sh", data)
    assert out.returncode != 0 and "feats.scp: no such file (use --no-feats" in out.stderr


def test_segment_recording_missing(tmp_path):
    data, _ = make_data_dir(str(tmp_path), with_segments=True)
    lines = read(os.path.join(data, "wav.scp"))
    write(os.path.join(data, "wav.scp"), lines[1:])
    out = validate(data)
    assert out.returncode != 0 and "utterance 'spkA-u1': recording 'spkA-rec' is not in wav.scp" in out.stderr


def test_optional_tables_subset_and_values(tmp_path):
    data, _ = make_data_dir(str(tmp_path))
    write(os.path.join(data, "utt2dur"), ["spkA-u1 0.1", "spkZ-u9 0.2"])
    out = validate(data)
    assert out.returncode != 0 and "utt2dur: 1 key(s) not in utt2spk, e.g. 'spkZ-u9'" in out.stderr
    write(os.path.join(data, "utt2num_frames"), ["spkA-u1 ten"])
    write(os.path.join(data, "utt2dur"), ["spkA-u1 0.1"])
    out = validate(data)
    assert out.returncode != 0 and "utt2num_frames:1: value for 'spkA-u1' is not a positive integer" in out.stderr


def test_speaker_sort_order(tmp_path):
    data, _ = make_data_dir(str(tmp_path))
    # utterance ids sorted but speaker ids not in the same order
    write(os.path.join(data, "utt2spk"), ["a1 z", "a2 b"])
    write(os.path.join(data, "spk2utt"), ["b a2", "z a1"])
    write(os.path.join(data, "wav.scp"), [f"a1 {data}/utt2spk", f"a2 {data}/utt2spk"])
    out = validate(data)
    assert out.returncode != 0 and "not also sorted by speaker" in out.stderr and "'a2'" in out.stderr
    assert validate(data, "--no-spk-sort").returncode == 0
