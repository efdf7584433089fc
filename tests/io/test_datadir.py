import pytest

from sidkd.errors import DataError
from sidkd.io.datadir import (
    DataDir,
    read_segments,
    read_spk2utt,
    read_table,
    read_utt2spk,
    utt2spk_to_spk2utt,
    write_table,
)


def write(path, text):
    path.write_text(text)
    return str(path)


def test_read_table_keeps_rest_of_line(tmp_path):
    p = write(tmp_path / "text", "a hello  world\nb x\n")
    assert read_table(p) == [("a", "hello  world"), ("b", "x")]


def test_unsorted_names_file_and_line(tmp_path):
    p = write(tmp_path / "utt2spk", "b s1\na s1\n")
    with pytest.raises(DataError, match=r"utt2spk:2: not sorted.*'a' comes after 'b'"):
        read_utt2spk(p)


def test_c_locale_order_uppercase_before_lowercase(tmp_path):
    # In the C locale 'B' (0x42) sorts before 'a' (0x61); a locale-aware sort would reject this.
    p = write(tmp_path / "utt2spk", "B s\na s\n")
    assert list(read_utt2spk(p)) == ["B", "a"]


def test_duplicate_key(tmp_path):
    p = write(tmp_path / "wav.scp", "a x.wav\na y.wav\n")
    with pytest.raises(DataError, match=r"wav.scp:2: duplicate key 'a' \(first on line 1\)"):
        read_table(p)


def test_empty_file_and_empty_line(tmp_path):
    with pytest.raises(DataError, match="file is empty"):
        read_table(write(tmp_path / "e", ""))
    with pytest.raises(DataError, match=r"e2:2: empty line"):
        read_table(write(tmp_path / "e2", "a b\n\nc d\n"))


def test_wrong_field_count(tmp_path):
    with pytest.raises(DataError, match=r"utt2spk:1: expected 2 fields, got 3"):
        read_utt2spk(write(tmp_path / "utt2spk", "a s extra\n"))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_table(str(tmp_path / "nope"))


def test_spk2utt_roundtrip_and_order(tmp_path):
    utt2spk = {"s2-b": "s2", "s1-a": "s1", "s1-c": "s1"}
    spk2utt = utt2spk_to_spk2utt(utt2spk)
    assert spk2utt == {"s1": ["s1-a", "s1-c"], "s2": ["s2-b"]}
    p = str(tmp_path / "spk2utt")
    write_table(p, spk2utt.items())
    assert read_spk2utt(p) == spk2utt


def test_segments(tmp_path):
    p = write(tmp_path / "segments", "u1 r1 0.0 1.5\nu2 r1 1.5 -1\n")
    segs = read_segments(p)
    assert segs["u2"].end == -1 and segs["u1"].end == 1.5
    with pytest.raises(DataError, match=r"s2:1: bad segment times"):
        read_segments(write(tmp_path / "s2", "u1 r1 2.0 1.0\n"))


def test_datadir_spk2utt_derived_when_absent(tmp_path):
    write(tmp_path / "utt2spk", "a s1\nb s2\n")
    d = DataDir(str(tmp_path))
    assert d.spk2utt == {"s1": ["a"], "s2": ["b"]} and d.utts == ["a", "b"]
