"""Speaker embeddings of audio files or of a wav.scp with a trained student, without the recipe
(installed as ``sidkd-embed``).

    sidkd-embed --model exp/student_kd a.wav b.flac              # Kaldi text vectors on stdout
    sidkd-embed --model exp/student_kd --wav-scp data/test/wav.scp --output ark,scp:emb.ark,emb.scp
    sidkd-embed --engine onnxruntime --model exp/student_kd a.wav    # the exported embedder.onnx

Keys are the wav.scp's, or each file's path as given (no whitespace). --output is a kaldiio
wspecifier: ``ark,t:-`` (the default) writes ``key  [ v1 v2 ... ]`` lines to stdout, ``ark,scp:X.ark,X.scp``
binary vectors with an index. The front end, chunking and network are those of
steps/extract_embeddings.sh. A recording that cannot be judged is skipped with a log line naming it
and why, and the exit status is then 1 (the others' vectors are written): unreadable or broken
(truncated) audio, another rate than the model's, several channels without --channel, or a refusal
of the speech gate (less than --min-speech seconds of voiced speech, or a constant signal; see
sidkd.feat.gate). Exit status 0 means every input has its vector.
"""

from __future__ import annotations

import logging
import os
import sys

from sidkd.bin._speech_gate import SpeechGate, add_gate_options
from sidkd.cli import ArgumentParser, ProgramError, run_main
from sidkd.io.audio import AudioReader
from sidkd.io.datadir import read_scp
from sidkd.nnet.engines import load_engine

log = logging.getLogger("sidkd-embed")


def main(argv=None) -> int:
    from sidkd.bin.extract_embeddings import add_crop_options, add_engine_options, write_embeddings

    parser = ArgumentParser(prog="sidkd-embed", description=__doc__.split("\n")[0])
    parser.add_argument("--model", dest="model_dir", required=True, help="student model dir")
    add_engine_options(parser, "--model-file")
    add_crop_options(parser)
    add_gate_options(parser)
    parser.add_argument("--wav-scp", default="", help="a wav.scp to embed instead of files")
    parser.add_argument("--output", default="ark,t:-", help="kaldiio wspecifier (default: text to stdout)")
    parser.add_argument("files", nargs="*", help="audio files")
    args = parser.parse_args(argv)
    if bool(args.files) == bool(args.wav_scp):
        raise ProgramError("give audio files or --wav-scp FILE (one of the two)")
    if args.wav_scp:
        if not os.path.isfile(args.wav_scp):
            raise ProgramError(f"{args.wav_scp}: no such file")
        read_scp(args.wav_scp)  # a malformed line is an error naming it before the model loads

        def reader_for(opts):
            return AudioReader(args.wav_scp, None, opts)
    else:
        bad = [f for f in args.files if not f or any(c.isspace() for c in f)]
        if bad:
            raise ProgramError(f"file name {bad[0]!r} has whitespace: it cannot be a key; use --wav-scp")

        def reader_for(opts):
            return AudioReader.from_files(args.files, opts)
    engine = load_engine(args.engine, args.model_dir, args.model_file)
    done, skipped = write_embeddings(engine, args.model_dir, reader_for, args.output, args,
                                     gate_for=lambda rate: SpeechGate(args, rate))
    sys.stdout.flush()
    if skipped:
        log.error("%d of %d recordings skipped (each named above): exit status 1", skipped, done + skipped)
    return 1 if skipped else 0


def cli() -> None:
    run_main(main)


if __name__ == "__main__":
    cli()
