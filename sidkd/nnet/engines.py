"""Where a trained student's network runs: ``torch`` (the model dir's final.pt, as the recipe) or
``onnxruntime`` (the file ``python -m sidkd.bin.export_student --format onnx`` writes, with its
front-end description beside it as FILE.json).

Either engine maps the front end's features (n, frames, bins), mean-normalised as in training, to
(n, dim) embeddings; the front end, cropping and chunking stay those of sidkd.nnet.embed, so the two
engines differ only in the arithmetic of the network. ``network_digest`` names the trained network
(the sha256 of its final.pt; an ONNX file carries the digest of the network it was exported from),
so speakers enrolled and thresholds calibrated with one engine hold for the other. An ONNX file
is run only while it is the export of the model dir's current network: when the network file it was
exported from (final.pt) is there and its digest differs (retrained since), it is refused with the
command that exports it again. An ONNX file copied without its source (a deployment) runs as it is.
"""

from __future__ import annotations

import json
import os

import torch

from sidkd.backend.verify import file_digest
from sidkd.errors import DataError
from sidkd.registry import Registry

__all__ = ["ENGINES", "Engine", "load_engine", "engine_digest", "ONNX_INPUT", "ONNX_OUTPUT"]

ENGINES = Registry("embedding engine")
ONNX_INPUT, ONNX_OUTPUT = "feats", "embedding"


class Engine:
    """A loaded network: ``desc`` (model.json: features, model), ``network_digest``, and a call
    features (n, frames, bins) float32 tensor -> (n, dim) tensor."""

    name = ""
    default_file = ""

    def __init__(self, model_dir: str, model_file: str | None = None):
        self.path = self.network_file(model_dir, model_file)
        self.desc: dict = {}
        self.network_digest = ""

    @classmethod
    def network_file(cls, model_dir: str, model_file: str | None = None) -> str:
        path = os.path.join(model_dir, model_file or cls.default_file)
        if not os.path.isfile(path):
            raise DataError(f"{path}: no such file" + cls.missing_hint(path))
        return path

    @classmethod
    def digest_of(cls, path: str, model_dir: str) -> str:
        """The network's digest without loading it (calibration needs no network)."""
        raise NotImplementedError

    @staticmethod
    def missing_hint(path: str) -> str:
        return ""

    def to(self, device: str) -> Engine:
        if str(device) != "cpu":
            raise DataError(f"engine {self.name} runs on the CPU only, not on {device}")
        return self

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@ENGINES.register
class TorchEngine(Engine):
    name = "torch"
    default_file = "final.pt"

    def __init__(self, model_dir: str, model_file: str | None = None):
        super().__init__(model_dir, model_file)
        if not os.path.isfile(os.path.join(model_dir, "model.json")):
            raise DataError(f"{model_dir}/model.json: no such file")
        from sidkd.nnet.embed import load_embedder

        self.embedder, self.desc = load_embedder(model_dir, os.path.basename(self.path))
        self.network_digest = self.digest_of(self.path, model_dir)

    @classmethod
    def digest_of(cls, path: str, model_dir: str) -> str:
        return file_digest(path)

    def to(self, device: str) -> Engine:
        self.embedder.to(device)
        return self

    @torch.no_grad()
    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        return self.embedder(feats)


@ENGINES.register
class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"
    default_file = "embedder.onnx"

    @staticmethod
    def missing_hint(path: str) -> str:
        return (f" (export it: python -m sidkd.bin.export_student --format onnx --model-dir "
                f"{os.path.dirname(path) or '.'} --out {path})")

    @staticmethod
    def _sidecar(path: str) -> dict:
        sidecar = path + ".json"
        try:
            with open(sidecar, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError) as exc:
            raise DataError(f"{sidecar}: cannot read the exported model's description ({exc}); export again") from None

    @classmethod
    def digest_of(cls, path: str, model_dir: str) -> str:
        return cls._current(path, model_dir, cls._sidecar(path))

    @staticmethod
    def _current(path: str, model_dir: str, info: dict) -> str:
        """The sidecar's network digest, checked against the model dir's network file of that name."""
        digest = info["network_digest"]
        source_name = os.path.basename(info.get("network") or TorchEngine.default_file)
        source = os.path.join(model_dir, source_name)
        if os.path.isfile(source) and file_digest(source) != digest:
            raise DataError(f"{path} was exported from another network than the current {source} (retrained "
                            f"since): re-export: python -m sidkd.bin.export_student --format onnx --model-dir "
                            f"{model_dir} --model {source_name} --out {path}")
        return digest

    def __init__(self, model_dir: str, model_file: str | None = None):
        super().__init__(model_dir, model_file)
        try:
            import onnxruntime
        except ImportError:
            raise DataError("--engine onnxruntime needs onnxruntime: pip install onnxruntime (sidkd's onnx extra)") from None
        info = self._sidecar(self.path)
        self.desc, self.network_digest = info["model"], self._current(self.path, model_dir, info)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # as many threads as torch would take
        self.session = onnxruntime.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        (out,) = self.session.run([ONNX_OUTPUT], {ONNX_INPUT: feats.detach().cpu().numpy().astype("float32")})
        return torch.from_numpy(out)


def _engine_class(name: str) -> type[Engine]:
    if name not in ENGINES:
        raise DataError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
    return ENGINES[name]


def load_engine(name: str, model_dir: str, model_file: str | None = None) -> Engine:
    return _engine_class(name)(model_dir, model_file)


def engine_digest(name: str, model_dir: str, model_file: str | None = None) -> str:
    """The digest ``load_engine(...).network_digest`` would give, read without loading the network."""
    engine = _engine_class(name)
    return engine.digest_of(engine.network_file(model_dir, model_file), model_dir)
