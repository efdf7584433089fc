import os

import numpy as np
import pytest
import soundfile as sf

from sidkd.errors import DataError
from sidkd.io.audio import AudioOptions, AudioReader, read_audio
from tests.conftest import tone


def pcm16(x):
    return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("fmt,ext", [("WAV", ".wav"), ("FLAC", ".flac")])
def test_lossless_reads_exact_int16_values(tmp_path, fmt, ext):
    samples = pcm16(tone(0.2))
    path = str(tmp_path / f"a{ext}")
    sf.write(path, samples, 16000, format=fmt, subtype="PCM_16")
    out = read_audio(path)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, samples.astype(np.float32))


def test_ogg_vorbis_and_real_opus(tmp_path, corpora):
    path = str(tmp_path / "a.ogg")
    sf.write(path, tone(0.3), 16000, format="OGG", subtype="VORBIS")
    out = read_audio(path)
    assert abs(out.size - 4800) < 200 and np.abs(out).max() > 5000
    opus = os.path.join(corpora, "speechocean762", "0001", "000010011.opus")
    x = read_audio(opus)
    # Decoded float * 32768, rounded: whole numbers on the 16-bit scale.
    assert x.size > 16000 and np.all(x == np.round(x)) and np.abs(x).max() <= 32768


def test_pipe_and_failing_pipe(tmp_path):
    samples = pcm16(tone(0.1))
    path = str(tmp_path / "a.wav")
    sf.write(path, samples, 16000, subtype="PCM_16")
    np.testing.assert_array_equal(read_audio(f"cat {path} |"), samples)
    with pytest.raises(DataError, match=r"utterance 'u1' .*exited with status 3.*boom"):
        read_audio("echo boom >&2; exit 3 |", key="u1")
    with pytest.raises(DataError, match="wrote no audio"):
        read_audio("true |")


def test_missing_empty_and_non_audio_files(tmp_path):
    with pytest.raises(DataError, match=r"'u' .*no such file"):
        read_audio(str(tmp_path / "missing.wav"), key="u")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="0 bytes"):
        read_audio(str(empty))
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    with pytest.raises(DataError, match="cannot decode audio"):
        read_audio(str(text))


def test_sample_rate_mismatch_is_error_unless_resampling(tmp_path):
    path = str(tmp_path / "a8k.wav")
    sf.write(path, pcm16(tone(0.5, rate=8000)), 8000, subtype="PCM_16")
    with pytest.raises(DataError, match="sample rate 8000 Hz, expected 16000 Hz"):
        read_audio(path)
    out = read_audio(path, AudioOptions(resample=True))
    assert out.size == 8000
    # The 440 Hz tone survives resampling: its spectrum peaks at 440 Hz on the new 16 kHz scale.
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 16000 / out.size - 440) < 5


def test_stereo_channel_rule(tmp_path, caplog):
    left, right = pcm16(tone(0.1, freq=300)), pcm16(tone(0.1, freq=900, seed=1))
    path = str(tmp_path / "st.wav")
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="PCM_16")
    np.testing.assert_array_equal(read_audio(path), left)  # Kaldi's default: channel 0, warned
    assert "2 channels" in caplog.text
    np.testing.assert_array_equal(read_audio(path, AudioOptions(channel=1)), right)
    with pytest.raises(DataError, match="channel 2 requested but the audio has 2"):
        read_audio(path, AudioOptions(channel=2))


