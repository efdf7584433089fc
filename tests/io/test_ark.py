import os

import kaldiio
import numpy as np
import pytest

from sidkd.errors import DataError
from sidkd.io.ark import ArchiveWriter, iter_archive, parse_wspecifier, scp_keys


def test_write_read_roundtrip_with_scp(tmp_path):
    ark, scp = str(tmp_path / "x.ark"), str(tmp_path / "x.scp")
    data = {"u1": np.arange(6, dtype=np.float32).reshape(3, 2), "u2": np.ones(4, np.float32)}
    with ArchiveWriter(f"ark,scp:{ark},{scp}") as w:
        for k, v in data.items():
            w[k] = v
    assert sorted(os.listdir(tmp_path)) == ["x.ark", "x.scp"]  # no temp files left
    for line in open(scp):
        assert line.split()[1].startswith(ark + ":")
    loaded = kaldiio.load_scp(scp)  # read with kaldiio directly: an independent reader
    for k, v in data.items():
        np.testing.assert_array_equal(loaded[k], v)
    assert [k for k, _ in iter_archive(f"ark:{ark}")] == ["u1", "u2"]


def test_failed_write_leaves_old_outputs_untouched(tmp_path):
    ark, scp = str(tmp_path / "x.ark"), str(tmp_path / "x.scp")
    with ArchiveWriter(f"ark,scp:{ark},{scp}") as w:
        w["old"] = np.zeros(3, np.float32)
    with pytest.raises(RuntimeError):
        with ArchiveWriter(f"ark,scp:{ark},{scp}") as w:
            w["new"] = np.ones(3, np.float32)
            raise RuntimeError("killed")
    assert sorted(os.listdir(tmp_path)) == ["x.ark", "x.scp"]
    assert list(kaldiio.load_scp(scp)) == ["old"]


def test_bad_specifiers_and_keys(tmp_path):
    with pytest.raises(DataError, match="needs two comma-separated paths"):
        parse_wspecifier("ark,scp:only.ark")
    with pytest.raises(DataError, match="bad wspecifier"):
        parse_wspecifier("x.ark")
    with pytest.raises(DataError, match="bad archive key"):
        with ArchiveWriter(f"ark:{tmp_path}/a.ark") as w:
            w["has space"] = np.zeros(1, np.float32)
    with pytest.raises(DataError, match="no such file"):
        list(iter_archive(f"scp:{tmp_path}/none.scp"))


def test_scp_over_interleaved_archives_reads_as_kaldiio(tmp_path):
    """An scp sorted by key over two jobs' archives (lines alternate between them), as nj jobs
    write: every entry and its order as kaldiio's own reader gives them; with keys, only those."""
    rng = np.random.default_rng(0)
    data = {f"u{i:03d}": rng.standard_normal(5).astype(np.float32) for i in range(40)}
    for job in (1, 2):
        with ArchiveWriter(f"ark,scp:{tmp_path}/x.{job}.ark,{tmp_path}/x.{job}.scp") as w:
            for k in list(data)[job - 1::2]:
                w[k] = data[k]
    lines = sorted(open(tmp_path / "x.1.scp").readlines() + open(tmp_path / "x.2.scp").readlines())
    scp = tmp_path / "x.scp"
    scp.write_text("".join(lines))
    ours = list(iter_archive(f"scp:{scp}"))
    with kaldiio.ReadHelper(f"scp:{scp}") as reader:
        reference = list(reader)
    assert [k for k, _ in ours] == [k for k, _ in reference] == sorted(data)
    for (_, a), (_, b) in zip(ours, reference):
        np.testing.assert_array_equal(a, b)
    picked = {"u003", "u010", "u031"}
    assert [k for k, _ in iter_archive(f"scp:{scp}", picked)] == sorted(picked)
    assert scp_keys(f"scp:{scp}") == sorted(data) and scp_keys(f"ark:{tmp_path}/x.1.ark") is None


def test_scp_bad_line_is_named(tmp_path):
    scp = tmp_path / "bad.scp"
    with ArchiveWriter(f"ark,scp:{tmp_path}/a.ark,{scp}") as w:
        w["u1"] = np.zeros(2, np.float32)
    scp.write_text(scp.read_text() + "u2\n")
    with pytest.raises(DataError, match=r"bad\.scp:2: expected 'key location', got 'u2'"):
        list(iter_archive(f"scp:{scp}"))
