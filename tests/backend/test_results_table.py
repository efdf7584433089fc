"""The results table: rows replaced by key, and the markdown view of stage 11 / README."""

import pytest

from sidkd.bin import results_table
from sidkd.cli import ProgramError
from sidkd.errors import DataError
from sidkd.metrics.results import RESULTS_HEADER, update_results_table


def test_rows_replace_by_key_and_markdown_view(tmp_path, capsys):
    path = str(tmp_path / "results.tsv")
    update_results_table(path, ["src", "cosine", "sc_test", "20.00", "0.9000", "0.9500"])
    update_results_table(path, ["src", "lda9+plda", "sc_test", "18.00", "0.8000", "0.9000"])
    update_results_table(path, ["ft", "cosine", "sc_test", "15.50", "0.7000", "0.8000"])
    update_results_table(path, ["src", "cosine", "sc_test", "19.00", "0.8800", "0.9400"])  # a rerun
    lines = open(path).read().splitlines()
    assert lines[0].split("\t") == RESULTS_HEADER and len(lines) == 4
    assert lines[-1] == "src\tcosine\tsc_test\t19.00\t0.8800\t0.9400"
    results_table.main(["--systems", "src,ft", "--columns", "sc_test:cosine sc_test:lda9+plda", path])
    assert capsys.readouterr().out == (
        "| system | sc_test cosine | sc_test lda9+plda |\n"
        "|---|---|---|\n"
        "| src | 19.00 / 0.8800 | 18.00 / 0.8000 |\n"
        "| ft | 15.50 / 0.7000 | n/a |\n")


def test_a_broken_row_is_named(tmp_path):
    path = tmp_path / "results.tsv"
    path.write_text("\t".join(RESULTS_HEADER) + "\nsrc\tcosine\tsc_test\t19.00\n")
    with pytest.raises(DataError, match=r"results.tsv:2: 4 fields"):
        results_table.main(["--systems", "src", "--columns", "sc_test:cosine", str(path)])


def test_a_column_without_backend_is_an_error(tmp_path):
    path = tmp_path / "results.tsv"
    path.write_text("\t".join(RESULTS_HEADER) + "\n")
    with pytest.raises(ProgramError, match="trials:backend"):
        results_table.main(["--systems", "src", "--columns", "sc_test", str(path)])


def test_seed_aggregation_mean_and_sample_std(tmp_path, capsys):
    path = str(tmp_path / "results.tsv")
    for seed, eer, dcf in ((1, "1.00", "0.5000"), (2, "2.00", "0.6000"), (10, "4.00", "0.7000")):
        update_results_table(path, [f"kd_seed{seed}", "cosine", "test", eer, dcf, "0.9"])
    update_results_table(path, ["kd_seed1", "lda9+plda", "test", "3.00", "0.4000", "0.9"])
    update_results_table(path, ["kd_seedless", "cosine", "test", "50.00", "0.9", "0.9"])  # not a seed of kd
    update_results_table(path, ["kd", "cosine", "test", "60.00", "0.9", "0.9"])  # nor is the bare name
    update_results_table(path, ["nokd_seed3", "cosine", "test", "5.00", "0.5000", "0.9"])
    results_table.main(["--aggregate-seeds", "true", "--systems", "kd nokd other", "--columns",
                        "test:cosine test:lda9+plda", path])
    # EER 1, 2, 4: mean 7/3, sample std sqrt(((4/3)² + (1/3)² + (5/3)²) / 2) = sqrt(7/3) = 1.5275
    # minDCF .5, .6, .7: mean .6, std .1
    assert capsys.readouterr().out == (
        "| system | seeds | test cosine | test lda9+plda |\n"
        "|---|---|---|---|\n"
        "| kd | 1,2,10 | 2.33 ± 1.53 / 0.6000 ± 0.1000 | 3.00 ± n/a / 0.4000 ± n/a (n=1) |\n"
        "| nokd | 3 | 5.00 ± n/a / 0.5000 ± n/a | n/a |\n"
        "| other | none | n/a | n/a |\n")


