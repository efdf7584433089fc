"""The back-end programs end to end on synthetic vector archives (two-covariance data)."""

import kaldiio
import numpy as np
import pytest

from sidkd.backend.lda import Lda
from sidkd.backend.plda import Plda
from sidkd.backend.vectors import length_normalize
from sidkd.bin import (
    apply_as_norm,
    compute_lda,
    compute_mean_vector,
    compute_metrics,
    score_cosine,
    score_plda,
    train_plda,
)
from sidkd.errors import DataError
from sidkd.io.ark import ArchiveWriter
from sidkd.io.trials import read_scores


def synth(rng, prefix, num_spk, utts, speaker_scale=1.5, dim=12):
    keys, rows, spk_of = [], [], {}
    centre = np.full(dim, 3.0)  # a common offset the mean subtraction must remove
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(dim, dim)))[0]
    # Speakers differ in a 5-dim subspace; the channel noise is strongest outside it, which LDA
    # can drop but cosine cannot.
    noise_scale = basis @ np.diag([0.5] * 5 + [1.5] * (dim - 5))
    for s in range(num_spk):
        y = basis[:, :5] @ rng.normal(size=5) * speaker_scale
        for u in range(utts if np.isscalar(utts) else utts[s]):
            key = f"{prefix}{s:03d}-{u:02d}"
            keys.append(key)
            rows.append(centre + y + noise_scale @ rng.normal(size=dim))
            spk_of[key] = f"{prefix}{s:03d}"
    return keys, np.array(rows), spk_of


def write_set(tmp_path, name, keys, rows, spk_of):
    scp = tmp_path / f"{name}.scp"
    with ArchiveWriter(f"ark,scp:{tmp_path / name}.ark,{scp}") as writer:
        for key, row in zip(keys, rows):
            writer[key] = row.astype(np.float32)
    with open(tmp_path / f"{name}.utt2spk", "w") as handle:
        handle.writelines(f"{k} {spk_of[k]}\n" for k in sorted(keys))
    return str(scp)


@pytest.fixture
def sets(tmp_path):
    rng = np.random.default_rng(11)
    counts = [1] * 5 + list(rng.integers(3, 8, 60))  # five one-utterance speakers get dropped
    train = write_set(tmp_path, "train", *synth(rng, "tr", 65, counts))
    keys, rows, spk_of = synth(rng, "te", 8, 5)
    test = write_set(tmp_path, "test", keys, rows, spk_of)
    with open(tmp_path / "trials", "w") as handle:
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                handle.write(f"{a} {b} {'target' if spk_of[a] == spk_of[b] else 'nontarget'}\n")
    return tmp_path, train, test, keys, spk_of


