"""Training batches for the student: random fixed-length crops of in-memory audio, speaker-balanced
batches, the teacher i-vector of each utterance, on-the-fly augmentation.

Memory: the training audio is decoded once (Opus not every epoch) to int16 (2 bytes a sample: the
4.7 h of the default data take about 540 MB), held in memory up to ``IN_MEMORY_BYTES`` per process;
a larger set is written as decoded to one unlinked temporary file ($TMPDIR) and each utterance read
back when a crop needs it (DiskSamples), so a training's memory stays bounded however much audio it
has; its disk is then the decoded audio's size (115 MB an hour at 16 kHz, in $TMPDIR). The samples are the same either way, and so is every batch. With N DDP processes there are N
copies; DataLoader workers share their parent's (fork).

Sampling (``data:`` yaml): an epoch is ``chunks_per_epoch`` crops (default: total audio duration /
chunk length) in batches of ``batch_size`` = S speakers x ``utts_per_speaker`` crops each. The S
speakers of a batch are distinct, drawn with probability ∝ (speaker's audio duration) ^
``speaker_weight_power`` (0: every speaker equally often; 1: in proportion to their speech); a
speaker's crops come from its utterances in proportion to their durations. Crop starts are uniform;
an utterance shorter than the crop is repeated end to end.

Determinism: batch b of epoch e is a function of (seed, e, b) alone, and crop j of it of
(seed, e, b, j): resuming, the number of processes and of loader workers change nothing (the
random streams are named in sidkd.nnet.streams).
"""

from __future__ import annotations

import errno
import logging
import os
import tempfile
from dataclasses import dataclass

import numpy as np
import torch

from sidkd.errors import DataError
from sidkd.io.ark import check_finite, iter_archive
from sidkd.io.audio import AudioOptions, AudioReader
from sidkd.io.datadir import DataDir
from sidkd.nnet.augment import mix_at_snr, reverberate, spec_augment, synthetic_rir
from sidkd.nnet.features import FeatureFrontEnd
from sidkd.nnet.streams import Stream, epoch_rng, item_rng

__all__ = ["TrainingAudio", "DiskSamples", "load_teacher_vectors", "SpeakerBalancedBatches", "ChunkBatchDataset",
           "FixedCropBatchDataset", "crop_or_repeat", "IN_MEMORY_BYTES"]

log = logging.getLogger(__name__)
INT16_MAX = 32767
# Decoded training audio kept in memory up to this size (about 17 h at 16 kHz); beyond, DiskSamples.
IN_MEMORY_BYTES = 2 << 30


class DiskSamples:
    """int16 utterances in one unlinked temporary file, each read back whole on access (pread, so
    forked loader workers can share the file)."""

    def __init__(self):
        self._file = tempfile.TemporaryFile(prefix="sidkd_audio_")
        self.offsets: list[int] = []
        self.lengths: list[int] = []
        self.nbytes = 0

    def append(self, samples: np.ndarray) -> None:
        data = np.ascontiguousarray(samples, dtype=np.int16).tobytes()
        try:
            os.pwrite(self._file.fileno(), data, self.nbytes)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise DataError(f"{tempfile.gettempdir()}: no room for the decoded training audio after "
                            f"{self.nbytes / 1e9:.1f} GB ({exc.strerror}); it needs 2 bytes a sample (115 MB an "
                            f"hour at 16 kHz): set TMPDIR to a disk with room for the training data's "
                            f"hours") from None
        self.offsets.append(self.nbytes)
        self.lengths.append(len(samples))
        self.nbytes += len(data)

    def subset(self, mask: np.ndarray) -> DiskSamples:
        out = DiskSamples.__new__(DiskSamples)
        out._file, out.nbytes = self._file, self.nbytes
        out.offsets = [o for o, k in zip(self.offsets, mask) if k]
        out.lengths = [n for n, k in zip(self.lengths, mask) if k]
        return out

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i: int) -> np.ndarray:
        data = os.pread(self._file.fileno(), 2 * self.lengths[i], self.offsets[i])
        return np.frombuffer(data, dtype=np.int16)


