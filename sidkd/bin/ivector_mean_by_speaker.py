"""Per-speaker i-vectors as in Kaldi's extract_ivectors.sh: length-normalise each utterance's
i-vector (to √dim), average over the speaker's utterances, length-normalise the mean.

Usage: ivector_mean_by_speaker <spk2utt> <ivector-rspecifier> <spk-ivector-wspecifier> [<num-utts-out>]
<num-utts-out> is a text table "spk N" (Kaldi's num_utts.ark). Utterances without an i-vector
are logged and skipped; a speaker with none is skipped and counted.
"""

import logging

import numpy as np

from sidkd.cli import ArgumentParser, run_main
from sidkd.io.ark import ArchiveWriter, load_table
from sidkd.io.datadir import atomic_write_text, read_spk2utt
from sidkd.ivector import speaker_mean

log = logging.getLogger("ivector_mean_by_speaker")


def main(argv=None):
    parser = ArgumentParser(prog="ivector_mean_by_speaker", description=__doc__)
    parser.add_argument("spk2utt")
    parser.add_argument("ivector_rspecifier")
    parser.add_argument("spk_ivector_wspecifier")
    parser.add_argument("num_utts_out", nargs="?", default="")
    args = parser.parse_args(argv)
    spk2utt = read_spk2utt(args.spk2utt)
    ivectors = load_table(args.ivector_rspecifier)
    lines, missing, skipped = [], 0, 0
    with ArchiveWriter(args.spk_ivector_wspecifier) as writer:
        for spk, utts in spk2utt.items():
            found = [u for u in utts if u in ivectors]
            for utt in utts:
                if utt not in ivectors:
                    log.warning("%s: no i-vector for utterance (speaker %s)", utt, spk)
            missing += len(utts) - len(found)
            if not found:
                skipped += 1
                continue
            writer[spk] = speaker_mean(np.stack([ivectors[u] for u in found])).astype(np.float32)
            lines.append(f"{spk} {len(found)}\n")
        written = writer.count
    if args.num_utts_out:
        atomic_write_text(args.num_utts_out, "".join(lines))
    log.info("%d speakers in = %d written + %d skipped; %d utterances without i-vector", len(spk2utt), written,
             skipped, missing)


if __name__ == "__main__":
    run_main(main)
