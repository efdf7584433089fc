"""Sizes of run.sh fitted to its data (sidkd.sizes): what run.sh asks before the stages that need them.

    python -m sidkd.bin.fit_sizes lda --name lda_dim --dim 150 --max-dim 200 data/train/utt2spk
        prints the LDA dimension to use: --dim, or less when the data dir's speakers with >= 2
        utterances (those the back-ends train on) are too few, with the reason on stderr
    python -m sidkd.bin.fit_sizes teacher --num-gauss 256 --ivector-dim 200 data/train
        warns on stderr, naming the setting to lower, when data/train's voiced frames (vad.scp) are
        too few for the teacher's Gaussians, or its utterances for the i-vector dimension
"""

from __future__ import annotations

import logging
import os

from sidkd.cli import ArgumentParser, ProgramError, run_main
from sidkd.sizes import count_speakers, fit_lda_dim, teacher_warnings

log = logging.getLogger("fit_sizes")


def delta_order(deltas_config: str) -> int:
    """--delta-order of a Kaldi add-deltas config file (2, add-deltas' default, when not set)."""
    order = 2
    if deltas_config and os.path.isfile(deltas_config):
        with open(deltas_config, encoding="utf-8") as handle:
            for line in handle:
                line = line.split("#", 1)[0].strip()
                if line.startswith("--delta-order="):
                    order = int(line.split("=", 1)[1])
    return order


def main(argv=None) -> int:
    parser = ArgumentParser(prog="fit_sizes", description=__doc__.split("\n")[0])
    parser.add_argument("--name", default="lda_dim", help="the setting's name, for the log line")
    parser.add_argument("--dim", type=int, default=150, help="lda: the configured LDA dimension")
    parser.add_argument("--max-dim", type=int, default=0, help="lda: the vectors' dimension (0: not limited)")
    parser.add_argument("--min-utts-per-spk", type=int, default=2,
                        help="lda: the speakers counted (the back-ends' PLDA drops those with fewer)")
    parser.add_argument("--num-gauss", type=int, default=256, help="teacher: its Gaussians")
    parser.add_argument("--ivector-dim", type=int, default=200, help="teacher: its i-vector dimension")
    parser.add_argument("--deltas-config", default="conf/ivector_deltas.conf",
                        help="teacher: the deltas the teacher's features add (their dimension)")
    parser.add_argument("what", choices=["lda", "teacher"])
    parser.add_argument("data", help="lda: an utt2spk file; teacher: the training data dir (feats.scp, vad.scp)")
    args = parser.parse_args(argv)
    if args.what == "lda":
        speakers = count_speakers(args.data, args.min_utts_per_spk)
        dim, why = fit_lda_dim(args.dim, speakers, args.max_dim or None)
        if why:
            log.warning("%s %s (%s: speakers with >= %d utterances); fitted to the data", args.name, why, args.data,
                        args.min_utts_per_spk)
        print(dim)
        return 0
    import numpy as np

    from sidkd.io.ark import load_table

    for name in ("feats.scp", "vad.scp", "utt2spk"):
        if not os.path.isfile(os.path.join(args.data, name)):
            raise ProgramError(f"{args.data}/{name}: no such file (stage 1 makes it)")
    vad = load_table(f"scp:{os.path.join(args.data, 'vad.scp')}")
    voiced = int(sum(int(np.asarray(v).sum()) for v in vad.values()))
    with open(os.path.join(args.data, "feats.scp"), encoding="utf-8") as handle:
        first = handle.readline().split(None, 1)
    import kaldiio

    feat_dim = kaldiio.load_mat(first[1].strip()).shape[1] * (1 + delta_order(args.deltas_config))
    for warning in teacher_warnings(voiced, len(vad), feat_dim, args.num_gauss, args.ivector_dim):
        log.warning("%s: %s", args.data, warning)
    return 0


if __name__ == "__main__":
    run_main(main)
