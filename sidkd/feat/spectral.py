"""MFCC and log-mel filterbank features computed as Kaldi's compute-mfcc-feats and
compute-fbank-feats compute them, vectorised over frames.

Per frame, in Kaldi's order (Povey et al., "The Kaldi Speech Recognition Toolkit", 2011; the
processing is Kaldi's documented feature pipeline):
  cut a window (snip-edges false: frames centred on multiples of the shift, edges reflected)
  -> dither (Gaussian, std = dither) -> remove the DC offset -> raw log energy
  -> pre-emphasis -> window function -> zero-pad to the FFT size -> power spectrum
  -> triangular mel filters (mel = 1127 ln(1 + f/700)) -> log (floored at float epsilon)
  -> fbank output, or for MFCC: DCT-II (orthonormal rows) -> cepstral lifter -> c0 := log energy.
Frames are rows of a matrix (a strided view of the signal, copied a block of frames at a time): one
rfft over the rows, one GEMM for the mel filters, one for the DCT; no Python loop per frame. Like
Kaldi, the frames, FFT and filters are float32 (energies are summed in float64); against
kaldi-native-fbank the differences are float32 rounding, largest in mel bands of very low energy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

from sidkd.errors import DataError
from sidkd.feat.options import KaldiOptions, option

__all__ = [
    "MfccOptions",
    "FbankOptions",
    "compute_mfcc",
    "compute_fbank",
    "num_frames",
    "frame_geometry",
    "frame_log_energy",
    "mel_filterbank",
    "dct_matrix",
]

# Kaldi floors energies at float epsilon before taking logs.
FLOAT_EPSILON = float(np.finfo(np.float32).eps)
# Frames, FFT and mel filters in float32, as in Kaldi and kaldi-native-fbank; energies summed in float64.
_DTYPE = np.float32
# Frames per processing block: bounds memory for long recordings (2048 x 512 floats = 4 MiB).
BLOCK_FRAMES = 2048
WINDOW_TYPES = ("povey", "hamming", "hanning", "rectangular", "sine", "blackman")


@dataclass
class _SpectralOptions(KaldiOptions):
    # Frame extraction (Kaldi's FrameExtractionOptions).
    sample_frequency: float = option(16000.0, "sample rate of the audio in Hz (it must match the files)")
    frame_length: float = option(25.0, "frame length in milliseconds")
    frame_shift: float = option(10.0, "frame shift in milliseconds")
    dither: float = option(1.0, "std of Gaussian noise added to every sample (0 = none)")
    dither_seed: int = option(0, "seed of the dither noise (sidkd; programs mix in the utterance key)")
    preemphasis_coefficient: float = option(0.97, "pre-emphasis: x[i] -= c * x[i-1]")
    remove_dc_offset: bool = option(True, "subtract each frame's mean")
    window_type: str = option("povey", "povey|hamming|hanning|rectangular|sine|blackman")
    blackman_coeff: float = option(0.42, "constant of the generalised Blackman window")
    round_to_power_of_two: bool = option(True, "zero-pad each frame to a power-of-two FFT size")
    snip_edges: bool = option(
        True, "true: only frames that fit in the signal; false: about n/shift frames, edges reflected"
    )
    # Mel filters (Kaldi's MelBanksOptions).
    num_mel_bins: int = option(23, "number of triangular mel filters")
    low_freq: float = option(20.0, "low cut-off of the mel filters in Hz")
    high_freq: float = option(0.0, "high cut-off in Hz; <= 0 means that much below Nyquist")
    # Energy.
    use_energy: bool = option(True, "MFCC: replace c0 by the log energy; fbank: prepend it")
    raw_energy: bool = option(True, "energy before pre-emphasis and window (else after)")
    energy_floor: float = option(0.0, "floor on the energy (not the log); 0 = none")

    def check(self) -> None:
        if self.sample_frequency <= 0:
            raise DataError(f"--sample-frequency must be positive, got {self.sample_frequency}")
        shift, length, _ = frame_geometry(self)
        if shift <= 0 or length <= 0:
            raise DataError(f"frame shift ({self.frame_shift} ms) and length ({self.frame_length} ms) give no samples")
        if self.window_type not in WINDOW_TYPES:
            raise DataError(f"--window-type={self.window_type}: expected one of {', '.join(WINDOW_TYPES)}")
        if self.dither < 0:
            raise DataError(f"--dither must be >= 0, got {self.dither}")
        if self.num_mel_bins < 3:
            raise DataError(f"--num-mel-bins must be at least 3, got {self.num_mel_bins}")
        nyquist = 0.5 * self.sample_frequency
        high = self.high_freq if self.high_freq > 0 else nyquist + self.high_freq
        if not (0 <= self.low_freq < nyquist and 0 < high <= nyquist and high > self.low_freq):
            raise DataError(
                f"bad mel range: --low-freq={self.low_freq} --high-freq={self.high_freq} "
                f"(Nyquist {nyquist} Hz): need 0 <= low < high <= Nyquist"
            )


@dataclass
class MfccOptions(_SpectralOptions):
    """Kaldi's MfccOptions (defaults are Kaldi's)."""

    num_ceps: int = option(13, "number of cepstra, c0 included")
    cepstral_lifter: float = option(22.0, "lifter Q: c_i *= 1 + Q/2 sin(pi i / Q); 0 = none")

    def check(self) -> None:
        super().check()
        if not 1 <= self.num_ceps <= self.num_mel_bins:
            raise DataError(f"--num-ceps={self.num_ceps} must be in 1..num-mel-bins ({self.num_mel_bins})")


@dataclass
class FbankOptions(_SpectralOptions):
    """Kaldi's FbankOptions (defaults are Kaldi's: no energy, log of power)."""

    use_energy: bool = option(False, "prepend the log energy as column 0")
    use_log_fbank: bool = option(True, "log of the mel energies (floored at float epsilon)")
    use_power: bool = option(True, "mel filters on the power spectrum (false: magnitude)")


def frame_geometry(opts: _SpectralOptions) -> tuple[int, int, int]:
    """(shift, length, fft_size) in samples, rounded as Kaldi rounds them (float32 options)."""
    rate = float(np.float32(opts.sample_frequency))
    shift = int(rate * 0.001 * float(np.float32(opts.frame_shift)))
    length = int(rate * 0.001 * float(np.float32(opts.frame_length)))
    fft_size = 1 << max(length - 1, 0).bit_length() if opts.round_to_power_of_two else length
    return shift, length, fft_size


def num_frames(num_samples: int, opts: _SpectralOptions) -> int:
    """Kaldi's frame count for a whole signal."""
    shift, length, _ = frame_geometry(opts)
    if opts.snip_edges:
        return 0 if num_samples < length else 1 + (num_samples - length) // shift
    return (num_samples + shift // 2) // shift


def _frame_view(samples: np.ndarray, opts: _SpectralOptions) -> np.ndarray:
    """[frames, length] strided (read-only, uncopied) view of the signal at Kaldi's frame positions."""
    n = len(samples)
    shift, length, _ = frame_geometry(opts)
    count = num_frames(n, opts)
    if count == 0:
        return np.zeros((0, length), dtype=_DTYPE)
    first = 0 if opts.snip_edges else shift // 2 - length // 2
    last_end = first + (count - 1) * shift + length
    pad_left, pad_right = max(0, -first), max(0, last_end - n)
    signal = np.asarray(samples, dtype=_DTYPE)
    if pad_left or pad_right:
        # Samples outside the signal mirror it (s < 0 -> -s-1, s >= n -> 2n-1-s), repeatedly
        # for signals shorter than a frame: fold indices with period 2n.
        def mirrored(index):
            index = index % (2 * n)
            return signal[np.where(index >= n, 2 * n - 1 - index, index)]

        signal = np.concatenate(
            [mirrored(np.arange(-pad_left, 0)), signal, mirrored(np.arange(n, n + pad_right))]
        )
    start = first + pad_left
    return sliding_window_view(signal, length)[start : start + (count - 1) * shift + 1 : shift]


@lru_cache(maxsize=64)
def _window(window_type: str, length: int, blackman_coeff: float) -> np.ndarray:
    a = 2 * math.pi / (length - 1) if length > 1 else 0.0
    i = np.arange(length)
    if window_type == "hanning":
        return 0.5 - 0.5 * np.cos(a * i)
    if window_type == "sine":
        return np.sin(0.5 * a * i)
    if window_type == "hamming":
        return 0.54 - 0.46 * np.cos(a * i)
    if window_type == "povey":  # Kaldi's default: a Hann window raised to 0.85
        return (0.5 - 0.5 * np.cos(a * i)) ** 0.85
    if window_type == "rectangular":
        return np.ones(length)
    if window_type == "blackman":
        return blackman_coeff - 0.5 * np.cos(a * i) + (0.5 - blackman_coeff) * np.cos(2 * a * i)
    raise DataError(f"unknown window type {window_type!r}")


def _mel(freq):
    return 1127.0 * np.log(1.0 + np.asarray(freq, dtype=np.float64) / 700.0)


@lru_cache(maxsize=64)
def mel_filterbank(num_bins: int, fft_size: int, sample_frequency: float, low_freq: float, high_freq: float) -> np.ndarray:
    """[num_bins, fft_size // 2] triangular filters, equally spaced on the mel scale.

    Kaldi's layout: filter b spans mel points b..b+2 of num_bins+2 equally spaced points between
    mel(low) and mel(high); a filter weighs FFT bin i (frequency i * rate / fft_size, the Nyquist
    bin excluded) by its triangle in mel, strictly inside the outer edges.
    """
    nyquist = 0.5 * sample_frequency
    high = high_freq if high_freq > 0 else nyquist + high_freq
    mel_low, mel_high = _mel(low_freq), _mel(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    left = mel_low + delta * np.arange(num_bins)[:, None]
    center, right = left + delta, left + 2 * delta
    mel = _mel(np.arange(fft_size // 2) * (sample_frequency / fft_size))[None, :]
    rising = (mel - left) / (center - left)
    falling = (right - mel) / (right - center)
    weights = np.where(mel <= center, rising, falling)
    weights[(mel <= left) | (mel >= right)] = 0.0
    empty = np.flatnonzero(~weights.any(axis=1))
    if len(empty):
        raise DataError(
            f"mel filter {empty[0]} covers no FFT bin ({fft_size}-point FFT): --num-mel-bins={num_bins} is too many "
            f"for {low_freq}-{high} Hz"
        )
    return weights


@lru_cache(maxsize=64)
def dct_matrix(num_ceps: int, num_bins: int, cepstral_lifter: float) -> np.ndarray:
    """[num_bins, num_ceps]: orthonormal DCT-II rows (first num_ceps), lifter folded in, transposed."""
    k = np.arange(num_ceps)[:, None]
    n = np.arange(num_bins)[None, :]
    dct = np.sqrt(2.0 / num_bins) * np.cos(math.pi / num_bins * (n + 0.5) * k)
    dct[0, :] = math.sqrt(1.0 / num_bins)
    if cepstral_lifter != 0:
        dct *= (1.0 + 0.5 * cepstral_lifter * np.sin(math.pi * np.arange(num_ceps) / cepstral_lifter))[:, None]
    return np.ascontiguousarray(dct.T)


def _log_floored(x: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(x, FLOAT_EPSILON))


def _dither_rng(count: int, opts: _SpectralOptions, rng: np.random.Generator | None) -> np.random.Generator | None:
    if opts.dither != 0 and count:
        return rng if rng is not None else np.random.default_rng(opts.dither_seed)
    return rng


def _dithered_frames(view: np.ndarray, block: slice, opts: _SpectralOptions,
                     rng: np.random.Generator | None) -> np.ndarray:
    """A block of frames copied from the view, dithered and with the DC offset removed."""
    frames = np.array(view[block], dtype=_DTYPE)
    if opts.dither != 0:
        frames += rng.standard_normal(frames.shape, dtype=_DTYPE) * _DTYPE(opts.dither)
    if opts.remove_dc_offset:
        frames -= frames.mean(axis=1, keepdims=True)
    return frames


def frame_log_energy(samples: np.ndarray, opts: _SpectralOptions, rng: np.random.Generator | None = None) -> np.ndarray:
    """Raw log energy per frame (float64): MFCC's c0 with use-energy and raw-energy, without the
    spectrum (what energy VAD reads)."""
    view = _frame_view(samples, opts)
    count = view.shape[0]
    rng = _dither_rng(count, opts, rng)
    out = np.empty(count)
    for first in range(0, count, BLOCK_FRAMES):
        block = slice(first, min(first + BLOCK_FRAMES, count))
        frames = _dithered_frames(view, block, opts, rng)
        out[block] = _log_floored(np.einsum("ij,ij->i", frames, frames, dtype=np.float64))
    if opts.energy_floor > 0:
        out = np.maximum(out, math.log(opts.energy_floor))
    return out


def _mel_energies(
    samples: np.ndarray, opts: _SpectralOptions, rng: np.random.Generator | None, use_power: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """(mel energies [frames, bins] float32, log energy per frame float64 or None if not wanted).

    Frames are processed in blocks of BLOCK_FRAMES, so memory stays bounded for long recordings.
    """
    shift, length, fft_size = frame_geometry(opts)
    view = _frame_view(samples, opts)
    count = view.shape[0]
    filters = mel_filterbank(
        opts.num_mel_bins, fft_size, float(opts.sample_frequency), float(opts.low_freq), float(opts.high_freq)
    ).T.astype(_DTYPE)
    window = _window(opts.window_type, length, opts.blackman_coeff).astype(_DTYPE)
    mel = np.empty((count, opts.num_mel_bins), dtype=_DTYPE)
    log_energy = np.empty(count) if opts.use_energy else None
    rng = _dither_rng(count, opts, rng)
    for first in range(0, count, BLOCK_FRAMES):
        block = slice(first, min(first + BLOCK_FRAMES, count))
        frames = _dithered_frames(view, block, opts, rng)
        if opts.use_energy and opts.raw_energy:
            log_energy[block] = _log_floored(np.einsum("ij,ij->i", frames, frames, dtype=np.float64))
        if opts.preemphasis_coefficient != 0:
            coeff = _DTYPE(opts.preemphasis_coefficient)
            frames[:, 1:] -= coeff * frames[:, :-1]  # right side is a new array: no aliasing
            frames[:, 0] *= 1 - coeff
        frames *= window
        if opts.use_energy and not opts.raw_energy:
            log_energy[block] = _log_floored(np.einsum("ij,ij->i", frames, frames, dtype=np.float64))
        spectrum = scipy.fft.rfft(frames, n=fft_size, axis=1)[:, : fft_size // 2]
        power = spectrum.real**2 + spectrum.imag**2
        if not use_power:
            power = np.sqrt(power)
        np.matmul(power, filters, out=mel[block])
    if log_energy is not None and opts.energy_floor > 0:
        log_energy = np.maximum(log_energy, math.log(opts.energy_floor))
    return mel, log_energy


def compute_mfcc(samples: np.ndarray, opts: MfccOptions, rng: np.random.Generator | None = None) -> np.ndarray:
    """MFCCs [frames, num_ceps] float32 of samples on the 16-bit integer scale (as Kaldi reads wavs).

    ``rng`` supplies the dither noise; without one, a generator seeded with ``opts.dither_seed``.
    """
    mel, log_energy = _mel_energies(samples, opts, rng)
    ceps = _log_floored(mel) @ dct_matrix(opts.num_ceps, opts.num_mel_bins, float(opts.cepstral_lifter))
    if log_energy is not None:
        ceps[:, 0] = log_energy
    return ceps.astype(np.float32)


def compute_fbank(samples: np.ndarray, opts: FbankOptions, rng: np.random.Generator | None = None) -> np.ndarray:
    """Filterbank features [frames, num_mel_bins (+1 with use_energy, energy first)] float32."""
    mel, log_energy = _mel_energies(samples, opts, rng, use_power=opts.use_power)
    if opts.use_log_fbank:
        mel = _log_floored(mel)
    if log_energy is not None:
        mel = np.concatenate([log_energy[:, None], mel], axis=1)
    return mel.astype(np.float32)


