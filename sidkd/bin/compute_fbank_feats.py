"""Kaldi's compute-fbank-feats: audio (wav.scp, optionally segments) -> fbank archive.

Usage: python -m sidkd.bin.compute_fbank_feats [--config conf/fbank.conf] [--opt=value ...]
           [--segments FILE] [--write-utt2num-frames FILE] scp:WAV_SCP WSPEC
Unreadable, empty or shorter-than-one-frame utterances are skipped with a WARNING naming them;
more than --max-fail-fraction of them makes the program fail without output.
"""

from sidkd.bin._features import compute_features_main
from sidkd.cli import run_main
from sidkd.feat import FbankOptions, compute_fbank


def main() -> int:
    return compute_features_main(__doc__.splitlines()[0], FbankOptions, compute_fbank)


if __name__ == "__main__":
    run_main(main)
