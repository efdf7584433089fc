"""Kaldi's add-deltas: append delta (and delta-delta...) features.

Usage: python -m sidkd.bin.add_deltas [--delta-order=2 --delta-window=2] FEATS_RSPEC FEATS_WSPEC
"""

from sidkd.bin._features import filter_archive_main
from sidkd.cli import run_main
from sidkd.feat import DeltaOptions, add_deltas


def main() -> int:
    return filter_archive_main(
        __doc__.splitlines()[0], DeltaOptions, lambda feats, o: add_deltas(feats, o.delta_order, o.delta_window)
    )


if __name__ == "__main__":
    run_main(main)
