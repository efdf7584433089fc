"""The speech gate in front of verification: is there enough speech in a recording to judge it?

Voiced speech is what the recipe's energy VAD (sidkd.feat.vad, Kaldi's compute-vad) marks on the
raw log energy of the recipe's MFCC frames (MFCC's c0; no dither here, so that a decision never
depends on noise). A recording passes when it has at least ``min_speech`` seconds of voiced frames
and those frames' log energy varies (10th to 90th percentile) by at least ``min_energy_range_db``:
speech rises and falls from syllable to syllable, a tone or a hum does not. Digital silence has no
voiced frame (every frame sits at the log floor, below the VAD's threshold), nor has a constant
(DC) signal once each frame's mean is removed.

Defaults, chosen on training speakers (the recipe's data/sc_train, 2,608 one-second words; stated
with their measurements in docs/verify.md): ``min_speech`` 0.15 s refuses 2 of them (0.08 %); the
energy range of their voiced frames is at least 1.4 dB, a pure tone's about 0 dB and stationary
white noise's 0.7 dB (400-sample frames; bench/speech_gate.py), so the floor is 1 dB.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from sidkd.feat.spectral import MfccOptions, frame_log_energy
from sidkd.feat.vad import VadOptions, compute_vad

__all__ = ["GateOptions", "SpeechMeasure", "measure_speech", "refusal"]

_DB_PER_NEPER = 10.0 / math.log(10.0)  # log energy in nepers -> power in dB


@dataclass
class GateOptions:
    min_speech: float = 0.15  # seconds of voiced speech
    min_energy_range_db: float = 1.0  # spread of the voiced frames' energy, 10th to 90th percentile


@dataclass
class SpeechMeasure:
    seconds: float  # the recording's length
    voiced_seconds: float
    energy_range_db: float  # 10th to 90th percentile of the voiced frames' log energy (0 with none)


def measure_speech(samples: np.ndarray, frames: MfccOptions, vad: VadOptions) -> SpeechMeasure:
    """Voiced seconds and their energy spread; ``frames`` gives the rate and framing (its mel and
    cepstral options are not used), ``vad`` the recipe's VAD options."""
    frames = dataclasses.replace(frames, dither=0.0)
    log_energy = frame_log_energy(np.asarray(samples, dtype=np.float32), frames)
    shift = frames.frame_shift / 1000.0
    seconds = len(samples) / frames.sample_frequency
    if len(log_energy) == 0:
        return SpeechMeasure(seconds, 0.0, 0.0)
    voiced = log_energy[compute_vad(log_energy[:, None], vad) > 0]
    spread = float(np.subtract(*np.percentile(voiced, [90, 10]))) * _DB_PER_NEPER if len(voiced) else 0.0
    return SpeechMeasure(seconds, len(voiced) * shift, spread)


def refusal(measure: SpeechMeasure, opts: GateOptions) -> str:
    """Why a recording with this measure cannot be judged, or "" when it can."""
    if measure.voiced_seconds < opts.min_speech:
        return (f"{measure.voiced_seconds:.2f} s of voiced speech in {measure.seconds:.3f} s of audio, below the "
                f"minimum {opts.min_speech:g} s (--min-speech)")
    if measure.energy_range_db < opts.min_energy_range_db:
        return (f"a constant signal, not speech: the energy of its {measure.voiced_seconds:.2f} s of voiced frames "
                f"varies by {measure.energy_range_db:.2f} dB, below {opts.min_energy_range_db:g} dB "
                "(--min-energy-range-db)")
    return ""
