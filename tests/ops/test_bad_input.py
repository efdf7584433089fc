"""Bad input across the feature and back-end programs: each case is a clear error naming the
file/key, or a skip that is logged with the key and counted, and the counts add up (in = out + skipped).
The table of cases is in docs/bad_input.md; the rows here are the same cases.

Per-utterance problems go through one data dir (one run per program, then every row is checked
against the programs' logs and outputs); whole-input problems are one run each.
"""

import os
import re
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import soundfile

from tests.conftest import CORPORA, REPO_ROOT, tone

RATE = 16000
CONF = os.path.join(REPO_ROOT, "conf")


def write_wav(path, samples, rate=RATE):
    soundfile.write(str(path), samples, rate, subtype="PCM_16")
    return str(path)


# Each maker gets the work folder and returns the wav.scp value of the utterance.
def good_corpus_file(d):
    return os.path.join(CORPORA, "speechcommands", "03401e93", "left_0.flac")


def good_tone(d):
    return write_wav(d / "tone.wav", tone(1.0))


def missing_file(d):
    return str(d / "does_not_exist.wav")


def zero_bytes(d):
    (d / "zero.wav").write_bytes(b"")
    return str(d / "zero.wav")


def corrupt_header(d):
    data = bytearray(open(write_wav(d / "c.wav", tone(0.5)), "rb").read())
    data[8:16] = b"XXXXXXXX"  # "WAVEfmt " destroyed
    (d / "corrupt.wav").write_bytes(bytes(data))
    return str(d / "corrupt.wav")


def not_audio(d):
    (d / "notes.wav").write_text("these are meeting notes, not audio\n" * 20)
    return str(d / "notes.wav")


def eight_khz(d):
    return write_wav(d / "8k.wav", tone(1.0, rate=8000), rate=8000)


def stereo(d):
    return write_wav(d / "stereo.wav", np.stack([tone(1.0), tone(1.0, freq=200.0, seed=1)], axis=1))


def clip_100ms(d):
    return write_wav(d / "short.wav", tone(0.1))


def clip_3ms(d):
    return write_wav(d / "tiny.wav", tone(0.003))


def silence(d):
    return write_wav(d / "silence.wav", np.zeros(RATE))


def failing_pipe(d):
    return "sh -c 'echo decoder crashed >&2; exit 3' |"


def working_pipe(d):
    return f"cat {good_tone(d)} |"


# utt, case, wav.scp value, what compute_mfcc_feats does, what select_voiced_frames does (after
# compute_vad), message expected in the log line naming the utterance.
AUDIO_CASES = [
    ("u01-good", "good audio (corpus file)", good_corpus_file, "ok", "ok", None),
    ("u02-missing", "missing file", missing_file, "skip", "-", r"no such file"),
    ("u03-zero", "zero-byte file", zero_bytes, "skip", "-", r"file is empty \(0 bytes\)"),
    ("u04-corrupt", "corrupt header", corrupt_header, "skip", "-", r"cannot decode audio"),
    ("u05-notaudio", "non-audio file", not_audio, "skip", "-", r"cannot decode audio"),
    ("u06-8k", "8 kHz file, 16 kHz recipe", eight_khz, "skip", "-", r"sample rate 8000 Hz, expected 16000 Hz, set by --sample-frequency \(the recipe's conf/mfcc.conf, "
     r"or ./run.sh --sample-rate <Hz>\): resample the audio to 16000 Hz, or work at 8000 Hz"),
    ("u07-stereo", "stereo file", stereo, "ok", "ok", r"has 2 channels; using channel 0"),
    ("u08-short", "0.1 s clip", clip_100ms, "ok", "ok", None),
    ("u09-tiny", "3 ms clip", clip_3ms, "skip", "-", r"shorter than one frame"),
    ("u10-silence", "digital silence (VAD empties it)", silence, "ok", "skip", r"no voiced frame"),
    ("u11-pipefail", "pipe command that fails", failing_pipe, "skip", "-", r"command exited with status 3: decoder crashed"),
    ("u12-pipe", "pipe command that works", working_pipe, "ok", "ok", None),
]

