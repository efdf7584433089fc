"""Kaldi's select-voiced-frames: keep the frames whose VAD decision is non-zero.

Usage: python -m sidkd.bin.select_voiced_frames FEATS_RSPEC VAD_RSPEC FEATS_WSPEC
Utterances without a VAD entry, with a VAD of the wrong length, or with no voiced frame are
skipped with a WARNING and counted.
"""

import logging

import kaldiio

from sidkd.cli import ArgumentParser, run_main
from sidkd.errors import DataError
from sidkd.feat import select_voiced_frames
from sidkd.io.ark import ArchiveWriter, iter_archive, load_table

log = logging.getLogger("sidkd.bin")


def open_vad(rspec: str):
    """Random access by key: an scp is read lazily, an archive (or pipe) is loaded (small)."""
    kind, _, path = rspec.partition(":")
    if "scp" in kind.split(","):
        try:
            return kaldiio.load_scp(path)
        except OSError as exc:
            raise DataError(f"cannot read {rspec!r}: {exc}") from exc
    return load_table(rspec)


def main() -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("feats_rspecifier")
    parser.add_argument("vad_rspecifier")
    parser.add_argument("feats_wspecifier")
    args = parser.parse_args()
    vad_table = open_vad(args.vad_rspecifier)
    num_in = num_done = frames_in = frames_out = 0
    skipped = {"no VAD": 0, "length mismatch": 0, "no voiced frame": 0}
    with ArchiveWriter(args.feats_wspecifier) as writer:
        for utt, feats in iter_archive(args.feats_rspecifier):
            num_in += 1
            if utt not in vad_table:
                log.warning("skipping utterance %s: no VAD entry in %s", utt, args.vad_rspecifier)
                skipped["no VAD"] += 1
                continue
            try:
                voiced = select_voiced_frames(feats, vad_table[utt])
            except DataError as exc:
                log.warning("skipping utterance %s: %s", utt, exc)
                skipped["length mismatch"] += 1
                continue
            if voiced.shape[0] == 0:
                log.warning("skipping utterance %s: no voiced frame", utt)
                skipped["no voiced frame"] += 1
                continue
            writer[utt] = voiced
            num_done += 1
            frames_in += feats.shape[0]
            frames_out += voiced.shape[0]
    details = ", ".join(f"{n} {why}" for why, n in skipped.items() if n)
    log.info(
        "Done: %d utterances in, %d written, %d skipped%s; kept %d of %d frames",
        num_in, num_done, sum(skipped.values()), f" ({details})" if details else "", frames_out, frames_in,
    )
    return 0


if __name__ == "__main__":
    run_main(main)
