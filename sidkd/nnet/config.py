"""Training configurations: a yaml over the defaults, variants as yaml files, ``key=value`` overrides.

A variant file names its base and holds only its differences (as wespeaker's and Hydra's configs do):

    # conf/student_nokd.yaml
    base: student.yaml        # relative to this file's folder
    loss: {kd: {weight: 0.0}}

The loader follows ``base`` down to a file without one, then merges upwards: defaults, the base,
..., the variant, then the command line's overrides, each a dotted key and a yaml value
(``loss.kd.target=lda``, ``short_seconds=[0.5,2]``, ``seed=3``). Every key of every layer must be a
known setting: a misspelt one would otherwise fall back to its default in silence.
"""

from __future__ import annotations

import copy
import os

from sidkd.errors import DataError

__all__ = ["BASE_KEY", "KINDS", "defaults_for", "load_config", "parse_overrides", "merge", "check_keys"]

KINDS = ("student", "transfer")

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


def defaults_for(kind: str) -> dict:
    """The defaults (and so the known keys) of a training program: train_student's or transfer_student's."""
    if kind == "transfer":
        from sidkd.nnet.transfer import DEFAULTS
    elif kind == "student":
        from sidkd.nnet.trainer import DEFAULTS
    else:
        raise DataError(f"kind {kind!r}: expected one of {KINDS}")
    return DEFAULTS


def load_config(path: str | None, overrides: dict | None = None, defaults: dict | None = None) -> dict:
    """The merged configuration: ``defaults`` (the student's unless given), the yaml at ``path``
    with its ``base`` chain, then ``overrides`` (a nested dict, e.g. from parse_overrides). Unknown
    keys in any layer are an error naming the file (or "override")."""
    if defaults is None:
        defaults = defaults_for("student")
    conf = copy.deepcopy(defaults)
    for origin, layer in (_layers(path) if path else []):
        check_keys(layer, defaults, "", origin)
        conf = merge(conf, layer)
    if overrides:
        check_keys(overrides, defaults, "", "override")
        conf = merge(conf, overrides)
    return conf