# Segments of one 1-s recording (Kaldi's extract-segments allows 0.5 s overshoot).
SEGMENT_CASES = [
    ("s1-inside", "segment inside the recording", 0.0, 0.5, "ok", None),
    ("s2-overshoot", "segment 0.2 s past the end (cut)", 0.5, 1.2, "ok", None),
    ("s3-past", "segment ending 0.9 s past the end", 0.6, 1.9, "skip", r"beyond the end of recording 'rec1'"),
    ("s4-after", "segment starting after the end", 1.5, 2.0, "skip", r"starts at 1.500 s, recording 'rec1' lasts 1.000 s"),
]


def env():
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])
    return dict(os.environ, PYTHONPATH=REPO_ROOT, PATH=path, LC_ALL="C", OMP_NUM_THREADS="1")


def program(name, *args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", f"sidkd.bin.{name}", *map(str, args)], cwd=cwd, env=env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    return proc.returncode, proc.stdout


def done_counts(log):
    match = re.search(r"Done: (\d+) utterances in, (\d+) written, (\d+) skipped", log)
    assert match, log
    return tuple(int(x) for x in match.groups())


def skip_lines(log):
    return dict(re.findall(r"^WARNING \(\S+\) skipping utterance (\S+): (.*)$", log, re.M))


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad_audio")
    (d / "wav.scp").write_text("".join(f"{utt} {make(d)}\n" for utt, _, make, *_ in AUDIO_CASES))
    mfcc = program("compute_mfcc_feats", f"--config={CONF}/mfcc.conf", "--max-fail-fraction=1",
                   f"scp:{d}/wav.scp", f"ark,scp:{d}/feats.ark,{d}/feats.scp")
    vad = program("compute_vad", f"--config={CONF}/vad.conf", f"scp:{d}/feats.scp", f"ark,scp:{d}/vad.ark,{d}/vad.scp")
    voiced = program("select_voiced_frames", f"scp:{d}/feats.scp", f"scp:{d}/vad.scp", f"ark,scp:{d}/voiced.ark,{d}/voiced.scp")
    rec = write_wav(d / "rec1.wav", tone(1.0))
    (d / "rec.scp").write_text(f"rec1 {rec}\n")
    (d / "segments").write_text("".join(f"{u} rec1 {s} {e}\n" for u, _, s, e, *_ in SEGMENT_CASES))
    seg = program("compute_mfcc_feats", f"--config={CONF}/mfcc.conf", "--max-fail-fraction=1", f"--segments={d}/segments",
                  f"scp:{d}/rec.scp", f"ark,scp:{d}/seg.ark,{d}/seg.scp")
    return d, {"mfcc": mfcc, "vad": vad, "voiced": voiced, "segments": seg}


@pytest.mark.parametrize("utt, case, make, at_mfcc, at_select, message", AUDIO_CASES, ids=[c[1] for c in AUDIO_CASES])
def test_audio_case(audio_run, utt, case, make, at_mfcc, at_select, message):
    d, runs = audio_run
    (status, mfcc_log), (_, voiced_log) = runs["mfcc"], runs["voiced"]
    assert status == 0, mfcc_log
    feats = kaldiio.load_scp(str(d / "feats.scp"))
    voiced = kaldiio.load_scp(str(d / "voiced.scp"))
    if at_mfcc == "skip":
        assert utt not in feats
        assert re.search(message, skip_lines(mfcc_log)[utt]), mfcc_log
        return
    assert utt in feats and np.all(np.isfinite(feats[utt]))
    if message and at_select == "ok":  # processed with a warning that names the utterance
        assert re.search(rf"^WARNING .*'{utt}'.*{message}", mfcc_log, re.M), mfcc_log
    if at_select == "skip":
        assert utt not in voiced and re.search(message, skip_lines(voiced_log)[utt]), voiced_log
    else:
        assert utt in voiced and voiced[utt].shape[0] > 0


def test_audio_counts_add_up(audio_run):
    d, runs = audio_run
    num_in, num_out, num_skipped = done_counts(runs["mfcc"][1])
    skipped_mfcc = [c[0] for c in AUDIO_CASES if c[3] == "skip"]
    assert (num_in, num_out, num_skipped) == (len(AUDIO_CASES), len(AUDIO_CASES) - len(skipped_mfcc), len(skipped_mfcc))
    assert sorted(skip_lines(runs["mfcc"][1])) == sorted(skipped_mfcc)
    assert len(kaldiio.load_scp(str(d / "feats.scp"))) == num_out
    status, vad_log = runs["vad"]
    assert status == 0 and f"Done: {num_out} utterances, 0 skipped" in vad_log, vad_log
    sel_in, sel_out, sel_skipped = done_counts(runs["voiced"][1])
    assert sel_in == num_out and sel_in == sel_out + sel_skipped
    assert sel_skipped == sum(c[4] == "skip" for c in AUDIO_CASES)
    assert len(kaldiio.load_scp(str(d / "voiced.scp"))) == sel_out


@pytest.mark.parametrize("utt, case, start, end, outcome, message", SEGMENT_CASES, ids=[c[1] for c in SEGMENT_CASES])
def test_segment_case(audio_run, utt, case, start, end, outcome, message):
    d, runs = audio_run
    status, log = runs["segments"]
    assert status == 0, log
    feats = kaldiio.load_scp(str(d / "seg.scp"))
    if outcome == "skip":
        assert utt not in feats and re.search(message, skip_lines(log)[utt]), log
    else:
        frames = round((min(end, 1.0) - start) * 100)  # snip-edges=false: one frame per 10 ms
        assert feats[utt].shape[0] == frames
    num_skipped = sum(c[4] == "skip" for c in SEGMENT_CASES)
    assert done_counts(log) == (len(SEGMENT_CASES), len(SEGMENT_CASES) - num_skipped, num_skipped)


# Whole-input problems: the program stops with one ERROR line naming the file and line or key.
def dup_wav_scp(d):
    good = good_tone(d)
    (d / "wav.scp").write_text(f"a {good}\nb {good}\nb {good}\n")
    return "compute_mfcc_feats", [f"--config={CONF}/mfcc.conf", f"scp:{d}/wav.scp", f"ark:{d}/f.ark"]


def unsorted_wav_scp(d):
    good = good_tone(d)
    (d / "wav.scp").write_text(f"b {good}\na {good}\n")
    return "compute_mfcc_feats", [f"--config={CONF}/mfcc.conf", f"scp:{d}/wav.scp", f"ark:{d}/f.ark"]


def empty_wav_scp(d):
    (d / "wav.scp").write_text("")
    return "compute_mfcc_feats", [f"--config={CONF}/mfcc.conf", f"scp:{d}/wav.scp", f"ark:{d}/f.ark"]


def feature_archive(d, values, name="in.ark"):
    with kaldiio.WriteHelper(f"ark:{d}/{name}") as writer:
        for key, value in values:
            writer[key] = value


def nan_in_features(d):
    good = np.random.default_rng(0).normal(size=(20, 24)).astype(np.float32)
    bad = good.copy()
    bad[7, 0] = np.nan
    feature_archive(d, [("a", good), ("b", bad)])
    return "compute_vad", [f"ark:{d}/in.ark", f"ark,scp:{d}/vad.ark,{d}/vad.scp"]


def inf_in_features_select(d):
    good = np.random.default_rng(0).normal(size=(20, 24)).astype(np.float32)
    bad = good.copy()
    bad[3, 5] = np.inf
    feature_archive(d, [("a", good), ("b", bad)])
    feature_archive(d, [("a", np.ones(20, np.float32)), ("b", np.ones(20, np.float32))], "vad.ark")
    return "select_voiced_frames", [f"ark:{d}/in.ark", f"ark:{d}/vad.ark", f"ark:{d}/out.ark"]


def dup_keys_in_archive(d):
    good = np.random.default_rng(0).normal(size=(20, 24)).astype(np.float32)
    feature_archive(d, [("a", good), ("b", good), ("b", good)])
    return "compute_vad", [f"ark:{d}/in.ark", f"ark,scp:{d}/vad.ark,{d}/vad.scp"]


def failing_feature_pipe(d):
    return "compute_vad", ["ark:sh -c 'echo reader crashed >&2; exit 3' |", f"ark,scp:{d}/vad.ark,{d}/vad.scp"]


def truncated_archive(d):
    good = np.random.default_rng(0).normal(size=(200, 24)).astype(np.float32)
    feature_archive(d, [("a", good), ("b", good)], "whole.ark")
    data = (d / "whole.ark").read_bytes()
    (d / "in.ark").write_bytes(data[: len(data) * 3 // 4])  # as a job killed while writing leaves it
    return "compute_vad", [f"ark:{d}/in.ark", f"ark,scp:{d}/vad.ark,{d}/vad.scp"]


def vectors(d, keys, bad_key=None):
    rng = np.random.default_rng(1)
    with kaldiio.WriteHelper(f"ark,scp:{d}/v.ark,{d}/v.scp") as writer:
        for key in keys:
            value = rng.normal(size=8).astype(np.float32)
            if key == bad_key:
                value[2] = np.inf
            writer[key] = value


def trials_unknown_key(d):
    vectors(d, ["a", "b", "c"])
    (d / "trials").write_text("a b target\na zz nontarget\nb c nontarget\n")
    return "score_cosine", [f"scp:{d}/v.scp", f"scp:{d}/v.scp", f"{d}/trials", f"{d}/scores"]


def inf_in_vectors(d):
    vectors(d, ["a", "b", "c"], bad_key="c")
    (d / "trials").write_text("a b target\nb c nontarget\n")
    return "score_cosine", [f"scp:{d}/v.scp", f"scp:{d}/v.scp", f"{d}/trials", f"{d}/scores"]


def utt2spk_without_audio(d):
    data = d / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"a {good_tone(d)}\n")
    (data / "utt2spk").write_text("a s1\nb s1\n")
    (data / "spk2utt").write_text("s1 a b\n")
    return "validate_data_dir", ["--check-audio-files=false", "--feats=false", "--text=false", str(data)]


# case, set-up, regex of the ERROR line, files that must not exist afterwards (no half output).
ERROR_CASES = [
    ("duplicate keys in wav.scp", dup_wav_scp, r"wav.scp:3: duplicate key 'b'", ["f.ark"]),
    ("unsorted wav.scp", unsorted_wav_scp, r"wav.scp:2: not sorted \(C locale\): 'a' comes after 'b'", ["f.ark"]),
    ("empty wav.scp (empty data dir)", empty_wav_scp, r"wav.scp: file is empty", ["f.ark"]),
    ("NaN in a feature archive", nan_in_features, r"in.ark.*: b: contains NaN or inf", ["vad.ark", "vad.scp"]),
    ("inf in features given to select_voiced_frames", inf_in_features_select, r"in.ark.*: b: contains NaN or inf", ["out.ark"]),
    ("duplicate keys in a feature archive", dup_keys_in_archive, r"in.ark.*: duplicate key 'b'", ["vad.ark", "vad.scp"]),
    ("feature pipe command that fails", failing_feature_pipe, r"exit 3' \|: the command exited with status 3", ["vad.ark", "vad.scp"]),
    ("truncated archive", truncated_archive, r"cannot read 'ark:.*in.ark'", ["vad.ark", "vad.scp"]),
    ("trials with unknown keys", trials_unknown_key, r"v.scp: no vector for 1 test utterances named in the trials: zz", ["scores"]),
    ("inf in a vector archive", inf_in_vectors, r"v.scp.*: c: contains NaN or inf", ["scores"]),
    ("utt2spk names an utterance without audio", utt2spk_without_audio, r"'b'", []),
]


@pytest.mark.parametrize("case, setup, message, absent", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_error_case(tmp_path, case, setup, message, absent):
    name, args = setup(tmp_path)
    status, log = program(name, *args)
    assert status == 1, log
    errors = [line for line in log.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and re.search(message, errors[0]), log
    for file in absent:
        assert not (tmp_path / file).exists(), f"{file} written although the program failed"
    assert not [f for f in os.listdir(tmp_path) if ".tmp." in f], "temporary files left behind"


def test_empty_data_dir_stops_make_mfcc(tmp_path):
    for item in ("steps", "utils", "conf", "sidkd", "path.sh"):
        os.symlink(os.path.join(REPO_ROOT, item), tmp_path / item)
    data = tmp_path / "data" / "empty"
    data.mkdir(parents=True)
    for name in ("wav.scp", "utt2spk", "spk2utt"):
        (data / name).write_text("")
    proc = subprocess.run(["steps/make_mfcc.sh", "--nj", "1", "data/empty"], cwd=tmp_path, env=env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert proc.returncode != 0
    assert "data/empty/utt2spk: file is empty" in proc.stdout, proc.stdout
    assert not (data / "feats.scp").exists()


def test_a_rebuilt_data_dir_keeps_nothing_of_a_failed_run(tmp_path):
    """Stage 0 after a failed stage 1 (issue 26): the empty feats.scp, utt2num_frames and split dirs
    the failed run left are gone, with a log line; the rebuilt dir validates as a fresh one."""
    from tests.recipe.tiny_corpus import make_tiny_corpora

    for item in ("local", "utils", "path.sh"):
        os.symlink(os.path.join(REPO_ROOT, item), tmp_path / item)
    make_tiny_corpora(CORPORA, str(tmp_path / "corpora"), so_train=2, so_test=2, sc_train=2, sc_test=2, utts=3)
    command = ["local/prepare_data.sh", "--corpus-root", "corpora", "data"]

    def prepare():
        proc = subprocess.run(command, cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stderr

    prepare()
    train = tmp_path / "data" / "train"
    for name in ("feats.scp", "utt2num_frames", "vad.scp"):
        (train / name).write_text("")  # what a stage 1 that failed on every utterance leaves
    (train / "split2" / "1").mkdir(parents=True)
    log = prepare()
    assert "removing the earlier data/train (features and all" in log
    assert sorted(os.listdir(train)) == ["spk2utt", "utt2spk", "wav.scp"]
    proc = subprocess.run(["utils/validate_data_dir.sh", "--no-feats", "--no-text", "data/train"], cwd=tmp_path,
                          env=env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_a_data_dir_at_another_rate_stops_make_mfcc_saying_what_to_change(tmp_path):
    for item in ("steps", "utils", "conf", "sidkd", "path.sh"):
        os.symlink(os.path.join(REPO_ROOT, item), tmp_path / item)
    data = tmp_path / "data" / "eight"
    data.mkdir(parents=True)
    for i in range(2):
        (tmp_path / f"w{i}").mkdir()
    files = [eight_khz(tmp_path / f"w{i}") for i in range(2)]
    (data / "wav.scp").write_text("".join(f"u{i} {f}\n" for i, f in enumerate(files)))
    (data / "utt2spk").write_text("u0 s\nu1 s\n")
    (data / "spk2utt").write_text("s u0 u1\n")
    proc = subprocess.run(["steps/make_mfcc.sh", "--nj", "1", "data/eight"], cwd=tmp_path, env=env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert proc.returncode != 0 and "2 of 2 utterances failed" in proc.stdout, proc.stdout
    assert "run the recipe at the audio's rate: ./run.sh --sample-rate <Hz> --stage 1" in proc.stdout
    assert "by hand: --sample-frequency and --high-freq of conf/mfcc.conf and conf/fbank.conf" in proc.stdout


def test_a_speaker_in_both_split_lists_is_named(tmp_path):
    from tests.recipe.tiny_corpus import make_tiny_corpora

    for item in ("local", "utils", "path.sh"):
        os.symlink(os.path.join(REPO_ROOT, item), tmp_path / item)
    make_tiny_corpora(CORPORA, str(tmp_path / "corpora"), so_train=2, so_test=2, sc_train=2, sc_test=2, utts=3)
    lists = tmp_path / "corpora" / "splits"
    test_spk = (lists / "speechocean762.test.spk").read_text().split()
    with open(lists / "speechocean762.train.spk", "a") as handle:
        handle.write(test_spk[1] + "\n")
    proc = subprocess.run(["local/prepare_data.sh", "--corpus-root", "corpora", "data"], cwd=tmp_path, env=env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert (f"1 speaker(s) in both corpora/splits/speechocean762.train.spk and "
            f"corpora/splits/speechocean762.test.spk: {test_spk[1]}; a speaker belongs to one side") in proc.stderr
