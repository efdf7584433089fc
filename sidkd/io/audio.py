"""Audio for every form a wav.scp line takes, on Kaldi's sample scale.

A wav.scp value is either a path to a file soundfile can read (wav, flac, ogg/vorbis, ogg/opus...)
or a shell command ending in ``|`` that writes such a file to stdout. With a ``segments`` file,
utterances are (recording, start, end) cuts of the wav.scp recordings.

Samples come back as float32 on the 16-bit integer scale, rounded, as Kaldi reads a 16-bit wav: a
lossy file (Opus) is decoded to float, multiplied by 32768 and rounded, which is how the reference
system's audio was made. A file whose sample rate differs from the expected one is an error unless
resampling is asked for. Multi-channel audio follows Kaldi's rule: channel -1 (the default) expects
mono and takes channel 0 with a warning otherwise (an error with ``require_mono``, for tools whose
user should choose); ``channel=N`` picks channel N.

Broken files are errors, never short signals: a WAV whose header promises more sample frames than
the file holds (truncated; libsndfile would quietly read what is there), and any decode that yields
fewer frames than the file's header declares.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from math import gcd

import numpy as np
import soundfile as sf

from sidkd.errors import DataError
from sidkd.io.datadir import DataDir, Segment, read_scp, read_segments

__all__ = ["AudioOptions", "read_audio", "AudioReader", "MAX_SEGMENT_OVERSHOOT"]

log = logging.getLogger(__name__)

# A segment may end this far past the recording's end and is then cut at the end (Kaldi's
# extract-segments --max-overshoot default); further than that is an error.
MAX_SEGMENT_OVERSHOOT = 0.5


@dataclass
class AudioOptions:
    sample_rate: int = 16000
    resample: bool = False  # resample other rates instead of failing
    channel: int = -1  # -1: expect mono (channel 0 with a warning otherwise)
    require_mono: bool = False  # with channel -1: several channels are an error, not a warning
    # what sets sample_rate, for the message when a file has another rate
    rate_from: str = ("the recipe's rate (./run.sh --sample-rate <Hz>; the features' --sample-frequency, "
                      "a network's features.sample_rate)")


# A RIFF/WAVE data chunk size that streaming writers put in before they know the length.
_UNKNOWN_WAV_SIZES = (0, 0xFFFFFFFF)


def _wav_truncation(head: bytes, total: int) -> str:
    """Why a RIFF/WAVE file of ``total`` bytes starting with ``head`` is truncated, or "" if it is
    whole (or not a plain WAV). Walks the chunk headers up to the data chunk."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return ""
    pos, block_align = 12, 0
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
        if chunk == b"fmt " and pos + 22 <= len(head):
            block_align = struct.unpack("<H", head[pos + 20:pos + 22])[0]
        if chunk == b"data":
            if size in _UNKNOWN_WAV_SIZES:
                return ""
            held = total - (pos + 8)
            if held >= size:
                return ""
            if block_align:
                return (f"truncated: the header promises {size // block_align} sample frames, the file holds "
                        f"{max(held, 0) // block_align}")
            return f"truncated: the header promises {size} bytes of samples, the file holds {max(held, 0)}"
        pos += 8 + size + (size & 1)
    return "truncated: the file ends before its data chunk" if pos >= total else ""


def _check_whole(data, what: str) -> None:
    """DataError if ``data`` (a path or a BytesIO) is a WAV cut short."""
    if isinstance(data, io.BytesIO):
        buffer = data.getbuffer()
        why = _wav_truncation(bytes(buffer[:1 << 16]), len(buffer))
    else:
        with open(data, "rb") as handle:
            head = handle.read(1 << 16)
        why = _wav_truncation(head, os.path.getsize(data))
    if why:
        raise DataError(f"{what}: {why}; the file is broken (an interrupted copy or download?): replace it")


def _decode(data, what: str) -> tuple[np.ndarray, int]:
    try:
        with sf.SoundFile(data) as handle:
            declared = handle.frames
            samples = handle.read(dtype="float64", always_2d=True)
            rate = handle.samplerate
    except Exception as exc:  # soundfile raises several types for unreadable data
        raise DataError(f"{what}: cannot decode audio ({exc})") from exc
    if samples.shape[0] < declared:
        raise DataError(f"{what}: decoded {samples.shape[0]} sample frames, the header declares {declared}: "
                        "the file is broken: replace it")
    _check_whole(data, what)
    return samples, rate


