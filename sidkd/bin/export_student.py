"""Export a trained student with its front end (waveform -> fbank + CMN -> embedding) as TorchScript.

    python -m sidkd.bin.export_student --model-dir exp/student_kd --out exp/student_kd/student.ts

The file loads without sidkd: ``m = torch.jit.load("student.ts"); e = m(samples)`` with samples a
1-D float32 tensor on the 16-bit integer scale (as Kaldi reads wavs: soundfile's float samples
times 32768) at the model's sample rate; ``e`` is the embedding steps/extract_embeddings.sh gives
with the model's features at dither 0 (see sidkd/nnet/export.py). The model's model.json is stored
inside as the extra file ``model.json``.
"""

from __future__ import annotations

import json
import logging
import os

import torch

from sidkd.cli import ArgumentParser, ProgramError, run_main

log = logging.getLogger("export_student")


def main(argv=None) -> int:
    from sidkd.nnet.export import export_student
    from sidkd.nnet.trainer import load_embedder

    parser = ArgumentParser(prog="export_student", description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", required=True, help="student model dir (model.json, final.pt)")
    parser.add_argument("--model", default="final.pt", help="network file inside the model dir")
    parser.add_argument("--out", required=True, help="output TorchScript file")
    parser.add_argument("--chunk-seconds", type=float, default=10.0,
                        help="longer inputs are embedded in equal segments and averaged (as extract_embeddings)")
    args = parser.parse_args(argv)
    for name in ("model.json", args.model):
        if not os.path.isfile(os.path.join(args.model_dir, name)):
            raise ProgramError(f"{args.model_dir}/{name}: no such file")
    embedder, desc = load_embedder(args.model_dir, args.model)
    features = desc["features"]
    if features.get("kind", "fbank") != "fbank":
        raise ProgramError(f"{args.model_dir}: export supports fbank front ends, not {features.get('kind')!r}")
    dither = float((features.get("fbank") or {}).get("dither", 1.0))
    if dither != 0:
        log.warning("the exported front end has no dither (the model's features use dither %g): its embeddings "
                    "equal extraction with dither 0", dither)
    scripted = export_student(embedder, features, args.chunk_seconds)
    tmp = f"{args.out}.tmp.{os.getpid()}"
    torch.jit.save(scripted, tmp, _extra_files={"model.json": json.dumps(desc, indent=1)})
    os.replace(tmp, args.out)
    log.info("wrote %s (%s, %d-dim embeddings)", args.out, features.get("kind", "fbank"), embedder.embedding_dim)
    return 0


if __name__ == "__main__":
    run_main(main)
