"""EER / minDCF / DET against a brute-force sweep written here, and hand-made cases."""

import os

import numpy as np
import pytest

from sidkd.bin import compute_metrics, plot_det
from sidkd.errors import DataError
from sidkd.metrics import actual_dcf, equal_error_rate, min_dcf


def brute_force_rates(target, nontarget):
    thresholds = sorted(set(target) | set(nontarget)) + [float("inf")]
    rates = []
    for theta in thresholds:
        p_miss = sum(1 for s in target if s < theta) / len(target)
        p_fa = sum(1 for s in nontarget if s >= theta) / len(nontarget)
        rates.append((p_miss, p_fa))
    return rates


def brute_force_eer(target, nontarget):
    rates = brute_force_rates(target, nontarget)
    for (m0, f0), (m1, f1) in zip(rates, rates[1:]):
        if m1 >= f1:  # first point at or past the crossing; the previous one is before it
            # Solve m0 + t (m1 - m0) = f0 + t (f1 - f0) for t on the segment.
            t = (f0 - m0) / ((m1 - m0) - (f1 - f0))
            return m0 + t * (m1 - m0)
    raise AssertionError("no crossing")


def brute_force_min_dcf(target, nontarget, p, c_miss=1.0, c_fa=1.0):
    costs = [c_miss * p * m + c_fa * (1 - p) * f for m, f in brute_force_rates(target, nontarget)]
    return min(costs) / min(c_miss * p, c_fa * (1 - p))


def random_systems():
    rng = np.random.default_rng(5)
    for trial in range(12):
        n_t, n_n = rng.integers(1, 60), rng.integers(1, 300)
        target = rng.normal(1.5, 1.0, n_t)
        nontarget = rng.normal(0.0, 1.0, n_n)
        if trial % 3 == 1:  # heavy ties within and across classes
            target, nontarget = np.round(target * 2) / 2, np.round(nontarget * 2) / 2
        if trial % 3 == 2:
            target, nontarget = np.round(target), np.round(nontarget)
        yield target, nontarget


@pytest.mark.parametrize("index", range(12))
def test_random_against_brute_force(index):
    target, nontarget = list(random_systems())[index]
    eer, _ = equal_error_rate(target, nontarget)
    assert abs(100 * eer - 100 * brute_force_eer(list(target), list(nontarget))) < 1e-6
    for p in (0.01, 0.001, 0.3):
        value, _ = min_dcf(target, nontarget, p)
        assert abs(value - brute_force_min_dcf(list(target), list(nontarget), p)) < 1e-6
    value, _ = min_dcf(target, nontarget, 0.05, c_miss=10, c_fa=2)
    assert abs(value - brute_force_min_dcf(list(target), list(nontarget), 0.05, 10, 2)) < 1e-6


def test_hand_made_cases():
    # Tie at 2 across classes moves as one step: points (0,1) (0,.5) (.5,0) (1,0) -> EER 25%.
    eer, threshold = equal_error_rate([2.0, 3.0], [1.0, 2.0])
    assert eer == pytest.approx(0.25) and threshold == 3.0
    assert min_dcf([2.0, 3.0], [1.0, 2.0], 0.5)[0] == pytest.approx(0.5)
    # All scores equal: only "accept all" and "reject all" exist.
    eer, _ = equal_error_rate(np.zeros(7), np.zeros(30))
    assert eer == pytest.approx(0.5)
    assert min_dcf(np.zeros(7), np.zeros(30), 0.01)[0] == pytest.approx(1.0)
    # Perfectly separated.
    eer, threshold = equal_error_rate([5.0, 6.0, 7.0], [1.0, 2.0])
    assert eer == 0.0 and threshold == 5.0
    assert min_dcf([5.0, 6.0, 7.0], [1.0, 2.0], 0.001)[0] == 0.0
    # Perfectly wrong.
    assert equal_error_rate([1.0, 2.0], [5.0, 6.0])[0] == pytest.approx(1.0)


def test_actual_dcf():
    target, nontarget = np.array([0.0, 1.0, 2.0, 3.0]), np.array([-1.0, 0.5, 1.0])
    # threshold 1: misses 1/4 (score 0), false alarms 1/3 (score 1 accepted: >=)
    expected = (0.1 * 0.25 + 0.9 * (1 / 3)) / 0.1
    assert actual_dcf(target, nontarget, 1.0, p_target=0.1) == pytest.approx(expected)