def test_pipeline(sets, capsys):
    d, train, test, test_keys, spk_of = sets
    p = lambda name: str(d / name)  # noqa: E731
    compute_mean_vector.main([train, p("mean.npz")])
    compute_mean_vector.main([f"--utt2spk={p('train.utt2spk')}", "--min-utts-per-spk=2", train, p("subset_mean.npz")])
    compute_lda.main(["--dim=6", f"--mean={p('subset_mean.npz')}", train, p("train.utt2spk"), p("lda.npz")])
    train_plda.main([f"--mean={p('subset_mean.npz')}", f"--lda={p('lda.npz')}", train, p("train.utt2spk"), p("plda.npz")])
    assert Lda.load(p("lda.npz")).matrix.shape == (6, 12)
    plda = Plda.load(p("plda.npz"))
    assert plda.dim == 6
    score_plda.main([f"--mean={p('mean.npz')}", f"--lda={p('lda.npz')}", p("plda.npz"), test, test, p("trials"), p("plda.scores")])
    score_cosine.main([f"--mean={p('mean.npz')}", test, test, p("trials"), p("cos.scores")])
    for scorer, raw in (("plda", "plda.scores"), ("cosine", "cos.scores")):
        apply_as_norm.main([f"--scorer={scorer}", f"--plda={p('plda.npz')}", f"--mean={p('mean.npz')}", f"--lda={p('lda.npz')}",
                            "--top-n=50", train, test, test, p(raw), p(raw + ".asnorm")])
    capsys.readouterr()
    eers = {}
    for name in ("plda.scores", "cos.scores", "plda.scores.asnorm", "cos.scores.asnorm"):
        compute_metrics.main([p("trials"), p(name), f"--results={p('results.tsv')}", f"--system={name}"])
        eers[name] = float(capsys.readouterr().out.split()[1])
    assert eers["plda.scores"] < 10 and eers["plda.scores"] < eers["cos.scores"], eers  # LDA removes the nuisance dims
    assert len(open(p("results.tsv")).read().splitlines()) == 5
    # The PLDA score of one trial recomputed by hand from the saved models.
    enroll, test_ids, scores = read_scores(p("plda.scores"))
    from sidkd.backend.vectors import load_mean, read_vectors
    table, lda, mean = read_vectors(test), Lda.load(p("lda.npz")), load_mean(p("mean.npz"))

    def side(key):
        u = plda.transform_vectors(length_normalize(lda.apply(table.matrix[table.rows([key])] - mean)))
        return plda.normalize_length(u, 1)

    assert scores[7] == pytest.approx(plda.llr_matrix(side(enroll[7]), 1, side(test_ids[7]))[0, 0], abs=1e-5)
    # The cosine AS-norm score of a few trials recomputed by brute force from the vectors.
    cohort = read_vectors(train).matrix - mean
    cohort /= np.linalg.norm(cohort, axis=1, keepdims=True)
    _, _, raw = read_scores(p("cos.scores"))
    enroll, test_ids, normed = read_scores(p("cos.scores.asnorm"))

    def top_stats(key):
        v = table.matrix[table.index[key]] - mean
        top = np.sort(cohort @ (v / np.linalg.norm(v)))[::-1][:50]
        return top.mean(), top.std()

    for k in (0, 100, len(raw) - 1):
        (em, es), (tm, ts) = top_stats(enroll[k]), top_stats(test_ids[k])
        assert normed[k] == pytest.approx(0.5 * ((raw[k] - em) / es + (raw[k] - tm) / ts), abs=1e-6)


def test_speaker_enrolment_and_bad_input(sets, tmp_path):
    d, train, test, test_keys, spk_of = sets
    p = lambda name: str(d / name)  # noqa: E731
    compute_mean_vector.main([train, p("mean.npz")])
    # Enrol each test speaker on its first 3 utterances, test on the other 2 of every speaker.
    speakers = sorted(set(spk_of[k] for k in test_keys))
    with open(p("enrol"), "w") as handle:
        for spk in speakers:
            handle.write(spk + " " + " ".join([k for k in test_keys if spk_of[k] == spk][:3]) + "\n")
    probes = [k for k in test_keys if int(k[-2:]) >= 3]
    with open(p("spk_trials"), "w") as handle:
        for spk in speakers:
            for k in probes:
                handle.write(f"{spk} {k} {'target' if spk_of[k] == spk else 'nontarget'}\n")
    score_cosine.main([f"--mean={p('mean.npz')}", f"--enrolment={p('enrol')}", test, test, p("spk_trials"), p("spk.scores")])
    enroll, _, scores = read_scores(p("spk.scores"))
    assert len(scores) == len(speakers) * len(probes) and enroll[0] == speakers[0]
    # PLDA with the same enrolment: n-aware, and each enrolment's score equals scoring its mean
    # transformed vector with num_utts = 3 (checked in test_backend); here: runs and ranks targets first.
    compute_lda.main(["--dim=6", train, p("train.utt2spk"), p("lda.npz")])
    train_plda.main([f"--lda={p('lda.npz')}", train, p("train.utt2spk"), p("plda.npz")])
    score_plda.main([f"--lda={p('lda.npz')}", f"--enrolment={p('enrol')}", p("plda.npz"), test, test, p("spk_trials"), p("spk_plda.scores")])
    enroll, probe, scores = read_scores(p("spk_plda.scores"))
    is_target = np.array([spk_of[t] == e for e, t in zip(enroll, probe)])
    assert scores[is_target].mean() > scores[~is_target].mean() + 5
    with open(p("bad_trials"), "w") as handle:
        handle.writelines(f"{k} nosuch{i} nontarget\n" for i, k in enumerate(test_keys[:9]))
        handle.write(f"{test_keys[0]} {test_keys[1]} target\n")
    with pytest.raises(DataError, match=r"no vector for 9 test utterances named in the trials: nosuch0 nosuch1"):
        score_cosine.main([test, test, p("bad_trials"), p("x.scores")])
    # A mean of the wrong dimension.
    from sidkd.backend.vectors import save_mean
    save_mean(p("mean5.npz"), np.zeros(5), 1)
    with pytest.raises(DataError, match="dimension mismatch"):
        score_cosine.main([f"--mean={p('mean5.npz')}", test, test, p("trials"), p("x.scores")])


