"""Print the merged configuration of a network yaml or variant (its ``base`` chain over the defaults).

    python -m sidkd.bin.show_config conf/student_nokd.yaml                 # the whole merged yaml
    python -m sidkd.bin.show_config conf/student_kd_crop.yaml loss.kd.target features.chunk_seconds
    python -m sidkd.bin.show_config --kind transfer conf/transfer_kl.yaml loss.kl.weight

With keys, one line each (the value; lists and sections as one-line yaml), in the order asked: what
run.sh reads to decide which teacher a student needs. Besides the settings, the derived key
``kd_teacher`` says which i-vectors the KD target reads: ``crops`` (of fixed crops of each training
utterance, steps/extract_crop_ivectors.sh) or ``utterances`` (one per utterance). The configuration is validated as the
training programs validate it, so a misspelt key in a variant fails here too; ``--check true`` only
validates, every argument a yaml:

    python -m sidkd.bin.show_config --check true --set 'optim.num_epochs=2' conf/student_nokd.yaml conf/student_kd.yaml
"""

from __future__ import annotations

import sys

from sidkd.cli import ArgumentParser, ProgramError, run_main
from sidkd.errors import DataError
from sidkd.nnet.config import KINDS, load_config, parse_overrides


def kd_teacher(config: dict) -> str:
    from sidkd.nnet.teacher_targets import target_uses_crops

    return "crops" if target_uses_crops(config["loss"]["kd"]["target"]) else "utterances"


DERIVED = {"kd_teacher": kd_teacher}  # facts that follow from the settings, by the library's rules


def lookup(config: dict, key: str):
    if key in DERIVED:
        return DERIVED[key](config)
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ProgramError(f"no setting {key!r} in the merged configuration")
        node = node[part]
    return node


def render(value) -> str:
    import yaml

    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, width=1 << 20).strip()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def main(argv=None) -> int:
    import yaml

    parser = ArgumentParser(prog="show_config", description=__doc__.split("\n")[0])
    parser.add_argument("--kind", default="student", choices=KINDS,
                        help="whose defaults and keys: train_student's or transfer_student's")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE ...",
                        help="settings over the yaml, as the training programs take them")
    parser.add_bool("--check", False, "only validate: every argument is a yaml, each merged with --set "
                    "and checked (keys, types, ranges); nothing is printed (run.sh, before its stages)")
    parser.add_argument("config", help="network yaml or variant file")
    parser.add_argument("keys", nargs="*", help="dotted keys to print, e.g. loss.kd.target")
    args = parser.parse_args(argv)
    if args.check:
        for path in [args.config, *args.keys]:
            try:
                load_config(path, parse_overrides(args.set), kind=args.kind)
            except ProgramError:
                raise
            except DataError as exc:
                raise ProgramError(f"{path}: {exc}") from None
        return 0
    config = load_config(args.config, parse_overrides(args.set), kind=args.kind)
    if not args.keys:
        sys.stdout.write(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
        return 0
    for key in args.keys:
        print(render(lookup(config, key)))
    return 0


if __name__ == "__main__":
    run_main(main)
