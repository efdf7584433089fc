"""A degraded copy of a data dir: every utterance mixed with babble of other speakers at a fixed SNR.

Usage: degrade_data_dir [options] --noise-data <noise-dir> <src-dir> <out-dir>
  e.g.: degrade_data_dir --noise-data data/train --snr-db 5 data/test data/test_babble5

Each utterance of <src-dir> gets --num-talkers talkers: distinct speakers of <noise-dir>, which must
share no speaker with <src-dir> (the trial set), one utterance each at a random start, looped to the
utterance's length (sidkd.nnet.augment.looped). Every talker is brought to the same power and their
sum to --snr-db below the speech (babble_weights; powers over whole signals). The draws of an
utterance depend on --seed and its id only, so a rerun or another job split gives the same audio.

<out-dir> keeps the utterance ids, speakers and trials of <src-dir> and has
  wav/<utt>.wav   the mixture, 16-bit, rounded and clipped as audio is read (sidkd.io.audio);
  wav.scp         those files;
  mixing          "<utt> <snr-db> <noise-utt>:<start-sample>:<weight> ...": the mixture is exactly
                  round(speech + sum of weight·looped(noise, start)), before clipping;
  degrade_params  the options and the source's utt2spk digest: a rerun with the same ones keeps
                  <out-dir>, another remakes it.
It is written under a temporary name and renamed when complete. Unreadable utterances of <src-dir>
are skipped with a count (and their trials dropped); an unreadable noise utterance is an error.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import zlib

import numpy as np
import soundfile as sf

from sidkd.cli import ArgumentParser, ProgramError, run_main
from sidkd.errors import DataError
from sidkd.io.audio import AudioOptions, AudioReader
from sidkd.io.datadir import DataDir, atomic_write_text, read_table
from sidkd.nnet.augment import babble_weights, looped

log = logging.getLogger("degrade_data_dir")

# The files of <src-dir> a degraded copy carries over unchanged (restricted to the kept utterances).
CARRIED = ("utt2spk", "spk2gender", "text")


def draw_babble(utt: str, seed: int, speakers: list[str], spk2utt: dict[str, list[str]], num_talkers: int,
                reader: AudioReader, length: int) -> tuple[list[str], list[int], list[np.ndarray]]:
    """The talkers of one utterance: their utterance ids, start samples and looped signals."""
    rng = np.random.default_rng([seed, zlib.crc32(utt.encode())])
    utts, starts, signals = [], [], []
    for index in rng.choice(len(speakers), size=num_talkers, replace=False):
        candidates = spk2utt[speakers[int(index)]]
        noise_utt = candidates[int(rng.integers(len(candidates)))]
        try:
            noise = reader.read(noise_utt)
        except DataError as exc:
            raise ProgramError(f"noise utterance {noise_utt!r}: {exc} (fix or remove it from the noise data dir)") from None
        start = int(rng.integers(len(noise)))
        utts.append(noise_utt)
        starts.append(start)
        signals.append(looped(noise, start, length))
    return utts, starts, signals


def main(argv=None):
    parser = ArgumentParser(prog="degrade_data_dir", description=__doc__)
    parser.add_argument("--noise-data", required=True, help="data dir of the babble talkers (no speaker of <src-dir>)")
    parser.add_argument("--snr-db", type=float, default=5.0, help="speech-to-babble ratio in dB")
    parser.add_argument("--num-talkers", type=int, default=3, help="talkers in the babble")
    parser.add_argument("--seed", type=int, default=1, help="seed of the draws")
    parser.add_argument("--sample-rate", type=int, default=16000, help="sample rate of both data dirs (Hz)")
    parser.add_argument("src")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    src, noise = DataDir(args.src), DataDir(args.noise_data)
    for data in (src, noise):
        for name in ("utt2spk", "wav.scp"):
            if not data.has(name):
                raise ProgramError(f"no such file: {data.file(name)}")
    if args.num_talkers < 1:
        raise ProgramError(f"--num-talkers must be >= 1, got {args.num_talkers}")
    trial_speakers = set(src.utt2spk.values())
    shared = sorted(trial_speakers & set(noise.utt2spk.values()))
    if shared:
        raise ProgramError(f"{args.noise_data} shares {len(shared)} speakers with {args.src} (e.g. {shared[0]!r}); "
                           "the babble must come from speakers outside the trial set: pick another --noise-data")
    spk2utt = noise.spk2utt
    speakers = sorted(spk2utt)
    if len(speakers) < args.num_talkers:
        raise ProgramError(f"{args.noise_data} has {len(speakers)} speakers, fewer than --num-talkers {args.num_talkers}")

    with open(src.file("utt2spk"), "rb") as handle:
        digest = hashlib.sha1(handle.read()).hexdigest()
    params = (f"noise_data={args.noise_data} snr_db={args.snr_db:g} num_talkers={args.num_talkers} seed={args.seed} "
              f"sample_rate={args.sample_rate} src={args.src} src_utt2spk_sha1={digest}\n")
    params_file = os.path.join(args.out, "degrade_params")
    if os.path.isfile(params_file) and os.path.isfile(os.path.join(args.out, "wav.scp")):
        with open(params_file, encoding="utf-8") as handle:
            if handle.read() == params:
                log.info("%s: made from %s with these options; kept", args.out, args.src)
                return 0
        log.info("%s: made with other options or from another %s/utt2spk; remaking it", args.out, args.src)

    opts = AudioOptions(sample_rate=args.sample_rate)
    speech_reader, noise_reader = AudioReader.from_data_dir(src, opts), AudioReader.from_data_dir(noise, opts)
    parent = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(args.out.rstrip("/")) + ".tmp.", dir=parent)
    try:
        os.makedirs(os.path.join(tmp, "wav"))
        wav_lines, mixing_lines, kept, skipped, clipped = [], [], set(), 0, 0
        for utt, speech, error in speech_reader.iter_with_errors():
            if error is not None:
                log.warning("skipping %s", error)
                skipped += 1
                continue
            noise_utts, starts, signals = draw_babble(utt, args.seed, speakers, spk2utt, args.num_talkers,
                                                      noise_reader, len(speech))
            # the weights as the record prints them, so that the record reproduces the audio exactly
            weights = [float(f"{w:.9g}") for w in babble_weights(speech, signals, args.snr_db)]
            mixture = speech.astype(np.float64) + sum(w * s.astype(np.float64) for w, s in zip(weights, signals))
            rounded = np.rint(mixture)
            clipped += int(np.count_nonzero((rounded > 32767) | (rounded < -32768)))
            sf.write(os.path.join(tmp, "wav", f"{utt}.wav"), np.clip(rounded, -32768, 32767).astype(np.int16),
                     args.sample_rate, subtype="PCM_16")
            wav_lines.append(f"{utt} {os.path.join(args.out, 'wav', utt + '.wav')}\n")
            mixing_lines.append(f"{utt} {args.snr_db:g} "
                                + " ".join(f"{n}:{s}:{w:.9g}" for n, s, w in zip(noise_utts, starts, weights)) + "\n")
            kept.add(utt)
        if not kept:
            raise ProgramError(f"{args.src}: no utterance could be read ({skipped} skipped)")
        atomic_write_text(os.path.join(tmp, "wav.scp"), "".join(wav_lines))
        atomic_write_text(os.path.join(tmp, "mixing"), "".join(mixing_lines))
        for name in CARRIED:
            if src.has(name):
                rows = [(utt, value) for utt, value in read_table(src.file(name)) if utt in kept]
                atomic_write_text(os.path.join(tmp, name), "".join(f"{u} {v}\n" for u, v in rows))
        if src.has("spk2utt"):
            rows = [(spk, [u for u in utts if u in kept]) for spk, utts in src.spk2utt.items()]
            atomic_write_text(os.path.join(tmp, "spk2utt"), "".join(f"{s} {' '.join(u)}\n" for s, u in rows if u))
        if src.has("trials"):
            with open(src.file("trials"), encoding="utf-8") as handle:
                lines = handle.readlines()
            trials = [line for line in lines if all(field in kept for field in line.split()[:2])]
            if len(trials) < len(lines):
                log.warning("%d of %d trials dropped with the skipped utterances", len(lines) - len(trials), len(lines))
            atomic_write_text(os.path.join(tmp, "trials"), "".join(trials))
        atomic_write_text(os.path.join(tmp, "degrade_params"), params)
        if os.path.isdir(args.out):
            shutil.rmtree(args.out)
        os.rename(tmp, args.out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("%s: %d of %d utterances of %s mixed with %d-talker babble of %s at %g dB (%d skipped, "
             "%d samples clipped)", args.out, len(kept), len(kept) + skipped, args.src, args.num_talkers,
             args.noise_data, args.snr_db, skipped, clipped)
    return 0


if __name__ == "__main__":
    run_main(main)
