"""On-the-fly data augmentation, each kind applied with its own probability (``augment:`` yaml).

- ``reverb``: convolution with a synthetic room impulse response: a unit direct path followed by
  Gaussian noise under an exponential envelope that falls 60 dB in RT60 seconds (RT60 drawn from a
  range); the result is rescaled to the dry signal's power.
- ``babble``: the sum of a few random crops of other training utterances, scaled to an SNR drawn
  from a range (dB). No external noise corpus is needed.
- ``specaugment``: time and frequency masks on the features (Park et al., 2019), set to 0, which
  is the mean after CMN.

All randomness comes from the numpy Generator passed in, so a batch is a function of its seed.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

__all__ = ["synthetic_rir", "reverberate", "mix_at_snr", "looped", "babble_weights", "spec_augment"]

LN_1000 = np.log(1000.0)  # a 60 dB fall in amplitude


def synthetic_rir(rt60: float, sample_rate: int, rng: np.random.Generator, max_seconds: float = 1.0) -> np.ndarray:
    n = max(2, int(min(rt60, max_seconds) * sample_rate))
    t = np.arange(n) / sample_rate
    rir = rng.standard_normal(n) * np.exp(-LN_1000 * t / rt60)
    # The tail is diffuse and weaker than the direct sound: scale it relative to a unit direct path.
    rir *= 0.1 / max(1e-12, np.abs(rir[1:]).max())
    rir[0] = 1.0
    return rir


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def reverberate(samples: np.ndarray, rir: np.ndarray) -> np.ndarray:
    wet = fftconvolve(samples, rir)[: len(samples)]
    gain = np.sqrt(_power(samples) / max(_power(wet), 1e-12))
    return (wet * gain).astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """speech + g·noise with 10·log10(P_speech / P_{g·noise}) = snr_db."""
    p_noise = _power(noise)
    if p_noise <= 0.0:
        return speech
    gain = np.sqrt(_power(speech) / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (speech + gain * noise).astype(np.float32)


def looped(noise: np.ndarray, start: int, length: int) -> np.ndarray:
    """``length`` samples of ``noise`` from ``start`` on, wrapping round to its beginning: a noise
    shorter than the speech it covers repeats instead of leaving the end clean."""
    return noise[(start + np.arange(length)) % len(noise)]


def babble_weights(speech: np.ndarray, talkers: list[np.ndarray], snr_db: float) -> np.ndarray:
    """Weights w_k of the babble sum_k w_k·talker_k: every talker at the same power, and the sum at
    ``snr_db`` below the speech (powers over the whole signals, as mix_at_snr)."""
    unit = [1.0 / np.sqrt(max(_power(t), 1e-12)) for t in talkers]
    babble = sum(u * t.astype(np.float64) for u, t in zip(unit, talkers))
    gain = np.sqrt(_power(speech) / (max(_power(babble), 1e-12) * 10.0 ** (snr_db / 10.0)))
    return gain * np.asarray(unit)


def spec_augment(feats: np.ndarray, rng: np.random.Generator, time_masks: int, max_time_width: int,
                 freq_masks: int, max_freq_width: int) -> np.ndarray:
    out = feats.copy()
    frames, bins = out.shape
    for _ in range(time_masks):
        width = int(rng.integers(0, max_time_width + 1))
        if 0 < width < frames:
            start = int(rng.integers(0, frames - width + 1))
            out[start:start + width, :] = 0.0
    for _ in range(freq_masks):
        width = int(rng.integers(0, max_freq_width + 1))
        if 0 < width < bins:
            start = int(rng.integers(0, bins - width + 1))
            out[:, start:start + width] = 0.0
    return out
