"""Helpers of the student tests: a tiny stand-in for sidkd.feat's fbank (used only inside these
tests; the student's data code is written against ``sidkd.feat.compute_fbank(samples, FbankOptions)``),
a tiny data dir with teacher vectors, and a tiny training config."""

import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from sidkd.io.ark import ArchiveWriter


@dataclass
class StandInFbankOptions:
    num_mel_bins: int = 8
    frame_length: float = 25.0
    frame_shift: float = 10.0
    sample_frequency: float = 16000.0
    dither: float = 0.0
    dither_seed: int = 0
    # options of sidkd.feat's FbankOptions that the recipe's yaml sets and the stand-in does not model
    low_freq: float = 20.0
    high_freq: float = 0.0
    snip_edges: bool = True
    use_energy: bool = False


def standin_fbank(samples, opts):
    """log energies in equal-width bands of a Hann-windowed power spectrum, snip-edges framing; with
    ``dither`` > 0, Gaussian noise of that std from a generator seeded with ``dither_seed`` is added
    to the samples first (as sidkd.feat does per frame), so that the dither's seed shows."""
    if opts.dither:
        noise = np.random.default_rng(opts.dither_seed).standard_normal(len(samples))
        samples = samples + (noise * opts.dither).astype(np.float32)
    length = int(opts.sample_frequency * opts.frame_length / 1000)
    shift = int(opts.sample_frequency * opts.frame_shift / 1000)
    count = 1 + (len(samples) - length) // shift if len(samples) >= length else 0
    idx = np.arange(length)[None, :] + shift * np.arange(count)[:, None]
    frames = samples[idx] * np.hanning(length)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    bands = np.array_split(np.arange(power.shape[1]), opts.num_mel_bins)
    return np.log(np.stack([power[:, b].sum(1) for b in bands], axis=1) + 1.0).astype(np.float32)



def make_tiny_data(root, speakers=4, utts=3, teacher_dim=5, missing_teacher=(), seed=0):
    """A data dir of harmonic 'voices' (a pitch per speaker) plus noise, and teacher vectors."""
    rng = np.random.default_rng(seed)
    data = os.path.join(root, "data")
    os.makedirs(data, exist_ok=True)
    wav, u2s = [], []
    for s in range(speakers):
        f0 = 100 + 40 * s
        for u in range(utts):
            seconds = 0.4 + 0.3 * u
            t = np.arange(int(seconds * 16000)) / 16000
            x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6)) * 3000
            x = x + rng.standard_normal(len(t)) * 300
            utt = f"spk{s}-u{u}"
            path = os.path.join(root, f"{utt}.wav")
            sf.write(path, (x / 32768).astype(np.float32), 16000, subtype="PCM_16")
            wav.append(f"{utt} {path}\n")
            u2s.append(f"{utt} spk{s}\n")
    with open(os.path.join(data, "wav.scp"), "w") as f:
        f.writelines(wav)
    with open(os.path.join(data, "utt2spk"), "w") as f:
        f.writelines(u2s)
    teacher = os.path.join(root, "ivector")
    with ArchiveWriter(f"ark,scp:{teacher}.ark,{teacher}.scp") as w:
        for line in u2s:
            utt, spk = line.split()
            if utt not in missing_teacher:
                w[utt] = (rng.standard_normal(teacher_dim) + int(spk[3:])).astype(np.float32)
    return data, f"scp:{teacher}.scp"


def tiny_config(**over):
    conf = {
        "seed": 3,
        "device": "cpu",
        # Kaldi's framing (the recipe's conf/student.yaml has snip_edges false, high_freq 7600)
        "features": {"sample_rate": 16000, "chunk_seconds": 0.3, "cmn": True,
                     "fbank": {"num_mel_bins": 8, "snip_edges": True, "high_freq": 0.0}},
        "model": {"type": "resnet", "depths": [1, 1, 1, 1], "width": 2, "embedding_dim": 8, "pooling": "attentive",
                  "attention_dim": 4},
        "loss": {"aam": {"margin": 0.2, "scale": 16.0, "sub_centers": 2, "margin_warmup_epochs": [0, 1]},
                 "kd": {"weight": 0.5, "normalisation": "whiten"}},
        "data": {"batch_size": 4, "utts_per_speaker": 2, "speaker_weight_power": 0.5, "chunks_per_epoch": 12,
                 "num_workers": 0},
        "augment": {"reverb": {"prob": 0.5, "rt60": [0.2, 0.4]},
                    "babble": {"prob": 0.5, "snr_db": [5, 10], "num_speakers": [2, 3]},
                    "specaugment": {"prob": 0.5, "time_masks": 1, "max_time_width": 5, "freq_masks": 1,
                                    "max_freq_width": 2}},
        "optim": {"optimizer": "adamw", "lr": 0.01, "final_lr": 0.001, "weight_decay": 1e-4, "warmup_epochs": 0.5,
                  "decay": "exponential", "grad_clip": 5.0, "num_epochs": 3, "average_last": 2, "log_interval": 2},
        # fp32 everywhere, serial batches: the tests' numbers do not depend on the CPU
        "speed": {"precision": "fp32", "channels_last": False, "compile": False, "optimizer_impl": "single",
                  "prefetch": 0},
    }
    for key, value in over.items():
        conf[key] = {**conf["speed"], **value} if key == "speed" else value
    return conf
