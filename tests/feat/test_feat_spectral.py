"""sidkd MFCC / fbank against kaldi-native-fbank (the reference; used only here and in bench/)."""

import glob
import os

import kaldi_native_fbank as knf
import numpy as np
import pytest

from sidkd.errors import DataError
from sidkd.feat import FbankOptions, MfccOptions, compute_fbank, compute_mfcc
from sidkd.io.audio import read_audio
from tests.conftest import CORPORA

CORPORA = CORPORA


def knf_features(samples, opts):
    """The same features through kaldi-native-fbank, option by option."""
    is_mfcc = isinstance(opts, MfccOptions)
    k = knf.MfccOptions() if is_mfcc else knf.FbankOptions()
    f = k.frame_opts
    f.samp_freq = opts.sample_frequency
    f.frame_shift_ms = opts.frame_shift
    f.frame_length_ms = opts.frame_length
    f.dither = opts.dither
    f.preemph_coeff = opts.preemphasis_coefficient
    f.remove_dc_offset = opts.remove_dc_offset
    f.window_type = opts.window_type
    f.round_to_power_of_two = opts.round_to_power_of_two
    f.blackman_coeff = opts.blackman_coeff
    f.snip_edges = opts.snip_edges
    k.mel_opts.num_bins = opts.num_mel_bins
    k.mel_opts.low_freq = opts.low_freq
    k.mel_opts.high_freq = opts.high_freq
    k.use_energy = opts.use_energy
    k.raw_energy = opts.raw_energy
    k.energy_floor = opts.energy_floor
    if is_mfcc:
        k.num_ceps = opts.num_ceps
        k.cepstral_lifter = opts.cepstral_lifter
        computer = knf.OnlineMfcc(k)
    else:
        k.use_log_fbank = opts.use_log_fbank
        k.use_power = opts.use_power
        computer = knf.OnlineFbank(k)
    computer.accept_waveform(opts.sample_frequency, np.asarray(samples, dtype=np.float32).tolist())
    computer.input_finished()
    rows = [computer.get_frame(i) for i in range(computer.num_frames_ready)]
    return np.array(rows, dtype=np.float32).reshape(len(rows), computer.dim)


def assert_close_to_knf(ours, ref, what):
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} vs kaldi-native-fbank {ref.shape}"
    assert ours.dtype == np.float32
    if ours.size == 0:
        return
    diff = np.abs(ours.astype(np.float64) - ref)
    within = np.mean(diff <= 2e-3)
    assert within >= 0.999, f"{what}: only {within:.4%} within 2e-3 (max {diff.max():.3g})"
    assert diff.max() <= 2e-2, f"{what}: max abs difference {diff.max():.3g}"


def corpus_files():
    files = sorted(glob.glob(os.path.join(CORPORA, "speechocean762", "0001", "*.opus")))[:2]
    files += sorted(glob.glob(os.path.join(CORPORA, "speechcommands", "03401e93", "*.flac")))[:2]
    files += sorted(glob.glob(os.path.join(CORPORA, "librispeech_subset", "*", "*.opus")))[:1]
    assert len(files) == 5, f"expected corpus files under {CORPORA}"
    return files


@pytest.fixture(scope="module")
def signals():
    return [(os.path.relpath(f, CORPORA), read_audio(f)) for f in corpus_files()]


REFERENCE_MFCC = [  # conf/mfcc.conf's values (Kaldi's voxceleb v1 MFCCs) with dither 0
    "--num-mel-bins=30", "--num-ceps=24", "--low-freq=20", "--high-freq=7600", "--snip-edges=false",
]
MFCC_GRID = [
    [],
    REFERENCE_MFCC,
    ["--num-mel-bins=40", "--num-ceps=40", "--cepstral-lifter=0", "--high-freq=-400", "--window-type=hamming"],
    ["--use-energy=false", "--window-type=hanning", "--round-to-power-of-two=false", "--preemphasis-coefficient=0"],
    ["--raw-energy=false", "--energy-floor=1.0", "--remove-dc-offset=false", "--window-type=rectangular",
     "--snip-edges=false", "--frame-length=20", "--frame-shift=12.5"],
    ["--window-type=blackman", "--low-freq=100", "--high-freq=4000", "--num-mel-bins=23"],
]
FBANK_GRID = [
    [],
    ["--num-mel-bins=80", "--snip-edges=false", "--high-freq=-200"],
    ["--use-energy=true", "--raw-energy=false", "--window-type=hamming", "--num-mel-bins=40"],
    ["--use-power=false", "--use-energy=true", "--energy-floor=2.0", "--snip-edges=false"],
]


@pytest.mark.parametrize("args", MFCC_GRID, ids=lambda a: " ".join(a) or "defaults")
def test_mfcc_matches_knf_on_real_speech(signals, args):
    opts = MfccOptions.from_args(["--dither=0"] + args)
    for name, x in signals:
        assert_close_to_knf(compute_mfcc(x, opts), knf_features(x, opts), f"{name} {args}")


@pytest.mark.parametrize("args", FBANK_GRID, ids=lambda a: " ".join(a) or "defaults")
def test_fbank_matches_knf_on_real_speech(signals, args):
    opts = FbankOptions.from_args(["--dither=0"] + args)
    for name, x in signals:
        assert_close_to_knf(compute_fbank(x, opts), knf_features(x, opts), f"{name} {args}")