def test_empty_classes_are_errors():
    with pytest.raises(DataError, match="no target"):
        equal_error_rate([], [1.0])
    with pytest.raises(DataError, match="no nontarget"):
        min_dcf([1.0], [])


def write(path, lines):
    with open(path, "w") as handle:
        handle.write("".join(line + "\n" for line in lines))


def make_trials(tmp_path, rng, n=400):
    trials, scores, labels, values = [], [], [], []
    for i in range(n):
        is_target = i % 7 == 0
        value = float(np.round(rng.normal(2.0 if is_target else 0.0), 1))
        label = "target" if is_target else "nontarget"
        trials.append(f"e{i % 37} t{i} {label}")
        scores.append(f"e{i % 37} t{i} {value}")
        labels.append(is_target)
        values.append(value)
    write(tmp_path / "trials", trials)
    return trials, scores, np.array(labels), np.array(values)


def test_compute_metrics_program(tmp_path, capsys):
    rng = np.random.default_rng(0)
    _, scores, labels, values = make_trials(tmp_path, rng)
    write(tmp_path / "scores", scores[::-1])  # any order
    results = tmp_path / "results.tsv"
    compute_metrics.main([str(tmp_path / "trials"), str(tmp_path / "scores"), f"--results={results}", "--system=x", "--backend=cos"])
    out = capsys.readouterr().out.splitlines()
    target, nontarget = list(values[labels]), list(values[~labels])
    assert out[0].startswith("EER: ") and out[1].startswith("minDCF(0.01): ") and out[2].startswith("minDCF(0.001): ")
    assert len(out) == 3
    assert abs(float(out[0].split()[1]) - 100 * brute_force_eer(target, nontarget)) < 1e-6
    assert abs(float(out[1].split()[1]) - brute_force_min_dcf(target, nontarget, 0.01)) < 1e-6
    assert abs(float(out[2].split()[1]) - brute_force_min_dcf(target, nontarget, 0.001)) < 1e-6
    compute_metrics.main([str(tmp_path / "trials"), str(tmp_path / "scores"), f"--results={results}", "--system=x", "--backend=cos"])
    compute_metrics.main([str(tmp_path / "trials"), str(tmp_path / "scores"), f"--results={results}", "--system=y", "--backend=cos"])
    rows = results.read_text().splitlines()
    assert rows[0].split("\t") == ["system", "backend", "trials", "EER%", "minDCF(0.01)", "minDCF(0.001)"]
    assert [r.split("\t")[0] for r in rows[1:]] == ["x", "y"]  # re-run replaced its row


def test_compute_metrics_bad_input(tmp_path):
    rng = np.random.default_rng(1)
    _, scores, _, _ = make_trials(tmp_path, rng)
    write(tmp_path / "scores", scores[:-12])
    with pytest.raises(DataError, match=r"no score for 12 of the 400 trials.*e18/t388 .* \.\.\."):
        compute_metrics.main([str(tmp_path / "trials"), str(tmp_path / "scores")])
    write(tmp_path / "trials_nt", ["a b nontarget", "a c nontarget"])
    with pytest.raises(DataError, match="no target trials"):
        compute_metrics.main([str(tmp_path / "trials_nt"), str(tmp_path / "scores")])
    write(tmp_path / "trials_t", ["a b target"])
    with pytest.raises(DataError, match="no nontarget trials"):
        compute_metrics.main([str(tmp_path / "trials_t"), str(tmp_path / "scores")])
    write(tmp_path / "trials_bad", ["a b target", "a c impostor"])
    with pytest.raises(DataError, match="trials_bad:2"):
        compute_metrics.main([str(tmp_path / "trials_bad"), str(tmp_path / "scores")])


def test_plot_det_writes_png(tmp_path):
    rng = np.random.default_rng(2)
    _, scores, _, _ = make_trials(tmp_path, rng, n=300)
    write(tmp_path / "scores", scores)
    out = tmp_path / "det.png"
    plot_det.main(["--names=a,b", str(tmp_path / "trials"), str(out), str(tmp_path / "scores"), str(tmp_path / "scores")])
    with open(out, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(out) > 5000
