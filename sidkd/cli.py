"""What every program in sidkd/bin shares: Kaldi-style options and log lines.

Options are spelt as in Kaldi (``--num-mel-bins=30`` or ``--num-mel-bins 30``); ``--config FILE``
reads more of them from a file, one per line, ``#`` starting a comment. Options given on the
command line after ``--config`` win over the file, as in Kaldi.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys

from sidkd.errors import DataError

__all__ = ["ArgumentParser", "str2bool", "expand_config_files", "parse_with_yaml_config", "setup_logging", "ProgramError"]


class ProgramError(DataError):
    """A failure the user should read as one clear line (no traceback): bad usage, missing file."""


def str2bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "t"):
        return True
    if value in ("false", "0", "no", "f"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def read_config_file(path: str) -> list[str]:
    """Lines of a Kaldi config file as argv entries; ``#`` comments and blank lines dropped."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.readlines()
    except OSError as exc:
        raise ProgramError(f"cannot read config file {path}: {exc.strerror}") from exc
    args: list[str] = []
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if not line.startswith("--"):
            raise ProgramError(f"{path}:{number}: expected an option like --name=value, got {line!r}")
        if line.startswith("--config"):
            raise ProgramError(f"{path}:{number}: nested --config is not supported")
        args.extend(shlex.split(line))
    return args


def expand_config_files(argv: list[str]) -> list[str]:
    """Replace each ``--config FILE`` / ``--config=FILE`` by the options in FILE, in place."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config":
            if i + 1 >= len(argv):
                raise ProgramError("--config needs a file name")
            out.extend(read_config_file(argv[i + 1]))
            i += 2
            continue
        if arg.startswith("--config="):
            out.extend(read_config_file(arg.split("=", 1)[1]))
        else:
            out.append(arg)
        i += 1
    return out


class ArgumentParser(argparse.ArgumentParser):
    """argparse with Kaldi's ``--config`` files and true/false booleans."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.add_argument("--config", metavar="FILE", help="read options from FILE (Kaldi syntax)")
        self.add_argument("--verbose", type=int, default=0, help="log level: 0 = info, 1+ = debug")

    def add_bool(self, name: str, default: bool, help: str) -> None:  # noqa: A002 - argparse's name
        self.add_argument(name, type=str2bool, default=default, metavar="true|false", help=help)

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        try:
            argv = expand_config_files(argv)
        except ProgramError as exc:
            self.error(str(exc))
        ns = super().parse_args(argv, namespace)
        setup_logging(self.prog, ns.verbose)
        return ns


def parse_with_yaml_config(parser: argparse.ArgumentParser, argv: list[str] | None):
    """Parse argv where ``--config X.yaml`` names a network yaml (the training programs), not a
    Kaldi option file: returns (args, yaml path)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    yaml_path = None
    rest = []
    i = 0
    while i < len(argv):
        if argv[i] == "--config" and i + 1 < len(argv):
            yaml_path = argv[i + 1]
            i += 2
            continue
        if argv[i].startswith("--config="):
            yaml_path = argv[i].split("=", 1)[1]
        else:
            rest.append(argv[i])
        i += 1
    if yaml_path is None:
        parser.error("--config <network yaml> is required")
    return parser.parse_args(rest), yaml_path


def setup_logging(prog: str | None = None, verbose: int = 0) -> logging.Logger:
    """Kaldi-like log lines on stderr: ``LOG (prog) message`` / ``WARNING (prog) ...``."""
    prog = prog or os.path.basename(sys.argv[0])
    level = logging.DEBUG if verbose > 0 else logging.INFO
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    names = {logging.INFO: "LOG", logging.DEBUG: "VLOG"}

    class _Formatter(logging.Formatter):
        def format(self, record):
            kind = names.get(record.levelno, record.levelname)
            return f"{kind} ({prog}) {record.getMessage()}"

    handler.setFormatter(_Formatter())
    root.addHandler(handler)
    root.setLevel(level)
    return root


def run_main(main) -> None:
    """Run a program's main(); bad input (DataError) becomes one ERROR line and exit status 1."""
    try:
        status = main()
    except DataError as exc:
        prog = os.path.basename(sys.argv[0])
        print(f"ERROR ({prog}) {exc}", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:
        sys.exit(1)
    sys.exit(status or 0)
