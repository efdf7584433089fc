"""The memory allocator that path.sh sets (SIDKD_MALLOC): what it exports, and that it changes no
number. Its speed is measured by bench/bench_student.py, never here.

A student is trained from the command line under each setting the machine allows (glibc's
default, glibc with mmap_max=0, tcmalloc where installed), in separate processes as the recipe
runs it, with activations large enough (> 128 kB) that glibc's default serves them through mmap.
The final parameters must be bit-identical, and a run stopped after epoch 1 and resumed under the
recipe's setting must end where the uninterrupted one did.
"""

import os
import subprocess

import pytest
import torch
import yaml
from tiny_student import TINY_YAML, speaker_files, write_data_dir

from tests.conftest import REPO_ROOT, tool_env

TCMALLOC_INSTALLED = any(
    os.path.isfile(os.path.join(d, "libtcmalloc_minimal.so.4"))
    for d in (f"/usr/lib/{os.uname().machine}-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib",
              os.path.join(os.environ.get("CONDA_PREFIX", "/nonexistent"), "lib")))  # path.sh's places


def sourced(setting, extra_env=None, command='echo "$SIDKD_MALLOC|${LD_PRELOAD:-}|${GLIBC_TUNABLES:-}"'):
    """Run ``command`` in bash after sourcing path.sh with SIDKD_MALLOC=setting (None: unset)."""
    env = {k: v for k, v in tool_env().items() if k not in ("LD_PRELOAD", "GLIBC_TUNABLES", "SIDKD_MALLOC")}
    env["SIDKD_NO_VENV"] = "1"  # the test's own interpreter, not a .venv of the checkout
    if setting is not None:
        env["SIDKD_MALLOC"] = setting
    env.update(extra_env or {})
    return subprocess.run(["bash", "-c", f'. "{REPO_ROOT}/path.sh" && {command}'], env=env, capture_output=True,
                          text=True, timeout=600)


def test_path_sh_exports_the_setting_it_names():
    glibc = sourced("glibc")
    assert glibc.returncode == 0, glibc.stderr
    name, preload, tunables = glibc.stdout.strip().split("|")
    assert (name, preload) == ("glibc", "")
    assert tunables == "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"
    system = sourced("system")
    assert system.stdout.strip() == "system||"
    auto = sourced(None)
    name, preload, tunables = auto.stdout.strip().split("|")
    if TCMALLOC_INSTALLED:
        assert name == "auto" and preload.endswith("libtcmalloc_minimal.so.4") and tunables == ""
    else:
        assert (name, preload) == ("glibc", "") and "mmap_max=0" in tunables
    # a user's own tunables are kept; sourcing twice (run.sh, then each step) adds nothing twice
    twice = sourced("glibc", {"GLIBC_TUNABLES": "glibc.cpu.x86_foo=1"},
                    command=f'. "{REPO_ROOT}/path.sh" && echo "$GLIBC_TUNABLES|${{LD_PRELOAD:-}}"')
    assert twice.stdout.strip() == \
        "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736:glibc.cpu.x86_foo=1|"
    if TCMALLOC_INSTALLED:
        twice = sourced("tcmalloc", command=f'. "{REPO_ROOT}/path.sh" && echo "$LD_PRELOAD"')
        assert twice.stdout.strip().count("libtcmalloc") == 1
    bad = sourced("jemalloc")
    assert bad.returncode != 0 and "SIDKD_MALLOC=jemalloc: expected auto, tcmalloc, glibc or system" in bad.stderr


def write_config(root):
    """tests/nnet/student_tiny.yaml with first-stage activations of 8 x 8 x 24 x 100 floats (600 kB)."""
    with open(TINY_YAML) as handle:
        config = yaml.safe_load(handle)
    config["features"]["chunk_seconds"] = 1.0
    config["features"]["fbank"]["num_mel_bins"] = 24
    config["model"]["width"] = 8
    config["loss"]["kd"]["weight"] = 0.0
    config["data"].update(batch_size=8, chunks_per_epoch=16)
    config["speed"] = {"precision": "fp32", "optimizer_impl": "foreach", "prefetch": 2}
    path = os.path.join(root, "student.yaml")
    with open(path, "w") as handle:
        yaml.safe_dump(config, handle)
    return path


def train(root, setting, name, *extra):
    log = os.path.join(root, f"{name}.log")
    command = (f"python -m sidkd.bin.train_student --config {root}/student.yaml --train-data {root}/data "
               f"--dir {root}/{name} {' '.join(extra)} > {log} 2>&1")
    proc = sourced(setting, command=command)
    text = open(log).read()
    assert proc.returncode == 0, text[-3000:]
    return text


def final_parameters(root, name):
    return torch.load(os.path.join(root, name, "final.pt"), weights_only=True)["model"]


def test_the_allocator_changes_no_number_and_resume_stays_exact(tmp_path):
    root = str(tmp_path)
    write_data_dir(os.path.join(root, "data"), speaker_files(4, 4))
    write_config(root)
    settings = {"system": "glibc default", "glibc": "glibc (mmap_max=0)"}
    if TCMALLOC_INSTALLED:
        settings["tcmalloc"] = "tcmalloc"
    for setting, shown in settings.items():
        log = train(root, setting, setting)
        assert f"allocator {shown}" in log  # the setting reached the training process
    reference = final_parameters(root, "system")
    for setting in settings:
        params = final_parameters(root, setting)
        assert sorted(params) == sorted(reference)
        for key in reference:
            assert torch.equal(params[key], reference[key]), (setting, key)
    # the recipe's own setting, stopped after epoch 1 and resumed
    train(root, None, "resumed", "--stop-after-epoch", "1")
    assert not os.path.exists(os.path.join(root, "resumed", "final.pt"))
    log = train(root, None, "resumed", "--resume", "true")
    assert "resumed from" in log
    params = final_parameters(root, "resumed")
    for key in reference:
        assert torch.equal(params[key], reference[key]), ("resumed", key)


@pytest.mark.skipif(TCMALLOC_INSTALLED, reason="tcmalloc is installed here")
def test_asking_for_tcmalloc_where_it_is_missing_falls_back_to_glibc_with_a_message():
    proc = sourced("tcmalloc")
    assert proc.returncode == 0
    assert proc.stdout.strip().startswith("glibc||glibc.malloc.mmap_max=0")
    assert "apt-get install libtcmalloc-minimal4" in proc.stderr