def test_reader_segments_and_errors(tmp_path):
    samples = pcm16(tone(2.0))
    sf.write(str(tmp_path / "r1.wav"), samples, 16000, subtype="PCM_16")
    (tmp_path / "wav.scp").write_text(f"r1 {tmp_path}/r1.wav\nr2 {tmp_path}/gone.wav\n")
    (tmp_path / "segments").write_text(
        "a r1 0.0 0.5\nb r1 0.5 -1\nc r1 1.8 2.3\nd r1 1.0 3.0\ne r2 0 1\nf r9 0 1\n"
    )
    reader = AudioReader.from_data_dir(str(tmp_path))
    got = {u: (s, e) for u, s, e in reader.iter_with_errors()}
    np.testing.assert_array_equal(got["a"][0], samples[:8000])
    np.testing.assert_array_equal(got["b"][0], samples[8000:])
    # Ends 0.3 s past the recording: within the overshoot allowance, cut at the end.
    np.testing.assert_array_equal(got["c"][0], samples[28800:])
    assert "beyond the end of recording 'r1'" in str(got["d"][1])
    assert got["e"][0] is None and "no such file" in str(got["e"][1])
    assert "recording 'r9' is not in" in str(got["f"][1])
    with pytest.raises(DataError, match="beyond the end"):
        reader.read("d")
    np.testing.assert_array_equal(reader.read("a"), samples[:8000])


def _riff_wav(data: bytes, declared: int, extra_chunk: bytes = b"") -> bytes:
    """A 16-bit mono 16 kHz WAV written out by hand: RIFF header, an optional chunk, fmt, data."""
    import struct

    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, 16000, 32000, 2, 16)
    body = b"WAVE" + extra_chunk + fmt + struct.pack("<4sI", b"data", declared) + data
    return struct.pack("<4sI", b"RIFF", len(body)) + body


@pytest.mark.parametrize("extra", [b"", b"LIST\x05\x00\x00\x00INFOx\x00"])  # an odd-sized chunk is padded
def test_truncated_wav_is_an_error_naming_the_frames(tmp_path, extra):
    samples = pcm16(tone(0.1)).tobytes()  # 1600 frames
    whole = tmp_path / "whole.wav"
    whole.write_bytes(_riff_wav(samples, len(samples), extra))
    assert read_audio(str(whole)).size == 1600
    cut = tmp_path / "cut.wav"
    cut.write_bytes(_riff_wav(samples[:100], len(samples), extra))  # the header still promises 1600
    with pytest.raises(DataError, match=r"cut.wav: truncated: the header promises 1600 sample frames, the file holds 50;"
                                        r" the file is broken"):
        read_audio(str(cut))
    # through a pipe too
    with pytest.raises(DataError, match="truncated: the header promises 1600 sample frames, the file holds 50"):
        read_audio(f"cat {cut} |")
    # a streaming writer's unknown size (0xFFFFFFFF) is not a promise
    stream = tmp_path / "stream.wav"
    stream.write_bytes(_riff_wav(samples, 0xFFFFFFFF, extra))
    assert read_audio(str(stream)).size > 0


def test_a_real_wav_cut_after_100_bytes_is_refused(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(str(path), pcm16(tone(1.0)), 16000, subtype="PCM_16")
    (tmp_path / "b.wav").write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="b.wav: truncated: the header promises 16000 sample frames, the file holds 28"):
        read_audio(str(tmp_path / "b.wav"))


def test_decode_with_fewer_frames_than_declared_is_an_error(tmp_path, monkeypatch):
    import sidkd.io.audio as audio

    class ShortDecoder:  # a decoder that stops early, as some damaged compressed files do
        frames, samplerate = 100, 16000

        def __init__(self, data):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, dtype, always_2d):
            return np.zeros((60, 1))

    path = tmp_path / "x.flac"
    path.write_bytes(b"whatever")
    monkeypatch.setattr(audio.sf, "SoundFile", ShortDecoder)
    with pytest.raises(DataError, match="x.flac: decoded 60 sample frames, the header declares 100"):
        read_audio(str(path))


def test_require_mono_makes_several_channels_an_error(tmp_path):
    stereo = np.stack([pcm16(tone(0.2)), pcm16(tone(0.2, freq=300))], axis=1)
    path = str(tmp_path / "st.wav")
    sf.write(path, stereo, 16000, subtype="PCM_16")
    with pytest.raises(DataError, match=r"st.wav: 2 channels, expected mono: choose one with --channel N \(0 to 1\)"):
        read_audio(path, AudioOptions(require_mono=True))
    np.testing.assert_array_equal(read_audio(path, AudioOptions(require_mono=True, channel=1)), stereo[:, 1])
