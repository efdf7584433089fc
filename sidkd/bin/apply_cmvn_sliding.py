"""Kaldi's apply-cmvn-sliding: sliding-window mean (and variance) normalisation per utterance.

Usage: python -m sidkd.bin.apply_cmvn_sliding [--cmn-window=600 --min-cmn-window=100
           --center=false --norm-vars=false] FEATS_RSPEC FEATS_WSPEC
(defaults are Kaldi's; the voxceleb recipe passes --cmn-window=300 --center=true)
"""

from sidkd.bin._features import filter_archive_main
from sidkd.cli import run_main
from sidkd.feat import SlidingCmvnOptions, apply_cmvn_sliding


def main() -> int:
    return filter_archive_main(__doc__.splitlines()[0], SlidingCmvnOptions, apply_cmvn_sliding)


if __name__ == "__main__":
    run_main(main)
