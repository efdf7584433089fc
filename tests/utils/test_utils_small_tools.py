import os

from utils_helpers import make_data_dir, read, run_script, write


def test_filter_scp(tmp_path):
    write(str(tmp_path / "ids"), ["b", "d extra"])
    write(str(tmp_path / "in"), ["a 1", "b 2", "c 3", "d 4"])
    out = run_script("filter_scp.pl", tmp_path / "ids", tmp_path / "in")
    assert out.returncode == 0 and out.stdout.splitlines() == ["b 2", "d 4"]
    out = run_script("filter_scp.pl", "--exclude", tmp_path / "ids", tmp_path / "in")
    assert out.stdout.splitlines() == ["a 1", "c 3"]
    write(str(tmp_path / "trials"), ["x b target", "y a nontarget", "z d target"])
    out = run_script("filter_scp.pl", "-f", 2, tmp_path / "ids", input=open(tmp_path / "trials").read())
    assert out.stdout.splitlines() == ["x b target", "z d target"]
    out = run_script("filter_scp.pl", "-f", 5, tmp_path / "ids", tmp_path / "in")
    assert out.returncode != 0 and "has no field 5" in out.stderr
    out = run_script("filter_scp.pl", tmp_path / "absent", tmp_path / "in")
    assert out.returncode != 0 and "cannot open id list" in out.stderr


def test_utt2spk_spk2utt_round_trip(tmp_path):
    utt2spk = ["s1-a s1", "s1-b s1", "s2-a s2", "s3-a s3", "s3-b s3"]
    out = run_script("utt2spk_to_spk2utt.pl", input="\n".join(utt2spk) + "\n")
    assert out.returncode == 0
    assert out.stdout.splitlines() == ["s1 s1-a s1-b", "s2 s2-a", "s3 s3-a s3-b"]
    back = run_script("spk2utt_to_utt2spk.pl", input=out.stdout)
    assert back.returncode == 0 and back.stdout.splitlines() == utt2spk
    bad = run_script("utt2spk_to_spk2utt.pl", input="u1 s1 extra\n")
    assert bad.returncode != 0 and "expected 'utt spk'" in bad.stderr
    bad = run_script("spk2utt_to_utt2spk.pl", input="s1\n")
    assert bad.returncode != 0 and "speaker s1 has no utterances" in bad.stderr


def test_get_utt2dur_files_and_pipe(tmp_path):
    data, lengths = make_data_dir(str(tmp_path), speakers={"s1": 2, "s2": 1})
    lines = read(os.path.join(data, "wav.scp"))
    path = lines[2].split()[1]
    lines[2] = f"s2-u1 cat {path} |"
    write(os.path.join(data, "wav.scp"), lines)
    out = run_script("get_utt2dur.sh", data)
    assert out.returncode == 0, out.stderr
    got = {k: float(v) for k, v in (line.split() for line in read(os.path.join(data, "utt2dur")))}
    assert got == {utt: round(n / 16000, 3) for utt, n in lengths.items()}
    os.remove(path)
    out = run_script("get_utt2dur.sh", data)
    assert out.returncode != 0 and "'s2-u1'" in out.stderr and "failed" in out.stderr


def test_get_utt2dur_segments(tmp_path):
    data, _ = make_data_dir(str(tmp_path), speakers={"s1": 3}, with_segments=True)
    segs = read(os.path.join(data, "segments"))
    segs[2] = "s1-u3 s1-rec 0.15 -1"  # to the end of the 0.3 s recording
    write(os.path.join(data, "segments"), segs)
    out = run_script("get_utt2dur.sh", "--nj", 4, data)
    assert out.returncode == 0, out.stderr
    assert read(os.path.join(data, "utt2dur")) == ["s1-u1 0.100", "s1-u2 0.100", "s1-u3 0.150"]
    missing = run_script("get_utt2dur.sh", str(tmp_path / "nope"))
    assert missing.returncode != 0 and "no such file" in missing.stderr
