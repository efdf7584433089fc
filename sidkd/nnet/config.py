"""Training configurations: a yaml over the defaults, variants as yaml files, ``key=value`` overrides.

The defaults of a kind of training are its base yaml in the recipe's conf/ (``BASES``: conf/student.yaml
for train_student, conf/transfer.yaml for transfer_student): the one place each default is written,
and the list of the settings there are. A variant file names its base and holds only its
differences (as wespeaker's and Hydra's configs do):

    # conf/student_nokd.yaml
    base: student.yaml        # relative to this file's folder
    loss: {kd: {weight: 0.0}}

The loader follows ``base`` down to a file without one, then merges upwards: the kind's base yaml,
..., the variant, then the command line's overrides, each a dotted key and a yaml value
(``loss.kd.target=lda``, ``short_seconds=[0.5,2]``, ``seed=3``). Every key of every layer must be a
setting of the base yaml: a misspelt one would otherwise be ignored in silence, and every number
the training loop sizes itself by must be of its type and in its range (``check_values``), so that
a bad value stops before anything starts rather than as a traceback hours later.
"""

from __future__ import annotations

import copy
import os

from sidkd.errors import DataError

__all__ = ["BASE_KEY", "BASES", "KINDS", "CONF_DIR", "base_config", "defaults_for", "load_config", "parse_overrides",
           "merge", "check_keys", "check_values"]

# the recipe's conf/ beside the package
CONF_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "conf")
BASES = {"student": "student.yaml", "transfer": "transfer.yaml"}
KINDS = tuple(BASES)

BASE_KEY = "base"
# Sections whose keys are not checked against the defaults: options handed on as they are
# (feature extractor options, augmentation recipes).
FREE_SECTIONS = ("fbank", "mfcc", "augment")


def merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``, section by section; a free section is replaced whole only at
    the top of a layer that sets it (fbank/mfcc: an option left out keeps the base's value)."""
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# (dotted key, type, lowest allowed, whether the lowest is excluded): the settings a training sizes
# itself by. "int": a whole number (a yaml bool is not one); "number": int or float; a key may be
# null where its default is (data.chunks_per_epoch: null = the data's own length).
VALUE_RULES = (
    ("seed", "int", None, False),
    ("optim.num_epochs", "int", 1, False),
    ("optim.average_last", "int", 1, False),
    ("optim.lr", "number", 0, True),
    ("optim.final_lr", "number", 0, False),
    ("optim.weight_decay", "number", 0, False),
    ("optim.warmup_epochs", "number", 0, False),
    ("optim.grad_clip", "number", 0, True),
    ("optim.log_interval", "int", 1, False),
    ("data.batch_size", "int", 1, False),
    ("data.utts_per_speaker", "int", 1, False),
    ("data.speaker_weight_power", "number", 0, False),
    ("data.chunks_per_epoch", "int", 1, False),
    ("data.num_workers", "int", 0, False),
    ("features.sample_rate", "int", 1, False),
    ("features.chunk_seconds", "number", 0, True),
    ("model.width", "int", 1, False),
    ("model.embedding_dim", "int", 1, False),
    ("loss.aam.scale", "number", 0, True),
    ("loss.aam.sub_centers", "int", 1, False),
    ("loss.msce.scale", "number", 0, True),
    ("loss.msce.sub_centers", "int", 1, False),
    ("loss.kd.weight", "number", 0, False),
    ("loss.kd.lda.dim", "int", 1, False),
    ("loss.kl.weight", "number", 0, False),
    ("loss.kl.temperature", "number", 0, True),
    ("replay.ratio", "number", 0, False),
)


_MISSING = object()


def _lookup(conf: dict, key: str):
    node = conf
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _origin(key: str, layers: list[tuple[str, dict]]) -> str:
    """The last layer that sets ``key`` (a file, or --set), else the code's defaults."""
    for origin, layer in reversed(layers):
        if _lookup(layer, key) is not _MISSING:
            return "--set" if origin == "override" else origin
    return "the defaults"


def check_values(conf: dict, layers: list[tuple[str, dict]] | None = None) -> None:
    """The merged configuration's numbers: each of VALUE_RULES of its type and range, and
    optim.average_last <= optim.num_epochs, replay.ratio < 1, data.batch_size a multiple of
    data.utts_per_speaker.
    The error names the key, the value, where it was set and what is allowed."""
    layers = layers or []

    def bad(key: str, value, allowed: str) -> DataError:
        return DataError(f"{key}={value!r} (from {_origin(key, layers)}): not allowed; {allowed}")

    for key, kind, low, open_low in VALUE_RULES:
        value = _lookup(conf, key)
        if value is _MISSING or (value is None and key == "data.chunks_per_epoch"):
            continue
        is_int = isinstance(value, int) and not isinstance(value, bool)
        number = value
        if isinstance(value, str):  # yaml reads 1e-3 (no dot) as text; the training reads it with float()
            try:
                number = float(value)
            except ValueError:
                pass
        is_number = is_int or (isinstance(number, float) and number == number and abs(number) != float("inf"))
        want = "a whole number" if kind == "int" else "a number"
        if low is not None:
            want += f" {'>' if open_low else '>='} {low}"
        if key == "data.chunks_per_epoch":
            want += ", or null (the data's total duration over the crop length)"
        if not (is_int if kind == "int" else is_number) or (
                low is not None and (number <= low if open_low else number < low)):
            raise bad(key, value, f"set it to {want}")
    epochs, last = _lookup(conf, "optim.num_epochs"), _lookup(conf, "optim.average_last")
    if epochs is not _MISSING and last is not _MISSING and last > epochs:
        raise bad("optim.average_last", last, f"final.pt averages the last checkpoints of optim.num_epochs={epochs} "
                                              f"epochs: set it to at most {epochs}")
    for key in ("loss.aam.margin_warmup_epochs", "loss.msce.margin_warmup_epochs"):
        warm = _lookup(conf, key)
        numbers = isinstance(warm, list) and len(warm) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in warm)
        if warm is not _MISSING and not (numbers and 0 <= warm[0] <= warm[1]):
            raise bad(key, warm, "set it to [start, end] epochs, 0 <= start <= end (margin 0 until start, "
                                 "linear to the margin at end)")
    ratio = _lookup(conf, "replay.ratio")
    if ratio is not _MISSING and float(ratio) >= 1:
        raise bad("replay.ratio", ratio, "set it to the replayed share of each batch, 0 <= ratio < 1 (0: no replay)")
    batch, per_speaker = _lookup(conf, "data.batch_size"), _lookup(conf, "data.utts_per_speaker")
    if batch is not _MISSING and per_speaker is not _MISSING and batch % per_speaker:
        raise bad("data.batch_size", batch, f"a batch is whole groups of data.utts_per_speaker={per_speaker} "
                                            f"crops of one speaker: set it to a multiple of {per_speaker}")


