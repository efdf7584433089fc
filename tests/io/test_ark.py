import os

import kaldiio
import numpy as np
import pytest

from sidkd.errors import DataError
from sidkd.io.ark import ArchiveWriter, iter_archive, parse_wspecifier


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