def edge_signals():
    rng = np.random.default_rng(7)
    speechlike = rng.standard_normal(16000) * 3000.0
    t = np.arange(8000) / 16000.0
    clipped = np.clip(60000.0 * np.sin(2 * np.pi * 440.0 * t), -32768, 32767)
    # (Broadband noise after the silence: a pure tone would leave mel bands whose energy is
    # float32 rounding noise, where kaldi-native-fbank's float32 FFT has no reference value.)
    silence_then_noise = np.concatenate([np.zeros(4000), np.rint(speechlike[:4000])])
    return {
        "shorter_than_frame_50": speechlike[:50],
        "shorter_than_frame_130": speechlike[:130],
        "shorter_than_frame_399": speechlike[:399],
        "exactly_one_frame": speechlike[:400],
        "one_frame_plus_shift": speechlike[:560],
        "digital_silence": np.zeros(3200),
        "silence_then_noise": silence_then_noise,
        "clipped": np.rint(clipped),
        "dc_only": np.full(1600, 1234.0),
    }


@pytest.mark.parametrize("name", list(edge_signals()))
@pytest.mark.parametrize("snip_edges", ["true", "false"])
@pytest.mark.parametrize("energy_floor", ["0", "1.0"])
def test_edge_cases_match_knf(name, snip_edges, energy_floor):
    x = edge_signals()[name].astype(np.float32)
    common = ["--dither=0", f"--snip-edges={snip_edges}", f"--energy-floor={energy_floor}"]
    mfcc = MfccOptions.from_args(common + REFERENCE_MFCC[:-1])
    assert_close_to_knf(compute_mfcc(x, mfcc), knf_features(x, mfcc), f"mfcc {name}")
    fbank = FbankOptions.from_args(common + ["--use-energy=true", "--num-mel-bins=40"])
    assert_close_to_knf(compute_fbank(x, fbank), knf_features(x, fbank), f"fbank {name}")


def test_frame_counts_follow_kaldi_rules():
    snip = MfccOptions.from_args(["--dither=0"])
    centred = MfccOptions.from_args(["--dither=0", "--snip-edges=false"])
    for n in (0, 79, 80, 399, 400, 559, 560, 16000, 16079, 16080):
        x = np.ones(n, dtype=np.float32)
        assert compute_mfcc(x, snip).shape == (0 if n < 400 else 1 + (n - 400) // 160, 13)
        assert compute_mfcc(x, centred).shape == ((n + 80) // 160, 13)


def test_digital_silence_gives_floors():
    x = np.zeros(1600, dtype=np.float32)
    fb = compute_fbank(x, FbankOptions.from_args(["--dither=0", "--use-energy=true"]))
    assert np.allclose(fb, np.log(np.finfo(np.float32).eps))
    mfcc = compute_mfcc(x, MfccOptions.from_args(["--dither=0", "--energy-floor=2.0"]))
    assert np.allclose(mfcc[:, 0], np.log(2.0))


def test_dither_is_seeded_and_small():
    x = read_audio(corpus_files()[0])
    a = compute_mfcc(x, MfccOptions.from_args(["--dither=1.0", "--dither-seed=3"]))
    b = compute_mfcc(x, MfccOptions.from_args(["--dither=1.0", "--dither-seed=3"]))
    c = compute_mfcc(x, MfccOptions.from_args(["--dither=1.0", "--dither-seed=4"]))
    clean = compute_mfcc(x, MfccOptions.from_args(["--dither=0"]))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # Dither of one LSB barely moves speech frames.
    assert np.median(np.abs(a - clean)) < 0.05


def test_options_parse_like_kaldi(tmp_path):
    conf = tmp_path / "mfcc.conf"
    conf.write_text("# comment\n--num-mel-bins=30  # trailing\n--snip-edges=false\n\n--high-freq=-400\n")
    opts = MfccOptions.from_config(str(conf), ["--num-mel-bins=40"])
    assert (opts.num_mel_bins, opts.snip_edges, opts.high_freq) == (40, False, -400.0)
    assert MfccOptions.from_args(opts.to_args()) == opts
    with pytest.raises(DataError, match="unknown option --num-bins"):
        MfccOptions.from_args(["--num-bins=30"])
    with pytest.raises(DataError, match="num-ceps"):
        MfccOptions.from_args(["--num-ceps=40"])
    with pytest.raises(DataError, match="mel range"):
        FbankOptions.from_args(["--high-freq=9000"])
    with pytest.raises(DataError, match="true or false"):
        FbankOptions.from_args(["--snip-edges=maybe"])


def test_block_processing_matches_knf(signals, monkeypatch):
    # Long recordings are processed BLOCK_FRAMES frames at a time; block edges must not show.
    import sidkd.feat.spectral as spectral

    monkeypatch.setattr(spectral, "BLOCK_FRAMES", 37)
    name, x = max(signals, key=lambda item: len(item[1]))
    opts = MfccOptions.from_args(["--dither=0"] + REFERENCE_MFCC)
    assert len(x) > 10 * 37 * 160
    assert_close_to_knf(compute_mfcc(x, opts), knf_features(x, opts), f"{name} in blocks")
    dithered = MfccOptions.from_args(["--dither=1", "--dither-seed=5"] + REFERENCE_MFCC)
    assert compute_mfcc(x, dithered).shape == compute_mfcc(x, opts).shape
