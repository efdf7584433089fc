"""The degraded trial sets of the distillation study (sidkd.bin.degrade_data_dir): each utterance is its
clean source plus the recorded babble, recomputed here from the record with soundfile and plain
indexing; the babble sits at the asked SNR; no talker is a speaker of the trial set."""

import os

import numpy as np
import pytest
import soundfile as sf

from sidkd.bin.degrade_data_dir import main as degrade

RATE = 16000


def write_dir(root, name, lengths_by_speaker, rng):
    """A data dir of random 16-bit signals: {speaker: [length in samples, ...]}."""
    data = root / name
    (data / "wav").mkdir(parents=True)
    wav, utt2spk = [], []
    for spk, lengths in sorted(lengths_by_speaker.items()):
        for k, length in enumerate(lengths):
            utt = f"{spk}-u{k}"
            level = rng.uniform(500, 4000)  # talkers at different levels: the weights must even them out
            sf.write(str(data / "wav" / f"{utt}.wav"), np.rint(rng.standard_normal(length) * level).astype(np.int16),
                     RATE, subtype="PCM_16")
            wav.append(f"{utt} {data / 'wav' / (utt + '.wav')}\n")
            utt2spk.append(f"{utt} {spk}\n")
    (data / "wav.scp").write_text("".join(wav))
    (data / "utt2spk").write_text("".join(utt2spk))
    return data


@pytest.fixture
def dirs(tmp_path):
    rng = np.random.default_rng(0)
    src = write_dir(tmp_path, "test", {"a": [8000, 12000], "b": [9000, 7000], "c": [10000]}, rng)
    (src / "trials").write_text("a-u0 a-u1 target\na-u0 b-u0 nontarget\nb-u1 c-u0 nontarget\n")
    # some talkers shorter than the speech: they loop
    noise = write_dir(tmp_path, "noise", {"n1": [3000, 20000], "n2": [15000], "n3": [4000], "n4": [25000]}, rng)
    return src, noise, tmp_path / "out"


def read_int(path):
    samples, rate = sf.read(str(path), dtype="int16")
    assert rate == RATE
    return samples.astype(np.float64)


def parse_mixing(path):
    record = {}
    for line in open(path):
        utt, snr, *talkers = line.split()
        record[utt] = (float(snr), [(t.split(":")[0], int(t.split(":")[1]), float(t.split(":")[2])) for t in talkers])
    return record


def test_each_utterance_is_its_source_plus_the_recorded_babble(dirs):
    src, noise, out = dirs
    assert degrade(["--noise-data", str(noise), "--snr-db", "5", "--num-talkers", "3", "--seed", "7",
                    str(src), str(out)]) == 0
    record = parse_mixing(out / "mixing")
    noise_speaker = dict(line.split() for line in open(noise / "utt2spk"))
    trial_speakers = {line.split()[1] for line in open(src / "utt2spk")}
    assert sorted(record) == sorted(line.split()[0] for line in open(src / "utt2spk"))
    for utt, (snr, talkers) in record.items():
        assert snr == 5.0 and len(talkers) == 3
        speakers = [noise_speaker[n] for n, _, _ in talkers]
        assert len(set(speakers)) == 3 and not set(speakers) & trial_speakers
        speech = read_int(src / "wav" / f"{utt}.wav")
        parts = []
        for noise_utt, start, weight in talkers:
            signal = read_int(noise / "wav" / f"{noise_utt}.wav")
            assert 0 <= start < len(signal)
            parts.append(weight * np.array([signal[(start + t) % len(signal)] for t in range(len(speech))]))
        babble = np.sum(parts, axis=0)
        expected = np.clip(np.rint(speech + babble), -32768, 32767)
        got = read_int(out / "wav" / f"{utt}.wav")
        assert got.shape == speech.shape
        assert np.abs(got - expected).max() <= 1 and np.mean(got != expected) < 1e-3
        # the SNR asked for, and every talker at the same power
        assert 10 * np.log10(np.mean(speech ** 2) / np.mean(babble ** 2)) == pytest.approx(5.0, abs=1e-3)
        powers = [np.mean(p ** 2) for p in parts]
        assert max(powers) / min(powers) == pytest.approx(1.0, rel=1e-3)
    assert (out / "trials").read_text() == (src / "trials").read_text()
    assert (out / "utt2spk").read_text() == (src / "utt2spk").read_text()
    assert all(line.split()[1] == str(out / "wav" / f"{line.split()[0]}.wav") for line in open(out / "wav.scp"))


def test_draws_follow_the_seed_and_a_rerun_keeps_the_dir(dirs):
    src, noise, out = dirs
    args = ["--noise-data", str(noise), "--num-talkers", "2", str(src)]
    degrade(["--seed", "1", *args, str(out)])
    first = (out / "mixing").read_text()
    stamp = os.stat(out / "mixing").st_mtime_ns
    degrade(["--seed", "1", *args, str(out)])
    assert os.stat(out / "mixing").st_mtime_ns == stamp  # same options: kept, not remade
    degrade(["--seed", "1", *args, str(out.parent / "again")])
    assert (out.parent / "again" / "mixing").read_text() == first
    degrade(["--seed", "2", *args, str(out)])
    assert (out / "mixing").read_text() != first
    assert not [p for p in os.listdir(out.parent) if ".tmp." in p]


def test_noise_from_a_trial_speaker_is_refused(dirs, capsys):
    src, noise, out = dirs
    with open(noise / "utt2spk", "a") as handle:
        handle.write("zz-u0 b\n")
    with open(noise / "wav.scp", "a") as handle:
        handle.write(f"zz-u0 {src / 'wav' / 'b-u0.wav'}\n")
    with pytest.raises(Exception, match="shares 1 speakers .*'b'.*outside the trial set"):
        degrade(["--noise-data", str(noise), str(src), str(out)])
    assert not out.exists()
