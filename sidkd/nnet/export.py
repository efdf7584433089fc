"""The student with its front end as one TorchScript module: waveform in, embedding out; or the
network alone as ONNX (export_onnx: features in, embedding out; sidkd.nnet.engines runs it).

``TorchFbank`` is sidkd.feat.compute_fbank's pipeline written with torch operations (so that it can
be scripted): Kaldi framing (snip-edges, or frames centred on multiples of the shift with the
signal mirrored at the edges), DC removal, raw log energy, pre-emphasis, window, zero-padded rFFT,
power (or magnitude) spectrum, the same mel filters (sidkd.feat.spectral.mel_filterbank), log
floored at float epsilon. All in float32, as the numpy version. Dither is not applied: numpy's
seeded noise cannot be reproduced in TorchScript, so an exported model equals extraction with
``dither: 0`` (with Kaldi's dither 1.0 on the 16-bit scale the difference is that noise's effect).

``ExportedStudent`` does what sidkd.nnet.embed.embed_utterance does for a whole utterance: repeat a
signal shorter than ``min_seconds``, cut one longer than ``chunk_seconds`` into equal segments,
features and mean normalisation per segment, the network, the mean of the segment embeddings.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from sidkd.feat.spectral import FLOAT_EPSILON, FbankOptions, _window, frame_geometry, mel_filterbank

__all__ = ["TorchFbank", "ExportedStudent", "export_student", "export_onnx", "ONNX_OPSET"]

ONNX_OPSET = 17


class TorchFbank(nn.Module):
    """samples (N,) float32 on the 16-bit scale -> (frames, bins [+1 energy first]) float32."""

    def __init__(self, opts: FbankOptions):
        super().__init__()
        shift, length, fft_size = frame_geometry(opts)
        self.shift, self.length, self.fft_size = shift, length, fft_size
        self.snip_edges = bool(opts.snip_edges)
        self.remove_dc_offset = bool(opts.remove_dc_offset)
        self.preemph = float(opts.preemphasis_coefficient)
        self.use_energy, self.raw_energy = bool(opts.use_energy), bool(opts.raw_energy)
        self.log_energy_floor = math.log(opts.energy_floor) if opts.energy_floor > 0 else -math.inf
        self.epsilon = FLOAT_EPSILON
        self.use_power, self.use_log_fbank = bool(opts.use_power), bool(opts.use_log_fbank)
        self.num_outputs = int(opts.num_mel_bins) + int(self.use_energy)
        filters = mel_filterbank(opts.num_mel_bins, fft_size, float(opts.sample_frequency), float(opts.low_freq),
                                 float(opts.high_freq)).T.astype(np.float32)
        window = _window(opts.window_type, length, opts.blackman_coeff).astype(np.float32)
        self.register_buffer("filters", torch.from_numpy(np.ascontiguousarray(filters)))
        self.register_buffer("window", torch.from_numpy(window))

    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if self.snip_edges:
            count = 0 if n < self.length else 1 + (n - self.length) // self.shift
            first = 0
        else:
            count = (n + self.shift // 2) // self.shift
            first = self.shift // 2 - self.length // 2
        starts = first + self.shift * torch.arange(count, device=x.device)
        index = starts[:, None] + torch.arange(self.length, device=x.device)[None, :]
        # outside the signal it is mirrored (s < 0 -> -s-1, s >= n -> 2n-1-s), with period 2n
        index = torch.remainder(index, 2 * n)
        index = torch.where(index >= n, 2 * n - 1 - index, index)
        return x[index]

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        frames = self._frames(samples.to(torch.float32))
        if frames.shape[0] == 0:  # shorter than one frame (snip-edges)
            return torch.zeros(0, self.num_outputs, device=samples.device)
        if self.remove_dc_offset:
            frames = frames - frames.mean(dim=1, keepdim=True)
        energy = torch.zeros(0)
        if self.use_energy and self.raw_energy:
            energy = (frames.double() * frames.double()).sum(dim=1)
        if self.preemph != 0.0:
            frames = torch.cat([frames[:, :1] * (1.0 - self.preemph), frames[:, 1:] - self.preemph * frames[:, :-1]],
                               dim=1)
        frames = frames * self.window
        if self.use_energy and not self.raw_energy:
            energy = (frames.double() * frames.double()).sum(dim=1)
        spectrum = torch.fft.rfft(frames, n=self.fft_size, dim=1)[:, : self.fft_size // 2]
        power = spectrum.real * spectrum.real + spectrum.imag * spectrum.imag
        if not self.use_power:
            power = torch.sqrt(power)
        mel = power @ self.filters
        if self.use_log_fbank:
            mel = torch.log(torch.clamp(mel, min=self.epsilon))
        if self.use_energy:
            log_energy = torch.log(torch.clamp(energy, min=self.epsilon))
            log_energy = torch.clamp(log_energy, min=self.log_energy_floor)
            mel = torch.cat([log_energy.to(torch.float32)[:, None], mel], dim=1)
        return mel


class ExportedStudent(nn.Module):
    """waveform (N,) float32, 16-bit scale, at ``sample_rate`` -> embedding (E,)."""

    def __init__(self, fbank: TorchFbank, embedder: nn.Module, cmn: bool, sample_rate: int,
                 chunk_seconds: float = 10.0, min_seconds: float = 0.5):
        super().__init__()
        self.fbank, self.embedder, self.cmn = fbank, embedder, cmn
        self.sample_rate = sample_rate
        self.chunk_samples = int(round(chunk_seconds * sample_rate))
        self.min_samples = int(round(min_seconds * sample_rate))

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        x = samples.to(torch.float32)
        if x.shape[0] < self.min_samples:
            repeats = (self.min_samples + x.shape[0] - 1) // x.shape[0]
            x = x.repeat(repeats)[: self.min_samples]
        count = max(1, (x.shape[0] + self.chunk_samples - 1) // self.chunk_samples)
        length = x.shape[0] // count
        segments = x[: count * length].reshape(count, length)
        feats = []
        for i in range(count):
            f = self.fbank(segments[i])
            if self.cmn:
                f = f - f.mean(dim=0, keepdim=True)
            feats.append(f)
        return self.embedder(torch.stack(feats)).mean(dim=0)


def export_student(embedder: nn.Module, features: dict, chunk_seconds: float = 10.0) -> torch.jit.ScriptModule:
    """Script the network (eval mode) with the front end described by a model.json ``features``."""
    kind = features.get("kind", "fbank")
    if kind != "fbank":
        raise ValueError(f"export supports fbank front ends, not {kind!r}")
    opts = FbankOptions(**dict(features.get("fbank") or {}))
    opts.check()
    module = ExportedStudent(TorchFbank(opts), embedder.eval(), bool(features.get("cmn", True)),
                             int(features.get("sample_rate", 16000)), chunk_seconds)
    return torch.jit.script(module.eval())


def export_onnx(embedder: nn.Module, num_bins: int, path: str, input_name: str, output_name: str) -> None:
    """The network alone (features (batch, frames, bins) -> (batch, dim)) as ONNX, batch and frames
    dynamic. torch's TorchScript-based exporter (dynamo=False): it needs only the onnx package, where
    the dynamo one also needs onnxscript, and takes a quarter of the time on this network."""
    import warnings

    example = torch.zeros(2, 200, num_bins)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the exporter's notice that dynamo is the default
        torch.onnx.export(embedder.eval(), (example,), path, input_names=[input_name], output_names=[output_name],
                          dynamic_axes={input_name: {0: "batch", 1: "frames"}, output_name: {0: "batch"}},
                          opset_version=ONNX_OPSET, dynamo=False)
