"""What a model directory was trained with: ``DIR/config.yaml``, written before the first step and
checked at every start, so that a directory never holds a model of another configuration than the
one asked for, and a checkpoint is never resumed under another one.

config.yaml holds
- ``config``: the merged configuration (the code's defaults, the yaml file, every override; the seed
  is in it);
- ``inputs``: what the training reads, each with a digest of its content: the training data dir
  (wav.scp, utt2spk), the teacher vectors (the scp and the archives it points into), the crops file of
  the crop targets, the source model of a transfer;
- ``config_hash``: sha256 of the two above, less the keys that change no number (``NEUTRAL``);
- ``run``: where it ran (torch version, device, processes, the trunk's resolved precision); for
  information, not part of the identity (a training may move to another machine).

``claim`` compares an existing config.yaml with the one asked for: the same identity resumes (or
finds the training finished); another stops with an error naming every key that differs, unless
``overwrite`` clears the directory's training outputs first.
"""

from __future__ import annotations

import copy
import glob
import hashlib
import json
import logging
import os
import shutil

from sidkd.errors import DataError

__all__ = ["NEUTRAL", "CONFIG_FILE", "data_digest", "model_digest", "rspec_digest", "file_digest", "make_record",
           "config_hash", "differences", "claim"]

CONFIG_FILE = "config.yaml"

log = logging.getLogger(__name__)

# Keys that change how fast, not what: batches made ahead, loader processes, log lines.
NEUTRAL = (("speed", "prefetch"), ("data", "num_workers"), ("optim", "log_interval"))

# What a training writes into its directory (removed by overwrite; logs stay for the record).
OUTPUTS = ("final.pt", "model.json", "checkpoints", CONFIG_FILE, "train_seconds")
# What is made from the trained network inside its directory (exports, enrolments, the verify
# threshold, embeddings): a new training removes them, so that none is taken for the new network's.
DERIVED = ("*.onnx", "*.onnx.json", "*.ts", "verify.npz", "speakers", "xvectors_*")


def file_digest(paths: list[str]) -> str:
    """sha1 over the named files' bytes, in order (a missing file counts as empty)."""
    digest = hashlib.sha1()
    for path in paths:
        digest.update(os.path.basename(path).encode() + b"\0")
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def data_digest(data_dir: str) -> str:
    """The utterances and speakers a training reads from a data dir."""
    return file_digest([os.path.join(data_dir, name) for name in ("wav.scp", "utt2spk", "segments")])


def model_digest(model_dir: str) -> str:
    """A trained model as it is (model.json and final.pt): what a transfer starts from."""
    return file_digest([os.path.join(model_dir, "model.json"), os.path.join(model_dir, "final.pt")])


def rspec_digest(rspec: str) -> str:
    """An archive rspecifier's content: an scp file and the archives it points into, or an ark file;
    a pipe by its command line (it cannot be read twice)."""
    kind, _, target = rspec.partition(":")
    target = target.strip()
    if kind.split(",")[0] == "scp" and os.path.isfile(target):
        arks = []
        with open(target, encoding="utf-8") as handle:
            for line in handle:
                parts = line.split(maxsplit=1)
                if len(parts) == 2:
                    ark = parts[1].strip().rsplit(":", 1)[0]
                    if ark not in arks:
                        arks.append(ark)
        base = os.path.dirname(target)
        return file_digest([target] + [a if os.path.isabs(a) or os.path.isfile(a) else os.path.join(base, a)
                                       for a in arks])
    if kind.split(",")[0] == "ark" and os.path.isfile(target):
        return file_digest([target])
    return hashlib.sha1(rspec.encode()).hexdigest()


def _identity(config: dict, inputs: dict) -> dict:
    config = copy.deepcopy(config)
    for section, key in NEUTRAL:
        config.get(section, {}).pop(key, None)
    return {"config": config, "inputs": inputs}


