"""Convert back-end models between sidkd's .npz files and Kaldi's objects (for ivector-plda-scoring).

Usage: python -m sidkd.bin.convert_plda --to-kaldi [--binary=false] MODEL.npz KALDI-FILE
       python -m sidkd.bin.convert_plda --from-kaldi KALDI-FILE MODEL.npz
MODEL.npz is a PLDA (train_plda), a mean vector (compute_mean_vector) or an LDA (compute_lda); its
kind is read from the file. They become Kaldi's Plda, mean.vec and transform.mat ([L | offset]),
and back; Kaldi files are read in text or binary form. Formats: docs/kaldi_interop.md.
"""

import numpy as np

from sidkd.backend.kaldi_models import read_kaldi, write_kaldi
from sidkd.backend.lda import Lda
from sidkd.backend.model_io import model_kind
from sidkd.backend.plda import Plda
from sidkd.backend.vectors import load_mean, save_mean
from sidkd.cli import ArgumentParser, run_main
from sidkd.errors import DataError

LOADERS = {"plda": Plda.load, "lda": Lda.load, "mean": load_mean}


def main(argv=None) -> int:
    parser = ArgumentParser(prog="convert_plda", description=__doc__.split("\n")[0])
    direction = parser.add_mutually_exclusive_group(required=True)
    direction.add_argument("--to-kaldi", action="store_true", help="sidkd .npz -> Kaldi object")
    direction.add_argument("--from-kaldi", action="store_true", help="Kaldi object (text or binary) -> sidkd .npz")
    parser.add_bool("--binary", False, "with --to-kaldi: write Kaldi's binary form instead of text")
    parser.add_argument("source", help="model to read")
    parser.add_argument("target", help="model to write")
    args = parser.parse_args(argv)
    if args.to_kaldi:
        kind = model_kind(args.source)
        if kind not in LOADERS:
            raise DataError(f"{args.source}: a sidkd-{kind} file; only {', '.join(LOADERS)} have a Kaldi form")
        write_kaldi(args.target, LOADERS[kind](args.source), binary=args.binary)
        return 0
    model = read_kaldi(args.source)
    if isinstance(model, np.ndarray):
        save_mean(args.target, model, 0)  # Kaldi's mean.vec does not say how many vectors made it
    else:
        model.save(args.target)
    return 0


if __name__ == "__main__":
    run_main(main)
