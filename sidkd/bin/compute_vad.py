"""Kaldi's compute-vad: energy voice activity decisions (0/1 per frame) from MFCCs with c0 = energy.

Usage: python -m sidkd.bin.compute_vad [--config conf/vad.conf] [--vad-energy-threshold=5.0 ...]
           FEATS_RSPEC VAD_WSPEC        (e.g. scp:feats.scp ark,scp:vad.ark,vad.scp)
Logs the proportion of voiced frames; an utterance without frames is skipped with a WARNING.
"""

import logging

from sidkd.cli import ArgumentParser, run_main
from sidkd.feat import VadOptions, compute_vad
from sidkd.io.ark import ArchiveWriter, iter_archive

log = logging.getLogger("sidkd.bin")


def main() -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    VadOptions.add_to_parser(parser)
    parser.add_argument("feats_rspecifier")
    parser.add_argument("vad_wspecifier")
    args = parser.parse_args()
    opts = VadOptions.from_namespace(args)
    num_done = num_skipped = frames = voiced = 0
    with ArchiveWriter(args.vad_wspecifier) as writer:
        for utt, feats in iter_archive(args.feats_rspecifier):
            if feats.ndim != 2 or feats.shape[0] == 0:
                log.warning("skipping utterance %s: no frames", utt)
                num_skipped += 1
                continue
            decision = compute_vad(feats, opts)
            writer[utt] = decision
            num_done += 1
            frames += len(decision)
            voiced += int(decision.sum())
            log.debug("%s: %d of %d frames voiced", utt, int(decision.sum()), len(decision))
    share = 100.0 * voiced / frames if frames else 0.0
    log.info(
        "Done: %d utterances, %d skipped; voiced frames: %d of %d (%.1f%%)", num_done, num_skipped, voiced, frames, share
    )
    return 0


if __name__ == "__main__":
    run_main(main)
