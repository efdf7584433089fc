import os
import time

from utils_helpers import make_data_dir, read, run_script, write


def keys(path):
    return [line.split()[0] for line in read(path)]


def test_split_keeps_speakers_whole_and_balances(tmp_path):
    speakers = {"s1": 4, "s2": 1, "s3": 1, "s4": 2, "s5": 2, "s6": 2}
    data, _ = make_data_dir(str(tmp_path), speakers=speakers, with_text=True)
    write(os.path.join(data, "utt2dur"), [f"{u} 1.0" for u in keys(os.path.join(data, "utt2spk"))])
    out = run_script("split_data.sh", data, 3)
    assert out.returncode == 0, out.stderr
    all_utts = keys(os.path.join(data, "utt2spk"))
    parts = [keys(os.path.join(data, "split3", str(j), "utt2spk")) for j in (1, 2, 3)]
    assert sum(parts, []) == all_utts  # every utterance once, order kept
    owner = {}
    for j, part in enumerate(parts):
        assert part
        for utt in part:
            owner.setdefault(utt.split("-")[0], set()).add(j)
        part_dir = os.path.join(data, "split3", str(j + 1))
        for name in ("wav.scp", "text", "utt2dur"):
            assert keys(os.path.join(part_dir, name)) == part
        assert run_script("validate_data_dir.sh", "--no-feats", part_dir).returncode == 0
    assert all(len(js) == 1 for js in owner.values())  # speakers whole
    # 12 utterances: the best whole-speaker split is 4/4/4 (s1 | s2 s3 s4 | s5 s6)
    assert [len(p) for p in parts] == [4, 4, 4]


def test_split_too_many_jobs_and_per_utt(tmp_path):
    data, _ = make_data_dir(str(tmp_path), with_segments=True)  # 3 speakers, 8 utterances
    out = run_script("split_data.sh", data, 4)
    assert out.returncode != 0 and "cannot split 3 speakers into 4 parts" in out.stderr
    out = run_script("split_data.sh", "--per-utt", data, 4)
    assert out.returncode == 0, out.stderr
    sizes = [len(read(os.path.join(data, "split4utt", str(j), "utt2spk"))) for j in range(1, 5)]
    assert sizes == [2, 2, 2, 2]
    part = os.path.join(data, "split4utt", "2")
    assert keys(os.path.join(part, "segments")) == keys(os.path.join(part, "utt2spk"))
    recs = {line.split()[1] for line in read(os.path.join(part, "segments"))}
    assert set(keys(os.path.join(part, "wav.scp"))) == recs
    assert run_script("validate_data_dir.sh", "--no-feats", part).returncode == 0


def test_split_reused_when_newer(tmp_path):
    data, _ = make_data_dir(str(tmp_path))
    assert run_script("split_data.sh", data, 2).returncode == 0
    out = run_script("split_data.sh", data, 2)
    assert out.returncode == 0 and "not splitting again" in out.stderr
    # touching the data dir makes the split stale: it is redone and reflects the change
    lines = read(os.path.join(data, "utt2spk"))
    time.sleep(0.01)
    write(os.path.join(data, "text"), [f"{line.split()[0]} HI" for line in lines])
    later = time.time() + 5
    os.utime(os.path.join(data, "text"), (later, later))
    out = run_script("split_data.sh", data, 2)
    assert out.returncode == 0 and "not splitting again" not in out.stderr
    assert os.path.isfile(os.path.join(data, "split2", "1", "text"))


def test_subset_modes(tmp_path):
    data, lengths = make_data_dir(str(tmp_path))
    utts = keys(os.path.join(data, "utt2spk"))
    write(os.path.join(data, "utt2dur"), [f"{u} {lengths[u] / 16000:.2f}" for u in utts])
    dest = str(tmp_path / "sub")
    assert run_script("subset_data_dir.sh", "--first", data, 3, dest).returncode == 0
    assert keys(os.path.join(dest, "utt2spk")) == utts[:3]
    assert run_script("subset_data_dir.sh", "--last", data, 2, dest + "l").returncode == 0
    assert keys(os.path.join(dest + "l", "utt2spk")) == utts[-2:]
    assert run_script("subset_data_dir.sh", "--shortest", data, 3, dest + "s").returncode == 0
    assert keys(os.path.join(dest + "s", "utt2spk")) == sorted(u for u in utts if u.endswith("-u1"))
    r1 = run_script("subset_data_dir.sh", "--seed", 5, data, 4, dest + "r1")
    r2 = run_script("subset_data_dir.sh", "--seed", 5, data, 4, dest + "r2")
    assert r1.returncode == 0 and r2.returncode == 0
    picked = keys(os.path.join(dest + "r1", "utt2spk"))
    assert picked == keys(os.path.join(dest + "r2", "utt2spk")) and len(picked) == 4
    assert picked == sorted(picked, key=str.encode) and set(picked) <= set(utts)
    for d in (dest, dest + "l", dest + "s", dest + "r1"):
        assert run_script("validate_data_dir.sh", "--no-feats", d).returncode == 0
    out = run_script("subset_data_dir.sh", "--first", data, 99, dest + "x")
    assert out.returncode != 0 and "only 8" in out.stderr