def test_a_study_ledger_reads_as_a_results_table_and_updates_refuse_it(tmp_path, capsys):
    path = tmp_path / "results.tsv"
    header = RESULTS_HEADER + ["seed", "config_hash", "commit", "train_seconds", "samples_per_s", "date"]
    rows = [["kd_seed1", "cosine", "dev", "4.00", "0.5000", "0.6000", "1", "a" * 64, "c1", "600", "80.0", "d"],
            ["kd_seed2", "cosine", "dev", "6.00", "0.7000", "0.8000", "2", "b" * 64, "c1", "610", "79.0", "d"]]
    path.write_text("\n".join("\t".join(r) for r in [header] + rows) + "\n")
    results_table.main(["--aggregate-seeds", "true", "--systems", "kd", "--columns", "dev:cosine", str(path)])
    assert capsys.readouterr().out.splitlines()[-1] == "| kd | 1,2 | 5.00 ± 1.41 / 0.6000 ± 0.1414 |"
    with pytest.raises(DataError, match="not a results table"):
        update_results_table(str(path), ["x", "cosine", "dev", "1", "1", "1"])
    path.write_text("\t".join(header) + "\n" + "\t".join(rows[0][:8]) + "\n")
    with pytest.raises(DataError, match=r"results.tsv:2: 8 fields, expected 12"):
        results_table.main(["--systems", "kd_seed1", "--columns", "dev:cosine", str(path)])


def test_relative_to_a_baseline_is_the_mean_relative_eer_change_over_the_columns(tmp_path, capsys):
    path = str(tmp_path / "results.tsv")
    for row in (["nokd_seed1", "cosine", "a", "4.00"], ["nokd_seed2", "cosine", "a", "6.00"],  # base mean 5
                ["nokd_seed1", "lda9+plda", "a", "2.00"],                                           # base 2
                ["kd_seed1", "cosine", "a", "4.50"], ["kd_seed1", "lda9+plda", "a", "2.50"],
                ["half_seed1", "cosine", "a", "5.50"]):
        update_results_table(path, [*row, "0.5000", "0.9"])
    results_table.main(["--aggregate-seeds", "true", "--relative-to", "nokd", "--systems", "nokd kd half",
                        "--columns", "a:cosine a:lda9+plda", path])
    rows = [line.split(" | ")[-1].rstrip(" |") for line in capsys.readouterr().out.splitlines()[2:]]
    # kd: (4.5/5 - 1 = -10 %, 2.5/2 - 1 = +25 %) -> +7.5 %; half: only cosine, 5.5/5 - 1 = +10 %
    assert rows == ["+0.0 %", "+7.5 %", "+10.0 % (of 1)"]
    with pytest.raises(ProgramError, match="--aggregate-seeds true"):
        results_table.main(["--relative-to", "nokd", "--systems", "kd", "--columns", "a:cosine", path])


