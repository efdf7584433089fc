"""Feature options with Kaldi's names, parsed from Kaldi-syntax argument lists and config files.

Every option class is a dataclass whose fields are Kaldi's option names with ``-`` spelt ``_``
(``--num-mel-bins`` is ``num_mel_bins``) and whose defaults are Kaldi's. ``from_args`` takes the
strings a Kaldi program would (``["--num-mel-bins=30", "--snip-edges=false"]``), ``from_config``
reads a config file (one option per line, ``#`` comments), and ``add_to_parser`` /
``from_namespace`` put the same options on a program's command line.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TypeVar

from sidkd.cli import read_config_file, str2bool
from sidkd.errors import DataError

__all__ = ["KaldiOptions", "option"]

T = TypeVar("T", bound="KaldiOptions")


def option(default: Any, help: str) -> Any:  # noqa: A002 - mirrors argparse
    """A dataclass field with the help text its command-line option shows."""
    return dataclasses.field(default=default, metadata={"help": help})


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _convert(kind: type, text: str, name: str) -> Any:
    try:
        if kind is bool:
            return str2bool(text)
        return kind(text)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise DataError(f"option {_flag(name)}: bad value {text!r} ({exc})") from None


class KaldiOptions:
    """Mixin for option dataclasses: Kaldi-style parsing shared by every option set."""

    @classmethod
    def _fields(cls) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def _kind(cls, name: str) -> type:
        return type(cls._fields()[name].default)

    @classmethod
    def from_args(cls: type[T], args: list[str], allow_unknown: bool = False) -> T:
        """Options from ``--name=value`` / ``--name value`` strings; later ones win, as in Kaldi."""
        fields = cls._fields()
        values: dict[str, Any] = {}
        i = 0
        while i < len(args):
            arg = args[i]
            if not arg.startswith("--"):
                raise DataError(f"expected an option like --name=value, got {arg!r}")
            if "=" in arg:
                flag, text = arg[2:].split("=", 1)
                i += 1
            else:
                flag = arg[2:]
                if i + 1 >= len(args):
                    raise DataError(f"option --{flag} needs a value")
                text = args[i + 1]
                i += 2
            name = flag.replace("-", "_")
            if name not in fields:
                if allow_unknown:
                    continue
                raise DataError(f"unknown option --{flag} for {cls.__name__}")
            values[name] = _convert(cls._kind(name), text, name)
        opts = cls(**values)  # type: ignore[call-arg]
        opts.check()
        return opts

    @classmethod
    def from_config(cls: type[T], path: str, extra_args: list[str] | None = None) -> T:
        """Options from a Kaldi config file, then ``extra_args`` (which win)."""
        return cls.from_args(read_config_file(path) + list(extra_args or []))

    @classmethod
    def add_to_parser(cls, parser: argparse.ArgumentParser) -> None:
        for name, field in cls._fields().items():
            kind = cls._kind(name)
            help_text = field.metadata.get("help", "")
            if kind is bool:
                parser.add_argument(
                    _flag(name), type=str2bool, default=field.default, metavar="true|false", help=help_text
                )
            else:
                parser.add_argument(_flag(name), type=kind, default=field.default, help=help_text)

    @classmethod
    def from_namespace(cls: type[T], ns: argparse.Namespace) -> T:
        opts = cls(**{name: getattr(ns, name) for name in cls._fields()})  # type: ignore[call-arg]
        opts.check()
        return opts

    def to_args(self) -> list[str]:
        """The options as Kaldi-style strings (round-trips through from_args)."""
        out = []
        for name in self._fields():
            value = getattr(self, name)
            text = str(value).lower() if isinstance(value, bool) else str(value)
            out.append(f"{_flag(name)}={text}")
        return out

    def check(self) -> None:
        """Raise DataError for values Kaldi would refuse; subclasses extend."""
