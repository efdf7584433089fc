"""Export a trained student for use outside the recipe: TorchScript with its front end, or ONNX.

    python -m sidkd.bin.export_student --model-dir exp/student_kd --out exp/student_kd/student.ts
    python -m sidkd.bin.export_student --format onnx --model-dir exp/student_kd --out exp/student_kd/embedder.onnx

torchscript: the file loads without sidkd: ``m = torch.jit.load("student.ts"); e = m(samples)`` with
samples a 1-D float32 tensor on the 16-bit integer scale (as Kaldi reads wavs: soundfile's float
samples times 32768) at the model's sample rate; ``e`` is the embedding steps/extract_embeddings.sh
gives with the model's features at dither 0 (see sidkd/nnet/export.py). The model's model.json is
stored inside as the extra file ``model.json``.

onnx: the network alone, opset 17: input ``feats`` (batch, frames, bins) float32, the front end's
features after mean normalisation, batch and frames dynamic; output ``embedding`` (batch, dim).
Beside it, OUT.json holds the front end (model.json's ``features``: fbank options, sample rate, CMN,
chunk length) and the sha256 of the network it came from. ``verify --engine onnxruntime`` and
``sidkd-embed --engine onnxruntime`` run it with sidkd's front end; others compute those features
themselves. Needs sidkd's onnx extra (pip install onnx onnxruntime).
"""

from __future__ import annotations

import json
import logging
import os

import torch

from sidkd.cli import ArgumentParser, ProgramError, run_main

log = logging.getLogger("export_student")

FORMATS = ("torchscript", "onnx")


def main(argv=None) -> int:
    from sidkd.backend.verify import file_digest
    from sidkd.io.datadir import atomic_write_text
    from sidkd.nnet.engines import ONNX_INPUT, ONNX_OUTPUT
    from sidkd.nnet.export import ONNX_OPSET, export_onnx, export_student
    from sidkd.nnet.embed import load_embedder
    from sidkd.nnet.features import frontend_from_config

    parser = ArgumentParser(prog="export_student", description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", required=True, help="student model dir (model.json, final.pt)")
    parser.add_argument("--model", default="final.pt", help="network file inside the model dir")
    parser.add_argument("--format", default="torchscript", choices=FORMATS, help="torchscript | onnx")
    parser.add_argument("--out", required=True, help="output file")
    parser.add_argument("--chunk-seconds", type=float, default=10.0,
                        help="torchscript: longer inputs are embedded in equal segments and averaged "
                             "(as extract_embeddings)")
    args = parser.parse_args(argv)
    for name in ("model.json", args.model):
        if not os.path.isfile(os.path.join(args.model_dir, name)):
            raise ProgramError(f"{args.model_dir}/{name}: no such file")
    embedder, desc = load_embedder(args.model_dir, args.model)
    features = desc["features"]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = f"{args.out}.tmp.{os.getpid()}"
    if args.format == "onnx":
        try:
            import onnx  # noqa: F401 - torch's exporter needs it
        except ImportError:
            raise ProgramError("--format onnx needs the onnx package: pip install onnx (sidkd's onnx extra)") from None
        export_onnx(embedder, frontend_from_config(features).num_bins, tmp, ONNX_INPUT, ONNX_OUTPUT)
        info = {"model": desc, "network": os.path.join(args.model_dir, args.model),
                "network_digest": file_digest(os.path.join(args.model_dir, args.model)), "opset": ONNX_OPSET,
                "input": f"{ONNX_INPUT}: (batch, frames, bins) float32, model.features after mean normalisation",
                "output": f"{ONNX_OUTPUT}: (batch, dim) float32"}
        os.replace(tmp, args.out)
        atomic_write_text(args.out + ".json", json.dumps(info, indent=1) + "\n")
        log.info("wrote %s (opset %d, %d-dim embeddings) and its front end %s.json", args.out, ONNX_OPSET,
                 embedder.embedding_dim, args.out)
        return 0
    if features.get("kind", "fbank") != "fbank":
        raise ProgramError(f"{args.model_dir}: TorchScript export supports fbank front ends, not {features.get('kind')!r}")
    dither = float((features.get("fbank") or {}).get("dither", 1.0))
    if dither != 0:
        log.warning("the exported front end has no dither (the model's features use dither %g): its embeddings "
                    "equal extraction with dither 0", dither)
    scripted = export_student(embedder, features, args.chunk_seconds)
    torch.jit.save(scripted, tmp, _extra_files={"model.json": json.dumps(desc, indent=1)})
    os.replace(tmp, args.out)
    log.info("wrote %s (%s, %d-dim embeddings)", args.out, features.get("kind", "fbank"), embedder.embedding_dim)
    return 0


if __name__ == "__main__":
    run_main(main)