def read_audio(value: str, opts: AudioOptions | None = None, key: str = "") -> np.ndarray:
    """Read one wav.scp value (path or ``cmd |``) into float32 samples at ``opts.sample_rate``."""
    opts = opts or AudioOptions()
    what = f"utterance {key!r} ({value})" if key else value
    value = value.strip()
    if value.endswith("|"):
        command = value[:-1].strip()
        proc = subprocess.run(command, shell=True, capture_output=True)
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise DataError(f"{what}: command exited with status {proc.returncode}: {' / '.join(tail)}")
        if not proc.stdout:
            raise DataError(f"{what}: command wrote no audio")
        samples, rate = _decode(io.BytesIO(proc.stdout), what)
    else:
        try:
            samples, rate = _decode(value, what)
        except DataError:
            if not os.path.exists(value):
                raise DataError(f"{what}: no such file") from None
            if os.path.getsize(value) == 0:
                raise DataError(f"{what}: file is empty (0 bytes)") from None
            raise
    if samples.shape[0] == 0:
        raise DataError(f"{what}: no samples")
    num_channels = samples.shape[1]
    if opts.channel < 0:
        if num_channels != 1 and opts.require_mono:
            raise DataError(f"{what}: {num_channels} channels, expected mono: choose one with --channel N "
                            f"(0 to {num_channels - 1})")
        if num_channels != 1:
            log.warning("%s has %d channels; using channel 0 (set --channel to choose)", what, num_channels)
        channel = 0
    else:
        channel = opts.channel
        if channel >= num_channels:
            raise DataError(f"{what}: channel {channel} requested but the audio has {num_channels}")
    signal = samples[:, channel]
    if rate != opts.sample_rate:
        if not opts.resample:
            raise DataError(f"{what}: sample rate {rate} Hz, expected {opts.sample_rate} Hz, set by {opts.rate_from}: "
                            f"resample the audio to {opts.sample_rate} Hz, or work at {rate} Hz")
        from scipy.signal import resample_poly

        g = gcd(rate, opts.sample_rate)
        signal = resample_poly(signal, opts.sample_rate // g, rate // g)
    return np.clip(np.rint(signal * 32768.0), -32768, 32767).astype(np.float32)


def _cut(signal: np.ndarray, seg: Segment, rate: int, key: str) -> np.ndarray:
    duration = len(signal) / rate
    end = duration if seg.end == -1 else seg.end
    if seg.start >= duration:
        raise DataError(f"segment {key!r}: starts at {seg.start:.3f} s, recording {seg.recording!r} lasts {duration:.3f} s")
    if end > duration + MAX_SEGMENT_OVERSHOOT:
        raise DataError(
            f"segment {key!r}: ends at {end:.3f} s, beyond the end of recording {seg.recording!r}"
            f" ({duration:.3f} s)"
        )
    first = int(round(seg.start * rate))
    last = min(int(round(end * rate)), len(signal))
    return signal[first:last]


class AudioReader:
    """Iterate (utt, samples) over a wav.scp (+ segments), or read one key.

    Recordings are read once for consecutive segments of the same recording.
    """

    def __init__(self, wav_scp: str, segments: str | None = None, opts: AudioOptions | None = None):
        self.wav_scp_path = wav_scp
        self.segments_path = segments
        self.opts = opts or AudioOptions()
        self.wav = read_scp(wav_scp)
        self.segments = read_segments(segments) if segments else None

    @classmethod
    def from_files(cls, files: list[str], opts: AudioOptions | None = None) -> AudioReader:
        """Files named by the user (not a wav.scp), each under its own path as the key."""
        reader = cls.__new__(cls)
        reader.wav_scp_path, reader.segments_path, reader.segments = "the files given", None, None
        reader.opts = opts or AudioOptions()
        reader.wav = {path: path for path in files}
        return reader

    @classmethod
    def from_data_dir(cls, data: DataDir | str, opts: AudioOptions | None = None) -> AudioReader:
        data = DataDir(data) if isinstance(data, str) else data
        segments = data.file("segments") if data.has("segments") else None
        return cls(data.file("wav.scp"), segments, opts)

    def keys(self) -> list[str]:
        return list(self.segments) if self.segments is not None else list(self.wav)

    def _recording(self, rec: str, utt: str) -> str:
        if rec not in self.wav:
            raise DataError(f"utterance {utt!r}: recording {rec!r} is not in {self.wav_scp_path}")
        return self.wav[rec]

    def read(self, utt: str) -> np.ndarray:
        if self.segments is None:
            if utt not in self.wav:
                raise DataError(f"utterance {utt!r} is not in {self.wav_scp_path}")
            return read_audio(self.wav[utt], self.opts, utt)
        seg = self.segments.get(utt)
        if seg is None:
            raise DataError(f"utterance {utt!r} is not in {self.segments_path}")
        signal = read_audio(self._recording(seg.recording, utt), self.opts, seg.recording)
        return _cut(signal, seg, self.opts.sample_rate, utt)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        """All utterances; raises DataError on the first bad one (see iter_with_errors)."""
        for utt, signal, error in self.iter_with_errors():
            if error is not None:
                raise error
            yield utt, signal

    def iter_with_errors(self) -> Iterator[tuple[str, np.ndarray | None, DataError | None]]:
        """(utt, samples, None) or (utt, None, error): lets a program skip and count bad input."""
        if self.segments is None:
            for utt in self.wav:
                try:
                    yield utt, read_audio(self.wav[utt], self.opts, utt), None
                except DataError as exc:
                    yield utt, None, exc
            return
        cached_rec, cached = None, None
        for utt, seg in self.segments.items():
            try:
                if seg.recording != cached_rec:
                    cached_rec, cached = seg.recording, None
                    cached = read_audio(self._recording(seg.recording, utt), self.opts, seg.recording)
                if cached is None:
                    raise DataError(f"utterance {utt!r}: recording {seg.recording!r} could not be read")
                yield utt, _cut(cached, seg, self.opts.sample_rate, utt), None
            except DataError as exc:
                yield utt, None, exc
