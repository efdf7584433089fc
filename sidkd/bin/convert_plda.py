"""Convert a PLDA model between sidkd's .npz and Kaldi's Plda file (ivector-plda-scoring).

Usage: python -m sidkd.bin.convert_plda --to-kaldi [--binary=false] PLDA.npz KALDI-PLDA
       python -m sidkd.bin.convert_plda --from-kaldi KALDI-PLDA PLDA.npz
Kaldi's file is read in text or binary form. The format is described in sidkd/backend/kaldi_plda.py
and docs/kaldi_interop.md.
"""

from sidkd.backend.kaldi_plda import read_kaldi_plda, write_kaldi_plda
from sidkd.backend.plda import Plda
from sidkd.cli import ArgumentParser, run_main


def main(argv=None) -> int:
    parser = ArgumentParser(prog="convert_plda", description=__doc__.split("\n")[0])
    direction = parser.add_mutually_exclusive_group(required=True)
    direction.add_argument("--to-kaldi", action="store_true", help="sidkd .npz -> Kaldi Plda")
    direction.add_argument("--from-kaldi", action="store_true", help="Kaldi Plda (text or binary) -> sidkd .npz")
    parser.add_bool("--binary", False, "with --to-kaldi: write Kaldi's binary form instead of text")
    parser.add_argument("source", help="model to read")
    parser.add_argument("target", help="model to write")
    args = parser.parse_args(argv)
    if args.to_kaldi:
        write_kaldi_plda(args.target, Plda.load(args.source), binary=args.binary)
    else:
        read_kaldi_plda(args.source).save(args.target)
    return 0


if __name__ == "__main__":
    run_main(main)
