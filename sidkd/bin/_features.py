"""Shared by the feature programs (compute_mfcc_feats, compute_fbank_feats, and the per-utterance
filters): the audio -> features loop with skip accounting, and the archive -> archive loop."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable

import numpy as np

from sidkd.cli import ArgumentParser, ProgramError
from sidkd.errors import DataError
from sidkd.io.ark import ArchiveWriter, iter_archive
from sidkd.io.audio import AudioOptions, AudioReader
from sidkd.io.datadir import write_table

log = logging.getLogger("sidkd.bin")


def wav_scp_path(rspec: str) -> str:
    kind, _, path = rspec.partition(":")
    if kind != "scp" or not path:
        raise ProgramError(f"expected the audio as scp:WAV_SCP, got {rspec!r}")
    return path


def compute_features_main(description: str, options_class, compute: Callable) -> int:
    parser = ArgumentParser(description=description)
    options_class.add_to_parser(parser)
    parser.add_argument("--segments", metavar="FILE", help="utterances are segments of the wav.scp recordings")
    parser.add_argument("--channel", type=int, default=-1, help="channel to use; -1: expect mono")
    parser.add_argument(
        "--max-fail-fraction", type=float, default=0.01,
        help="fail (exit 1, no output) when more than this fraction of the utterances is skipped",
    )
    parser.add_argument("--write-utt2num-frames", metavar="FILE", help="also write 'utt frames' lines to FILE")
    parser.add_argument("wav_rspecifier", help="scp:wav.scp")
    parser.add_argument("feats_wspecifier", help="e.g. ark,scp:feats.ark,feats.scp or ark:-")
    args = parser.parse_args()
    opts = options_class.from_namespace(args)
    audio = AudioOptions(sample_rate=int(opts.sample_frequency), channel=args.channel,
                         rate_from="--sample-frequency (the recipe's conf/mfcc.conf, or ./run.sh --sample-rate <Hz>)")
    reader = AudioReader(wav_scp_path(args.wav_rspecifier), args.segments, audio)
    num_in = num_skipped = total_frames = 0
    num_frames = []
    with ArchiveWriter(args.feats_wspecifier) as writer:
        for utt, samples, error in reader.iter_with_errors():
            num_in += 1
            if error is None:
                # Dither noise seeded by utterance: the same features whatever the job split.
                rng = np.random.default_rng([opts.dither_seed, zlib.crc32(utt.encode())])
                feats = compute(samples, opts, rng)
                if feats.shape[0] == 0:
                    error = DataError(f"utterance {utt!r}: {len(samples)} samples, shorter than one frame")
            if error is not None:
                num_skipped += 1
                log.warning("skipping utterance %s: %s", utt, error)
                continue
            writer[utt] = feats
            num_frames.append((utt, feats.shape[0]))
            total_frames += feats.shape[0]
        log.info(
            "Done: %d utterances in, %d written, %d skipped; %d frames", num_in, len(num_frames), num_skipped, total_frames
        )
        if num_in == 0 or num_skipped > args.max_fail_fraction * num_in:
            raise DataError(
                f"{num_skipped} of {num_in} utterances skipped, more than --max-fail-fraction={args.max_fail_fraction}"
            )
    if args.write_utt2num_frames:
        write_table(args.write_utt2num_frames, ((utt, str(n)) for utt, n in num_frames))
    return 0


def filter_archive_main(
    description: str, options_class, transform: Callable, what: str = "utterances"
) -> int:
    """RSPEC -> WSPEC, each matrix through ``transform(matrix, opts)``."""
    parser = ArgumentParser(description=description)
    options_class.add_to_parser(parser)
    parser.add_argument("feats_rspecifier")
    parser.add_argument("feats_wspecifier")
    args = parser.parse_args()
    opts = options_class.from_namespace(args)
    count = 0
    with ArchiveWriter(args.feats_wspecifier) as writer:
        for utt, feats in iter_archive(args.feats_rspecifier):
            writer[utt] = transform(np.asarray(feats), opts)
            count += 1
    log.info("Done: %d %s", count, what)
    return 0