def test_subset_lists(tmp_path):
    data, _ = make_data_dir(str(tmp_path))
    write(str(tmp_path / "spk.list"), ["spkB", "spkZ"])
    out = run_script("subset_data_dir.sh", "--spk-list", tmp_path / "spk.list", data, tmp_path / "b")
    assert out.returncode == 0, out.stderr
    assert read(str(tmp_path / "b" / "spk2utt")) == ["spkB spkB-u1 spkB-u2"]
    write(str(tmp_path / "utt.list"), ["spkC-u2", "spkA-u1"])
    out = run_script("subset_data_dir.sh", "--utt-list", tmp_path / "utt.list", data, tmp_path / "u")
    assert out.returncode == 0, out.stderr
    assert keys(str(tmp_path / "u" / "wav.scp")) == ["spkA-u1", "spkC-u2"]


def test_combine(tmp_path):
    d1, _ = make_data_dir(str(tmp_path / "one"), speakers={"a": 2, "c": 1}, with_text=True)
    d2, _ = make_data_dir(str(tmp_path / "two"), speakers={"b": 2}, with_segments=True)
    dest = str(tmp_path / "all")
    out = run_script("combine_data.sh", dest, d1, d2)
    assert out.returncode == 0, out.stderr
    assert "text: not in every source" in out.stderr
    assert keys(os.path.join(dest, "utt2spk")) == ["a-u1", "a-u2", "b-u1", "b-u2", "c-u1"]
    assert read(os.path.join(dest, "spk2utt")) == ["a a-u1 a-u2", "b b-u1 b-u2", "c c-u1"]
    assert "a-u1 a-u1 0 -1" in read(os.path.join(dest, "segments"))
    assert not os.path.exists(os.path.join(dest, "text"))
    out = run_script("validate_data_dir.sh", "--no-feats", dest)
    assert out.returncode == 0, out.stderr
    out = run_script("combine_data.sh", str(tmp_path / "dup"), d1, d1)
    assert out.returncode != 0 and "utterance 'a-u1' is also in" in out.stderr


def test_split_carries_speaker_files_and_other_scps(tmp_path):
    data, _ = make_data_dir(str(tmp_path))  # spkA:3 spkB:2 spkC:3
    utts = keys(os.path.join(data, "utt2spk"))
    write(os.path.join(data, "vad.scp"), [f"{u} vad.ark:{i}" for i, u in enumerate(utts)])
    write(os.path.join(data, "xvector.scp"), [f"{u} x.ark:{i}" for i, u in enumerate(utts)])
    write(os.path.join(data, "spk2gender"), ["spkA f", "spkB m", "spkC f"])
    write(os.path.join(data, "cmvn.scp"), ["spkA c.ark:1", "spkB c.ark:2", "spkC c.ark:3"])
    out = run_script("split_data.sh", "--per-utt", data, 3)
    assert out.returncode == 0, out.stderr
    part = os.path.join(data, "split3utt", "2")  # utterances 3..5: spkA-u3 spkB-u1 spkB-u2
    assert keys(os.path.join(part, "utt2spk")) == ["spkA-u3", "spkB-u1", "spkB-u2"]
    assert keys(os.path.join(part, "vad.scp")) == keys(os.path.join(part, "xvector.scp")) == keys(
        os.path.join(part, "utt2spk"))
    assert read(os.path.join(part, "spk2gender")) == ["spkA f", "spkB m"]
    assert keys(os.path.join(part, "cmvn.scp")) == ["spkA", "spkB"]
    assert read(os.path.join(part, "spk2utt")) == ["spkA spkA-u3", "spkB spkB-u1 spkB-u2"]
    out = run_script("validate_data_dir.sh", "--no-feats", part)
    assert out.returncode == 0, out.stderr