def config_hash(config: dict, inputs: dict) -> str:
    text = json.dumps(_identity(config, inputs), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_record(config: dict, inputs: dict, run: dict) -> dict:
    """config.yaml's content; plain yaml types only (a str subclass such as torch's version becomes str)."""
    record = {"config_hash": config_hash(config, inputs), "config": config, "inputs": inputs, "run": run}
    return json.loads(json.dumps(record, default=str))


def _flatten(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def differences(old: dict, new: dict) -> list[str]:
    """'key: old -> new' for every leaf of the identities that differs (missing: <absent>)."""
    a, b = _flatten(_identity(old["config"], old["inputs"])), _flatten(_identity(new["config"], new["inputs"]))
    out = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            out.append(f"{key}: {a.get(key, '<absent>')!r} -> {b.get(key, '<absent>')!r}")
    return out


def _read(path: str) -> dict:
    import yaml

    with open(path, encoding="utf-8") as handle:
        record = yaml.safe_load(handle)
    if not isinstance(record, dict) or "config" not in record or "inputs" not in record:
        raise DataError(f"{path}: not a sidkd config record (config:, inputs:); remove it or pass --overwrite true")
    return record


def _write(path: str, record: dict) -> None:
    import yaml

    from sidkd.io.datadir import atomic_write_text

    atomic_write_text(path, "# what this directory's model was trained with (sidkd.nnet.experiment)\n"
                      + yaml.safe_dump(record, sort_keys=False))


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def _clear(out_dir: str) -> None:
    for name in OUTPUTS:
        _remove(os.path.join(out_dir, name))
    derived = sorted({path for pattern in DERIVED for path in glob.glob(os.path.join(glob.escape(out_dir), pattern))})
    for path in derived:
        _remove(path)
    if derived:
        log.warning("%s: removed what the old network made: %s (export, embed, enrol and calibrate again with "
                    "the new one)", out_dir, ", ".join(os.path.basename(p) for p in derived))


def claim(out_dir: str, record: dict, resume: bool, overwrite: bool, write: bool = True) -> str:
    """Make ``out_dir`` the directory of the training ``record`` describes. Returns ``"done"`` (the
    same training finished earlier: final.pt is there), ``"resume"`` (the same training, resumable
    from its checkpoints) or ``"fresh"`` (a new start; old outputs removed). Only the writing process
    (``write``, rank 0) writes or removes anything; the others take the same decision. A directory
    with neither final.pt nor a checkpoint (a training that failed before its first epoch ended) is
    fresh whatever its config.yaml says."""
    path = os.path.join(out_dir, CONFIG_FILE)
    # a training that never finished an epoch left nothing to keep: its directory counts as fresh
    checkpoints = os.path.join(out_dir, "checkpoints")
    has_outputs = os.path.exists(os.path.join(out_dir, "final.pt")) or (
        os.path.isdir(checkpoints) and any(name.endswith(".pt") for name in os.listdir(checkpoints)))
    if os.path.isfile(path):
        old = _read(path)
        diff = differences(old, record)
        if diff and not overwrite and has_outputs:
            raise DataError(f"{path}: {out_dir} holds a training of another configuration; differing keys "
                            f"(there -> asked): {'; '.join(diff)}. Choose another directory, or pass "
                            f"--overwrite true to train it again")
        if not diff and resume:
            if write:
                _write(path, record)  # the neutral keys and the run section as of now
            return "done" if os.path.isfile(os.path.join(out_dir, "final.pt")) else "resume"
    elif has_outputs and not overwrite:
        raise DataError(f"{out_dir}: has a model or checkpoints but no {CONFIG_FILE} (trained before "
                        f"configurations were recorded, or by another tool), so it cannot be resumed or reused: "
                        f"pass --overwrite true to train it again, or choose another directory")
    if write:
        os.makedirs(out_dir, exist_ok=True)
        _clear(out_dir)
        _write(path, record)
    return "fresh"
