"""Kaldi's compute-mfcc-feats: audio (wav.scp, optionally segments) -> mfcc archive.

Usage: python -m sidkd.bin.compute_mfcc_feats [--config conf/mfcc.conf] [--opt=value ...]
           [--segments FILE] [--write-utt2num-frames FILE] scp:WAV_SCP WSPEC
Unreadable, empty or shorter-than-one-frame utterances are skipped with a WARNING naming them;
more than --max-fail-fraction of them makes the program fail without output.
"""

from sidkd.bin._features import compute_features_main
from sidkd.cli import run_main
from sidkd.feat import MfccOptions, compute_mfcc


def main() -> int:
    return compute_features_main(__doc__.splitlines()[0], MfccOptions, compute_mfcc)


if __name__ == "__main__":
    run_main(main)