def test_gains_pair_each_seed_with_the_baselines_same_seed(tmp_path, capsys):
    path = str(tmp_path / "results.tsv")
    rows = [("nokd_seed1", "4.00", "0.5000"), ("nokd_seed2", "5.00", "0.4000"), ("nokd_seed3", "8.00", "0.5000"),
            ("kd_seed1", "3.00", "0.5000"), ("kd_seed2", "5.50", "0.3000"), ("kd_seed3", "6.00", "0.6000"),
            ("kd_seed4", "1.00", "0.1000")]  # seed 4: no baseline of that seed, left out
    for system, eer, dcf in rows:
        update_results_table(path, [system, "cosine", "a", eer, dcf, "0.9"])
    update_results_table(path, ["kd_seed1", "lda9+plda", "a", "2.00", "0.2000", "0.9"])
    results_table.main(["--aggregate-seeds", "true", "--relative-to", "nokd", "--gains", "true",
                        "--systems", "kd", "--columns", "a:cosine a:lda9+plda", path])
    out = capsys.readouterr().out.splitlines()
    # EER: 3/4 -> -25 %, 5.5/5 -> +10 %, 6/8 -> -25 %: mean -13.33, std sqrt(2·11.67² + 23.33²)/sqrt(2) = 20.21
    # minDCF: 0 %, -25 %, +20 %: mean -1.67, std 22.55; plda: kd has it, nokd does not -> n/a
    # last column, per seed over the columns both have: seed 1 (-25 % cosine; plda lacks nokd) -25,
    # seed 2 +10, seed 3 -25: mean -13.3, std 20.2 (as the cosine column: one column per seed)
    assert out[2] == ("| kd vs nokd | 1,2,3 | -13.3 ± 20.2 / -1.7 ± 22.5 % | n/a | -13.3 ± 20.2 % "
                      "(columns per seed: 1, 1, 1) |")
    update_results_table(path, ["nokd_seed1", "lda9+plda", "a", "1.00", "0.2000", "0.9"])
    update_results_table(path, ["nokd_seed2", "lda9+plda", "a", "2.00", "0.2000", "0.9"])
    update_results_table(path, ["kd_seed2", "lda9+plda", "a", "3.00", "0.2000", "0.9"])
    results_table.main(["--aggregate-seeds", "true", "--relative-to", "nokd", "--gains", "true",
                        "--systems", "kd", "--columns", "a:cosine a:lda9+plda", path])
    out = capsys.readouterr().out.splitlines()
    # plda: seed 1 2/1 -> +100 %, seed 2 3/2 -> +50 % (seed 3: no plda, n=2 of 3 pairs)
    # per seed over its columns: seed 1 mean(-25, +100) = +37.5, seed 2 mean(+10, +50) = +30,
    # seed 3 -25 (cosine only): mean +14.17, std sqrt((23.33² + 15.83² + 39.17²)/2) = 34.13
    assert out[0].endswith("| EER vs nokd |")
    assert out[2].endswith("| +75.0 ± 35.4 / +0.0 ± 0.0 % (n=2) | +14.2 ± 34.1 % (columns per seed: 2, 2, 1) |")
    with pytest.raises(ProgramError, match="--relative-to"):
        results_table.main(["--gains", "true", "--systems", "kd", "--columns", "a:cosine", path])


def test_hashes_name_each_rows_models_seed_by_seed(tmp_path, capsys):
    path = tmp_path / "results.tsv"
    header = RESULTS_HEADER + ["seed", "config_hash", "commit", "train_seconds", "samples_per_s", "date"]
    rows = [["kd_seed2", "cosine", "dev", "6.00", "0.7", "0.8", "2", "b" * 64, "c", "1", "1", "d"],
            ["kd_seed1", "cosine", "dev", "4.00", "0.5", "0.6", "1", "a" * 64, "c", "1", "1", "d"],
            ["nokd_seed1", "cosine", "dev", "5.00", "0.5", "0.6", "1", "c" * 64, "c", "1", "1", "d"]]
    path.write_text("\n".join("\t".join(r) for r in [header] + rows) + "\n")
    results_table.main(["--aggregate-seeds", "true", "--hashes", "true", "--systems", "kd nokd",
                        "--columns", "dev:cosine", str(path)])
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("| config hash |") and out[1] == "|---|---|---|---|"
    assert out[2].endswith(f"| {'a' * 12}, {'b' * 12} |") and out[3].endswith(f"| {'c' * 12} |")
    results_table.main(["--hashes", "true", "--systems", "kd_seed2", "--columns", "dev:cosine", str(path)])
    assert capsys.readouterr().out.splitlines()[2] == f"| kd_seed2 | 6.00 / 0.7 | {'b' * 12} |"
    plain = tmp_path / "plain.tsv"
    update_results_table(str(plain), ["x", "cosine", "dev", "1", "1", "1"])
    with pytest.raises(DataError, match="no config_hash column"):
        results_table.main(["--hashes", "true", "--systems", "x", "--columns", "dev:cosine", str(plain)])
