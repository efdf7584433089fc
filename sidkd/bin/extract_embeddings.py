"""Student embeddings ("x-vectors") of every utterance of a data dir.

    python -m sidkd.bin.extract_embeddings [--max-duration 2] MODEL_DIR DATA ark,scp:x.ark,x.scp

MODEL_DIR holds model.json and final.pt from train_student. Whole utterances, long ones in chunks
whose embeddings are averaged; ``--max-duration`` crops first (see sidkd/nnet/embed.py).
Unreadable utterances are skipped, named in the log and counted.
"""

from __future__ import annotations

import logging
import os

import torch

from sidkd.cli import ArgumentParser, ProgramError, run_main
from sidkd.errors import DataError
from sidkd.io.ark import ArchiveWriter
from sidkd.io.audio import AudioOptions, AudioReader
from sidkd.nnet.embed import embed_utterance
from sidkd.nnet.trainer import frontend_from_config, load_embedder

log = logging.getLogger("extract_embeddings")


def main(argv=None) -> int:
    parser = ArgumentParser(prog="extract_embeddings", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="final.pt", help="model file inside MODEL_DIR")
    parser.add_argument("--max-duration", type=float, default=0.0, help="crop to this many seconds (0: whole)")
    parser.add_argument("--crop-position", default="center", choices=["start", "center"], help="where to crop")
    parser.add_argument("--chunk-seconds", type=float, default=10.0, help="longest segment embedded at once")
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--max-skipped-fraction", type=float, default=0.01,
                        help="fail when more than this fraction of utterances cannot be read")
    parser.add_argument("model_dir")
    parser.add_argument("data")
    parser.add_argument("wspecifier")
    args = parser.parse_args(argv)
    for name in ("model.json", args.model):
        if not os.path.isfile(os.path.join(args.model_dir, name)):
            raise ProgramError(f"{args.model_dir}/{name}: no such file")
    if not os.path.isfile(os.path.join(args.data, "wav.scp")):
        raise ProgramError(f"{args.data}/wav.scp: no such file")
    embedder, desc = load_embedder(args.model_dir, args.model)
    device = torch.device(args.device)
    embedder.to(device)
    frontend = frontend_from_config(desc["features"])
    reader = AudioReader.from_data_dir(args.data, AudioOptions(sample_rate=frontend.sample_rate))
    done = skipped = 0
    with ArchiveWriter(args.wspecifier) as writer:
        for utt, samples, error in reader.iter_with_errors():
            if error is not None or len(samples) == 0:
                log.warning("skipping %s: %s", utt, error or "empty audio")
                skipped += 1
                continue
            writer[utt] = embed_utterance(embedder, frontend, samples, args.chunk_seconds, args.max_duration,
                                          args.crop_position, device=device)
            done += 1
        total = done + skipped
        log.info("%d utterances in, %d embedded + %d skipped (max-duration %g s)", total, done, skipped,
                 args.max_duration)
        if total == 0 or skipped > args.max_skipped_fraction * total:
            raise DataError(f"{args.data}: {skipped} of {total} utterances could not be read")
    return 0


if __name__ == "__main__":
    run_main(main)