def test_lda_dimension_must_stay_below_the_number_of_speakers(tmp_path):
    """S speakers span S - 1 between-class directions: --dim S or more is an error naming the file
    and the count (after --min-utts-per-spk), not a warning."""
    rng = np.random.default_rng(5)
    counts = [1, 1] + [3] * 6  # 8 speakers, 6 of them with >= 2 vectors
    train = write_set(tmp_path, "train", *synth(rng, "tr", 8, counts))
    utt2spk = str(tmp_path / "train.utt2spk")
    with pytest.raises(DataError, match=r"train\.utt2spk has 6 with >= 2 vectors; choose --dim < 6"):
        compute_lda.main(["--dim=6", train, utt2spk, str(tmp_path / "lda.npz")])
    assert not (tmp_path / "lda.npz").exists()
    compute_lda.main(["--dim=5", train, utt2spk, str(tmp_path / "lda.npz")])
    assert Lda.load(str(tmp_path / "lda.npz")).matrix.shape == (5, 12)


def test_as_norm_max_cohort_equals_the_evenly_spaced_subset_given_whole(sets):
    """--max-cohort N against an scp written here of the N vectors at rows floor(k n / N) of the
    cohort sorted by key: the same normalised scores; N >= the cohort changes nothing."""
    d, train, test, test_keys, spk_of = sets
    p = lambda name: str(d / name)  # noqa: E731
    compute_mean_vector.main([train, p("mean.npz")])
    score_cosine.main([f"--mean={p('mean.npz')}", test, test, p("trials"), p("cos.scores")])
    lines = sorted(open(train).read().splitlines(), key=lambda line: line.split()[0].encode())
    keep = [lines[k * len(lines) // 40] for k in range(40)]
    assert len(set(keep)) == 40
    with open(p("subset.scp"), "w") as handle:
        handle.write("\n".join(keep) + "\n")
    run = lambda cohort, out, *extra: apply_as_norm.main(  # noqa: E731
        [f"--mean={p('mean.npz')}", "--top-n=10", *extra, cohort, test, test, p("cos.scores"), p(out)])
    run(train, "capped", "--max-cohort=40")
    run(p("subset.scp"), "subset")
    run(train, "whole")
    run(train, "big_cap", f"--max-cohort={len(lines)}")
    # only the picked lines of an scp are loaded: a line left out may point at an archive that is gone
    dropped = next(line for line in lines if line not in keep)
    with open(p("broken.scp"), "w") as handle:
        handle.write("".join(f"{dropped.split()[0]} {p('gone.ark')}:15\n" if line == dropped else line + "\n"
                             for line in open(train).read().splitlines()))
    run(p("broken.scp"), "capped_broken", "--max-cohort=40")
    with pytest.raises(DataError, match="gone.ark"):
        run(p("broken.scp"), "whole_broken")
    # an archive (no scp to pick lines from) is read whole and cut to the same cohort
    kaldiio.save_ark(p("train.ark"), {line.split()[0]: kaldiio.load_mat(line.split(None, 1)[1]) for line in lines})
    run(f"ark:{p('train.ark')}", "capped_ark", "--max-cohort=40")
    capped, subset, whole, big, broken, from_ark = (read_scores(p(n))[2] for n in (
        "capped", "subset", "whole", "big_cap", "capped_broken", "capped_ark"))
    np.testing.assert_array_equal(capped, subset)
    np.testing.assert_array_equal(broken, subset)
    np.testing.assert_array_equal(from_ark, subset)
    np.testing.assert_array_equal(big, whole)
    assert np.abs(capped - whole).max() > 1e-3  # the cap changes the cohort