def check_keys(conf: dict, defaults: dict, where: str, origin: str) -> None:
    """Every key of ``conf`` must be one of ``defaults`` (recursively, outside the free sections)."""
    for key, value in conf.items():
        if key not in defaults:
            raise DataError(f"{origin}: unknown setting {where}{key!r}; known here: {sorted(defaults)}")
        if isinstance(value, dict) and isinstance(defaults[key], dict) and key not in FREE_SECTIONS:
            check_keys(value, defaults[key], f"{where}{key}.", origin)


def _read_yaml(path: str) -> dict:
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            conf = yaml.safe_load(handle)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid yaml ({exc})") from None
    conf = {} if conf is None else conf
    if not isinstance(conf, dict):
        raise DataError(f"{path}: expected a yaml mapping")
    return conf


def _layers(path: str) -> list[tuple[str, dict]]:
    """(file, its settings without ``base``) from the bottom base up to ``path``."""
    chain: list[tuple[str, dict]] = []
    seen: list[str] = []
    while path:
        real = os.path.realpath(path)
        if real in seen:
            raise DataError(f"{path}: 'base' chain loops: {' -> '.join(seen + [real])}")
        seen.append(real)
        conf = _read_yaml(path)
        base = conf.pop(BASE_KEY, None)
        chain.append((path, conf))
        if base is None:
            break
        if not isinstance(base, str) or not base:
            raise DataError(f"{path}: 'base' must name a yaml file, got {base!r}")
        base_path = os.path.join(os.path.dirname(path), base)
        if not os.path.isfile(base_path):
            raise DataError(f"{path}: its base {base!r} is not a file ({base_path})")
        path = base_path
    return chain[::-1]


def parse_overrides(items: list[str] | str | None) -> dict:
    """``["loss.kd.weight=0", "seed=3"]`` (or one string of them, space-separated) -> a nested dict;
    each value is read as yaml (numbers, true/false, null, [lists])."""
    import yaml

    if items is None:
        return {}
    if isinstance(items, str):
        items = [items]
    out: dict = {}
    for item in (field for text in items for field in text.split()):
        key, sep, text = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise DataError(f"override {item!r}: expected key=value with a dotted key, e.g. loss.kd.weight=0")
        try:
            value = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            raise DataError(f"override {item!r}: the value is not a yaml scalar or list") from None
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise DataError(f"override {item!r}: {part!r} is given a value and sub-keys")
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise DataError(f"override {item!r}: {key!r} is a section, give one of its keys")
        node[parts[-1]] = value
    return out


def base_config(kind: str) -> str:
    """The base yaml of a kind of training: its defaults and its settings."""
    if kind not in BASES:
        raise DataError(f"kind {kind!r}: expected one of {KINDS}")
    path = os.path.join(CONF_DIR, BASES[kind])
    if not os.path.isfile(path):
        raise DataError(f"{path}: the defaults of a {kind} training are the recipe's conf/{BASES[kind]}, not found "
                        f"beside this copy of sidkd; run from the recipe's checkout")
    return path


def defaults_for(kind: str) -> dict:
    """The defaults (and so the known settings) of a kind of training: its base yaml."""
    path = base_config(kind)
    conf = _read_yaml(path)
    if BASE_KEY in conf:
        raise DataError(f"{path}: the defaults of a {kind} training name no base")
    return conf


def load_config(path: str | None, overrides: dict | None = None, kind: str = "student") -> dict:
    """The merged configuration: the defaults of ``kind`` (its base yaml), the yaml at ``path``
    with its ``base`` chain, then ``overrides`` (a nested dict, e.g. from parse_overrides). Unknown
    keys in any layer are an error naming the file (or "override"), as is a value out of its type or
    range (check_values)."""
    defaults = defaults_for(kind)
    base = base_config(kind)
    layers = [(base, defaults)] + [(origin, layer) for origin, layer in (_layers(path) if path else [])
                                   if os.path.realpath(origin) != os.path.realpath(base)]
    conf: dict = {}
    for origin, layer in layers:
        check_keys(layer, defaults, "", origin)
        conf = merge(conf, layer)
    if overrides:
        check_keys(overrides, defaults, "", "override")
        conf = merge(conf, overrides)
        layers.append(("override", overrides))
    check_values(conf, layers)
    return conf
