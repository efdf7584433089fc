"""local/make_trials.py: all pairs up to a size, then a sample linear in the utterances."""

import itertools
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT, tool_env

sys.path.insert(0, os.path.join(REPO_ROOT, "local"))
from make_trials import make_trials  # noqa: E402


def corpus(speakers, per_speaker):
    return {f"s{s:03d}-u{u:02d}": f"s{s:03d}" for s in range(speakers) for u in range(per_speaker)}


def parse(lines):
    return [tuple(line.split()) for line in lines]


def test_all_pairs_up_to_the_size_equal_the_combinations():
    utt2spk = corpus(5, 4)
    lines, targets, nontargets = make_trials(utt2spk, all_pairs_max_utts=20)
    expected = [(a, b, "target" if utt2spk[a] == utt2spk[b] else "nontarget")
                for a, b in itertools.combinations(sorted(utt2spk), 2)]
    assert parse(lines) == expected
    assert (targets, nontargets) == (5 * 6, 190 - 30)
    assert make_trials(utt2spk)[0] == lines  # 0: all pairs whatever the size


def test_beyond_the_size_each_utterance_draws_its_partners():
    utt2spk = corpus(30, 6)  # 180 utterances
    lines, targets, nontargets = make_trials(utt2spk, all_pairs_max_utts=100, targets_per_utt=3,
                                             nontargets_per_utt=4, seed=5)
    trials = parse(lines)
    assert trials == sorted(trials, key=lambda t: (t[0].encode(), t[1].encode()))
    assert len(set((a, b) for a, b, _ in trials)) == len(trials)  # no pair twice
    assert all(a.encode() < b.encode() for a, b, _ in trials)
    assert all(label == ("target" if utt2spk[a] == utt2spk[b] else "nontarget") for a, b, label in trials)
    assert len(trials) <= (3 + 4) * 180 and (targets, nontargets) == (
        sum(t[2] == "target" for t in trials), sum(t[2] == "nontarget" for t in trials))
    for utt in utt2spk:  # each drew 3 own-speaker and 4 other partners (some pairs drawn from both ends)
        mine = [t for t in trials if utt in t[:2]]
        assert sum(t[2] == "target" for t in mine) >= 3 and sum(t[2] == "nontarget" for t in mine) >= 4
    assert make_trials(utt2spk, 100, 3, 4, seed=5)[0] == lines
    assert make_trials(utt2spk, 100, 3, 4, seed=6)[0] != lines


def test_the_sample_grows_linearly_and_a_speaker_with_one_utterance_has_no_target():
    small = len(make_trials(corpus(40, 5), 10, 2, 2)[0])
    large = len(make_trials(corpus(160, 5), 10, 2, 2)[0])
    assert 3.5 < large / small < 4.5  # 4x the utterances, about 4x the trials (all pairs: 16x)
    utt2spk = dict(corpus(10, 3), lonely="z")
    trials = parse(make_trials(utt2spk, 5, 2, 2)[0])
    assert all(t[2] == "nontarget" for t in trials if "lonely" in t[:2])


def test_the_program_says_which_kind(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(corpus(6, 3).items())))
    proc = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "local", "make_trials.py"), "--all-pairs-max-utts",
                           "10", "--targets-per-utt", "1", "--nontargets-per-utt", "2", str(data), str(data / "trials")],
                          env=tool_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "sampled (1 target + 2 nontarget partners per utterance, seed 0: more than 10 utterances)" in proc.stderr
    assert len((data / "trials").read_text().splitlines()) <= 3 * 18 and "all pairs" not in proc.stderr


def test_prepare_data_samples_the_trials_of_a_test_set_over_the_size(tmp_path):
    """local/prepare_data.sh (run.sh stage 0) passes --trials-all-pairs-max-utts / --trials-per-utt on;
    without them a test set gets all pairs."""
    from tests.conftest import CORPORA
    from tests.recipe.tiny_corpus import make_tiny_corpora

    for item in ("local", "utils", "path.sh"):
        os.symlink(os.path.join(REPO_ROOT, item), tmp_path / item)
    make_tiny_corpora(CORPORA, str(tmp_path / "corpora"), so_train=2, so_test=3, sc_train=2, sc_test=2, utts=4)

    def prepare(*options):
        proc = subprocess.run(["local/prepare_data.sh", "--corpus-root", "corpora", *options, "data"], cwd=tmp_path,
                              env=tool_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stderr, (tmp_path / "data" / "test" / "trials").read_text().splitlines()

    log, trials = prepare()
    assert len(trials) == 12 * 11 // 2 and "all pairs" in log
    log, trials = prepare("--trials-all-pairs-max-utts", "10", "--trials-per-utt", "1 2")
    assert "sampled (1 target + 2 nontarget partners per utterance" in log
    assert len(trials) <= 12 * 3 < 66
    utts = {t.split()[0] for t in trials} | {t.split()[1] for t in trials}
    assert len(utts) == 12 and all(sum(u in t.split()[:2] and t.endswith("nontarget") for t in trials) >= 2
                                   for u in utts)