class TrainingAudio:
    """utt -> int16 samples of a data dir, decoded once; unreadable utterances skipped and counted."""

    def __init__(self, data_dir: str, sample_rate: int = 16000, utts: list[str] | None = None,
                 in_memory_bytes: int = IN_MEMORY_BYTES):
        data = DataDir(data_dir)
        utt2spk = data.utt2spk
        wanted = set(utts) if utts is not None else None
        reader = AudioReader.from_data_dir(data, AudioOptions(
            sample_rate=sample_rate, rate_from="features.sample_rate of the network's config (./run.sh --sample-rate <Hz>)"))
        self.utts: list[str] = []
        self.samples: list[np.ndarray] | DiskSamples = []
        lengths, nbytes, skipped = [], 0, 0
        for utt, signal, error in reader.iter_with_errors():
            if wanted is not None and utt not in wanted:
                continue
            if utt not in utt2spk:
                raise DataError(f"{data.file('wav.scp')}: utterance {utt!r} is not in {data.file('utt2spk')}")
            if error is not None or len(signal) == 0:
                log.warning("skipping utterance %s: %s", utt, error or "empty audio")
                skipped += 1
                continue
            self.utts.append(utt)
            samples = np.clip(np.rint(signal), -INT16_MAX - 1, INT16_MAX).astype(np.int16)
            lengths.append(len(samples))
            nbytes += samples.nbytes
            if isinstance(self.samples, list) and nbytes > in_memory_bytes:
                held, self.samples = self.samples, DiskSamples()
                for x in held:
                    self.samples.append(x)
            self.samples.append(samples)
        self.lengths = np.array(lengths, dtype=np.int64)
        self.speakers = sorted({utt2spk[u] for u in self.utts})
        spk_index = {s: i for i, s in enumerate(self.speakers)}
        self.labels = np.array([spk_index[utt2spk[u]] for u in self.utts], dtype=np.int64)
        self.sample_rate = sample_rate
        total = len(self.utts) + skipped
        on_disk = isinstance(self.samples, DiskSamples)
        log.info("training audio of %s: %d utterances in, %d kept + %d skipped; %d speakers, %.2f h, "
                 "%.0f MB as int16 %s", data_dir, total, len(self.utts), skipped, len(self.speakers),
                 self.lengths.sum() / sample_rate / 3600, nbytes / 1e6,
                 f"on disk (over the {in_memory_bytes / 1e6:.0f} MB held in memory), read per crop" if on_disk
                 else "in memory")
        if not self.utts:
            raise DataError(f"{data_dir}: no usable training audio")

    def keep(self, mask: np.ndarray) -> None:
        """Drop utterances where mask is False (speaker indices stay as they are)."""
        self.utts = [u for u, k in zip(self.utts, mask) if k]
        if isinstance(self.samples, DiskSamples):
            self.samples = self.samples.subset(mask)
        else:
            self.samples = [s for s, k in zip(self.samples, mask) if k]
        self.labels = self.labels[mask]
        self.lengths = self.lengths[mask]


def teacher_vector(rspec: str, key: str, vector, dim: int | None) -> np.ndarray:
    """One teacher vector as float32, checked finite and of dimension ``dim`` (None: any)."""
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    check_finite(key, vector)
    if dim is not None and len(vector) != dim:
        raise DataError(f"{rspec}: teacher vector {key!r} has dimension {len(vector)}, expected {dim}")
    return vector


