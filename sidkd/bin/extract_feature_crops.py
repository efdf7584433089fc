"""Cut the crops of a crops file (make_crops) out of feature matrices or per-frame vectors (VAD).

Usage: extract_feature_crops --crops FILE <rspecifier> <wspecifier>
Every input key with crops gives one output per crop, ``<crop> = rows start .. start + num − 1``
(frames are rows; a vector is cut as a sequence of frames). A crop running past its utterance's
end is skipped with a warning and counted; keys without crops are passed over.
"""

import logging

import numpy as np

from sidkd.cli import ArgumentParser, run_main
from sidkd.io.ark import ArchiveWriter, iter_archive
from sidkd.nnet.teacher_targets import read_crops

log = logging.getLogger("extract_feature_crops")


def main(argv=None):
    parser = ArgumentParser(prog="extract_feature_crops", description=__doc__)
    parser.add_argument("--crops", required=True, help="lines <crop> <utt> <start-frame> <num-frames>")
    parser.add_argument("rspecifier")
    parser.add_argument("wspecifier")
    args = parser.parse_args(argv)
    by_utt: dict[str, list[tuple[str, int, int]]] = {}
    for crop, (utt, start, count) in read_crops(args.crops).items():
        by_utt.setdefault(utt, []).append((crop, start, count))
    num_in = skipped = 0
    with ArchiveWriter(args.wspecifier) as writer:
        for utt, array in iter_archive(args.rspecifier):
            num_in += 1
            for crop, start, count in by_utt.get(utt, []):
                if start + count > len(array):
                    log.warning("skipping crop %s: frames %d..%d, utterance %s has %d", crop, start,
                                start + count - 1, utt, len(array))
                    skipped += 1
                    continue
                writer[crop] = np.ascontiguousarray(array[start:start + count])
        written = writer.count
    log.info("Done: %d utterances in; %d crops written, %d skipped", num_in, written, skipped)


if __name__ == "__main__":
    run_main(main)
