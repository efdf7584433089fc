import os

import numpy as np
import torch
from nnet_helpers import make_tiny_data, tiny_config

from sidkd.bin import extract_embeddings
from sidkd.io.ark import load_table
from sidkd.io.audio import AudioReader
from sidkd.nnet.embed import crop, split_equal
from sidkd.nnet.config import load_config
from sidkd.nnet.embed import load_embedder
from sidkd.nnet.features import frontend_from_config
from sidkd.nnet.trainer import train
from tests.conftest import REPO_ROOT


def test_crop_and_split():
    x = np.arange(100)
    assert crop(x, 0).tolist() == x.tolist() and crop(x, 200).tolist() == x.tolist()
    assert crop(x, 10, "start").tolist() == list(range(10))
    assert crop(x, 10, "center").tolist() == list(range(45, 55))
    seg = split_equal(x, 30)  # ceil(100/30) = 4 segments of 25
    assert seg.shape == (4, 25) and seg.ravel().tolist() == list(range(100))
    assert split_equal(x, 100).shape == (1, 100)


def test_extract_embeddings_program(tmp_path, standin_fbank_backend):
    data, teacher = make_tiny_data(str(tmp_path))
    conf = tiny_config()
    conf["optim"] = {**conf["optim"], "num_epochs": 1, "average_last": 1}
    train(load_config(None, conf), data, str(tmp_path / "exp"), teacher)
    out = tmp_path / "emb"
    for max_dur, chunk in ((0.0, 0.5), (0.6, 10.0)):
        wspec = f"ark,scp:{out}/x.ark,{out}/x.scp"
        argv = ["--chunk-seconds", str(chunk), "--max-duration", str(max_dur), str(tmp_path / "exp"), data, wspec]
        try:
            extract_embeddings.main(argv)
        except SystemExit as exc:  # pragma: no cover - argparse errors
            raise AssertionError(exc) from exc
        table = load_table(f"scp:{out}/x.scp")
        reader = AudioReader.from_data_dir(data)
        assert sorted(table) == sorted(reader.keys())
        embedder, desc = load_embedder(str(tmp_path / "exp"))
        frontend = frontend_from_config(desc["features"])
        # the longest utterance (1.0 s) by hand: crop or cut into equal segments, embed each, average
        x = reader.read("spk1-u2")
        if max_dur:
            n = int(max_dur * 16000)
            start = (len(x) - n) // 2
            segments = [x[start:start + n]]
        else:
            segments = [x[0:8000], x[8000:16000]]  # 16000 samples, 0.5-s chunks: 2 segments
        with torch.no_grad():
            ref = np.mean([embedder(torch.from_numpy(frontend(s))[None])[0].numpy() for s in segments], axis=0)
        np.testing.assert_allclose(table["spk1-u2"], ref, rtol=1e-4, atol=1e-5)
        assert table["spk1-u2"].shape == (8,)


def test_train_program_rejects_bad_input(tmp_path, standin_fbank_backend):
    import pytest
    import yaml

    from sidkd.bin import train_student
    from sidkd.errors import DataError

    data, _ = make_tiny_data(str(tmp_path))
    conf = tmp_path / "student.yaml"
    conf.write_text(yaml.safe_dump(tiny_config()))
    with pytest.raises(DataError, match="no such file"):
        train_student.main(["--config", str(conf), "--train-data", str(tmp_path / "nodata"), "--dir", str(tmp_path / "x")])
    with pytest.raises(DataError, match="teacher"):  # λ > 0 without teacher vectors
        train_student.main(["--config", str(conf), "--train-data", data, "--dir", str(tmp_path / "x"),
                            "--set", "loss.kd.weight=1.0"])
    with pytest.raises(DataError, match="no such network config"):
        train_student.main(["--config", str(tmp_path / "none.yaml"), "--train-data", data, "--dir", str(tmp_path)])


def test_config_rejects_unknown_keys(tmp_path):
    import pytest

    from sidkd.errors import DataError

    for path in ("conf/student.yaml", "conf/student_gpu.yaml"):
        load_config(os.path.join(REPO_ROOT, path))  # the shipped configs load
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lr_final: 0.1\n")
    with pytest.raises(DataError, match="optim.'lr_final'"):
        load_config(str(bad))