def load_teacher_vectors(rspec: str, utts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(vectors (N, R) float32 with zero rows where missing, present mask (N,)) for ``utts``."""
    index = {u: i for i, u in enumerate(utts)}
    rows: dict[int, np.ndarray] = {}
    dim = None
    for key, vector in iter_archive(rspec):
        if key not in index:
            continue
        rows[index[key]] = vector = teacher_vector(rspec, key, vector, dim)
        dim = len(vector)
    if dim is None:
        raise DataError(f"{rspec}: no teacher vector for any training utterance")
    vectors = np.zeros((len(utts), dim), dtype=np.float32)
    present = np.zeros(len(utts), dtype=bool)
    for i, vector in rows.items():
        vectors[i] = vector
        present[i] = True
    return vectors, present


def crop_or_repeat(samples: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``length``-sample slice; a shorter signal is repeated end to end first."""
    if len(samples) < length:
        samples = np.tile(samples, -(-length // len(samples)))
    start = int(rng.integers(0, len(samples) - length + 1))
    return samples[start:start + length].astype(np.float32)


class SpeakerBalancedBatches:
    """The list of batches of one epoch: each batch a list of utterance indices."""

    def __init__(self, labels: np.ndarray, durations: np.ndarray, batch_size: int, utts_per_speaker: int,
                 num_batches: int, speaker_weight_power: float = 0.5, seed: int = 0):
        if batch_size % utts_per_speaker:
            raise ValueError(f"batch_size {batch_size} is not a multiple of utts_per_speaker {utts_per_speaker}")
        self.speakers_per_batch = batch_size // utts_per_speaker
        num_speakers = int(labels.max()) + 1
        present = np.unique(labels)
        if self.speakers_per_batch > len(present):
            raise DataError(f"a batch needs {self.speakers_per_batch} speakers, the data has {len(present)}")
        self.batch_size = batch_size
        self.utts_per_speaker = utts_per_speaker
        self.num_batches = num_batches
        self.seed = seed
        self.speaker_utts = [np.flatnonzero(labels == s) for s in range(num_speakers)]
        self.speaker_probs_within = [durations[u] / durations[u].sum() if len(u) else u for u in self.speaker_utts]
        spk_dur = np.array([durations[u].sum() for u in self.speaker_utts], dtype=np.float64)
        weight = np.where(spk_dur > 0, spk_dur, 0.0) ** speaker_weight_power * (spk_dur > 0)
        self.speaker_probs = weight / weight.sum()

    @classmethod
    def from_conf(cls, audio: TrainingAudio, data_conf: dict, crop_samples: int, world: int,
                  seed: int) -> SpeakerBalancedBatches:
        """The sampler of a yaml ``data:`` section. An epoch is ``chunks_per_epoch`` crops (null: the
        total duration over the crop length) in whole batches; the global batch splits over ``world``."""
        durations = audio.lengths.astype(np.float64)
        chunks_per_epoch = data_conf["chunks_per_epoch"] or int(durations.sum() // crop_samples)
        batch_size = int(data_conf["batch_size"])
        if batch_size % world:
            raise DataError(f"batch_size {batch_size} is not divisible by the {world} processes")
        return cls(audio.labels, durations, batch_size, int(data_conf["utts_per_speaker"]),
                   max(1, chunks_per_epoch // batch_size), float(data_conf["speaker_weight_power"]), seed)

    def epoch(self, epoch: int) -> list[list[int]]:
        rng = epoch_rng(self.seed, epoch, Stream.SAMPLER)
        batches = []
        for _ in range(self.num_batches):
            speakers = rng.choice(len(self.speaker_probs), size=self.speakers_per_batch, replace=False,
                                  p=self.speaker_probs)
            batch = []
            for s in speakers:
                batch.extend(rng.choice(self.speaker_utts[s], size=self.utts_per_speaker, replace=True,
                                        p=self.speaker_probs_within[s]).tolist())
            batches.append(batch)
        return batches


# the keys of each ``augment:`` section; a section left out is that augmentation off
AUGMENT_KEYS = {"reverb": ("prob", "rt60"), "babble": ("prob", "snr_db", "num_speakers"),
                "specaugment": ("prob", "time_masks", "max_time_width", "freq_masks", "max_freq_width")}


@dataclass
class AugmentConfig:
    """The ``augment:`` section; AugmentConfig() is no augmentation (the other fields are read only
    where their probability is above 0)."""

    reverb_prob: float = 0.0
    rt60: tuple[float, float] | None = None
    babble_prob: float = 0.0
    snr_db: tuple[float, float] | None = None
    babble_speakers: tuple[int, int] | None = None
    specaugment_prob: float = 0.0
    time_masks: int | None = None
    max_time_width: int | None = None
    freq_masks: int | None = None
    max_freq_width: int | None = None

    @classmethod
    def from_dict(cls, conf: dict | None) -> AugmentConfig:
        conf = conf or {}
        for section, value in conf.items():
            if section not in AUGMENT_KEYS or not isinstance(value, dict):
                raise DataError(f"augment.{section}: expected one of the sections {sorted(AUGMENT_KEYS)}")
            missing = [key for key in AUGMENT_KEYS[section] if key not in value]
            unknown = sorted(set(value) - set(AUGMENT_KEYS[section]))
            if missing or unknown:
                raise DataError(f"augment.{section}: missing {missing or 'none'}, unknown {unknown or 'none'}; "
                                f"its keys are {', '.join(AUGMENT_KEYS[section])}")
        out = cls()
        if "reverb" in conf:
            out.reverb_prob, out.rt60 = float(conf["reverb"]["prob"]), tuple(conf["reverb"]["rt60"])
        if "babble" in conf:
            babble = conf["babble"]
            out.babble_prob, out.snr_db = float(babble["prob"]), tuple(babble["snr_db"])
            out.babble_speakers = tuple(babble["num_speakers"])
        if "specaugment" in conf:
            spec = conf["specaugment"]
            out.specaugment_prob, out.time_masks = float(spec["prob"]), int(spec["time_masks"])
            out.max_time_width, out.freq_masks = int(spec["max_time_width"]), int(spec["freq_masks"])
            out.max_freq_width = int(spec["max_freq_width"])
        return out


class ChunkBatchDataset(torch.utils.data.Dataset):
    """Item i = one whole batch (feats (B, T, F), labels (B,), teacher (B, R) or None)."""

    def __init__(self, audio: TrainingAudio, frontend: FeatureFrontEnd, chunk_samples: int,
                 augment: AugmentConfig, batches: list[list[int]], batch_ids: list[int], seed: int, epoch: int,
                 positions: slice = slice(None), teacher: np.ndarray | None = None):
        self.audio, self.frontend, self.chunk_samples, self.augment = audio, frontend, chunk_samples, augment
        self.batches, self.batch_ids, self.seed, self.epoch = batches, batch_ids, seed, epoch
        self.positions, self.teacher = positions, teacher

    def __len__(self) -> int:
        return len(self.batches)

    def crop_features(self, utt: int, rng: np.random.Generator, length: int | None = None) -> np.ndarray:
        """Features of one random, augmented crop of ``length`` samples (default: the chunk length)."""
        x = crop_or_repeat(self.audio.samples[utt], length or self.chunk_samples, rng)
        return self.augmented_features(x, rng, utt)

    def augmented_features(self, x: np.ndarray, rng: np.random.Generator, utt: int) -> np.ndarray:
        """Features of the samples ``x`` (float32) of utterance ``utt`` after the augmentation draws;
        the babble comes from other utterances than ``utt``."""
        a = self.augment
        length = len(x)
        if a.reverb_prob > 0 and rng.random() < a.reverb_prob:
            x = reverberate(x, synthetic_rir(rng.uniform(*a.rt60), self.audio.sample_rate, rng))
        if a.babble_prob > 0 and rng.random() < a.babble_prob:
            count = int(rng.integers(a.babble_speakers[0], a.babble_speakers[1] + 1))
            others = rng.integers(0, len(self.audio.utts), size=count)
            noise = np.zeros_like(x)
            for other in others:
                if other != utt:
                    noise += crop_or_repeat(self.audio.samples[other], length, rng)
            x = mix_at_snr(x, noise, rng.uniform(*a.snr_db))
        feats = self.frontend(x)
        if a.specaugment_prob > 0 and rng.random() < a.specaugment_prob:
            feats = spec_augment(feats, rng, a.time_masks, a.max_time_width, a.freq_masks, a.max_freq_width)
        return feats

    def draw(self, utt: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """The samples of one training crop of ``utt`` and the row of its teacher vector."""
        return crop_or_repeat(self.audio.samples[utt], self.chunk_samples, rng), utt

    def __getitem__(self, i: int):
        batch, batch_id = self.batches[i], self.batch_ids[i]
        positions = range(len(batch))[self.positions]
        feats, rows = [], []
        for j in positions:
            rng = item_rng(self.seed, self.epoch, batch_id, j, Stream.CROP)
            x, row = self.draw(batch[j], rng)
            feats.append(self.augmented_features(x, rng, batch[j]))
            rows.append(row)
        labels = torch.from_numpy(self.audio.labels[np.array([batch[j] for j in positions])])
        teacher = torch.from_numpy(self.teacher[np.array(rows)]) if self.teacher is not None else None
        return torch.from_numpy(np.stack(feats)), labels, teacher


class FixedCropBatchDataset(ChunkBatchDataset):
    """ChunkBatchDataset whose crops come only from the fixed positions of ``crop_teacher``
    (sidkd.nnet.teacher_targets.CropTeacher), each batch row with the teacher vector of its own crop
    (``teacher`` is then indexed by crop row)."""

    def __init__(self, *args, crop_teacher, **kwargs):
        super().__init__(*args, **kwargs)
        self.crop_teacher = crop_teacher

    def draw(self, utt: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        return self.crop_teacher.draw(utt, self.audio.samples[utt], rng)
