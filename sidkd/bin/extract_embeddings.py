"""Student embeddings ("x-vectors") of every utterance of a data dir.

    python -m sidkd.bin.extract_embeddings [--max-duration 2] MODEL_DIR DATA ark,scp:x.ark,x.scp

MODEL_DIR holds model.json and final.pt from train_student (or, with --engine onnxruntime, the
embedder.onnx export_student wrote). Whole utterances, long ones in chunks whose embeddings are
averaged; ``--max-duration`` crops first (see sidkd/nnet/embed.py). Unreadable utterances are
skipped, named in the log and counted.
"""

from __future__ import annotations

import logging
import os

from sidkd.cli import ArgumentParser, ProgramError, run_main
from sidkd.errors import DataError
from sidkd.io.ark import ArchiveWriter
from sidkd.io.audio import AudioReader
from sidkd.nnet.embed import embed_all, model_audio_options
from sidkd.nnet.engines import ENGINES, load_engine
from sidkd.nnet.features import frontend_from_config

log = logging.getLogger("extract_embeddings")


def add_engine_options(parser: ArgumentParser, file_option: str = "--model") -> None:
    parser.add_argument("--engine", default="torch", choices=list(ENGINES),
                        help=f"torch: the network in {file_option} (default final.pt); onnxruntime: the file "
                             "export_student --format onnx wrote (default embedder.onnx)")
    parser.add_argument(file_option, default=None, help="network file inside the model dir (default: the engine's)")


def add_crop_options(parser: ArgumentParser) -> None:
    parser.add_argument("--max-duration", type=float, default=0.0, help="crop to this many seconds (0: whole)")
    parser.add_argument("--crop-position", default="center", choices=["start", "center"], help="where to crop")
    parser.add_argument("--chunk-seconds", type=float, default=10.0, help="longest segment embedded at once")


def write_embeddings(engine, model_dir: str, reader_for, wspecifier: str, args, device="cpu",
                     gate_for=None) -> tuple[int, int]:
    """Embed what ``reader_for(audio_options)`` reads into ``wspecifier``; logs each skip; (done, skipped).
    ``gate_for(sample_rate)``: a speech gate (sidkd.bin._speech_gate) whose refusals are skips."""
    frontend = frontend_from_config(engine.desc["features"])
    opts = model_audio_options(model_dir, frontend)
    gate = gate_for(frontend.sample_rate) if gate_for else None
    reader = reader_for(gate.audio_options(opts) if gate else opts)
    utterances = gate.filter(reader.iter_with_errors()) if gate else reader.iter_with_errors()
    with ArchiveWriter(wspecifier) as writer:
        done, skipped = embed_all(engine, frontend, utterances, writer.__setitem__, args.chunk_seconds,
                                  args.max_duration, args.crop_position, device)
    for utt, why in skipped:
        log.warning("skipping %s: %s", utt, why)
    log.info("%d utterances in, %d embedded + %d skipped (max-duration %g s)", done + len(skipped), done,
             len(skipped), args.max_duration)
    return done, len(skipped)


def main(argv=None) -> int:
    parser = ArgumentParser(prog="extract_embeddings", description=__doc__.split("\n")[0])
    add_engine_options(parser)
    add_crop_options(parser)
    parser.add_argument("--device", default="cpu", help="cpu | cuda (engine torch)")
    parser.add_argument("--max-skipped-fraction", type=float, default=0.01,
                        help="fail when more than this fraction of utterances cannot be read")
    parser.add_argument("model_dir")
    parser.add_argument("data")
    parser.add_argument("wspecifier")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.data, "wav.scp")):
        raise ProgramError(f"{args.data}/wav.scp: no such file")
    engine = load_engine(args.engine, args.model_dir, args.model).to(args.device)
    done, skipped = write_embeddings(engine, args.model_dir, lambda opts: AudioReader.from_data_dir(args.data, opts),
                                     args.wspecifier, args, args.device)
    total = done + skipped
    if total == 0 or skipped > args.max_skipped_fraction * total:
        raise DataError(f"{args.data}: {skipped} of {total} utterances could not be read")
    return 0


if __name__ == "__main__":
    run_main(main)
