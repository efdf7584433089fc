"""Adaptive s-norm (AS-norm) of a scores file, with cohort scores from the same scorer.

Usage: python -m sidkd.bin.apply_as_norm [options] COHORT-RSPECIFIER ENROL-RSPECIFIER TEST-RSPECIFIER SCORES-IN SCORES-OUT
Each enrol id and test utterance of SCORES-IN is scored against every cohort vector with --scorer
(cosine, or plda with --plda and the same --mean/--lda options used for the raw scores); the mean
and standard deviation of its --top-n best cohort scores normalise the trial score. The cost is
(enrolments + test utterances) x cohort vectors: with --max-cohort N a larger cohort is cut to N
vectors evenly spaced in key order (every speaker's share kept, deterministic), so that it stays
linear in the trial sets as the training data grows.
"""

import logging

from sidkd.backend.asnorm import as_norm, evenly_spaced, scorer_cohort_stats
from sidkd.backend.scoring import (
    add_scorer_options,
    enrol_groups,
    read_enrol_and_test,
    scorer_from_options,
    unique_index,
)
from sidkd.backend.vectors import read_vectors
from sidkd.cli import ArgumentParser, ProgramError, run_main
from sidkd.errors import DataError
from sidkd.io.trials import read_enrolment, read_scores, write_scores


def cohort_keys(keys: list[str], max_cohort: int) -> list[str]:
    """All ``keys``, or with 0 < max_cohort < their number that many, evenly spaced in key order."""
    if not 0 < max_cohort < len(keys):
        return keys
    ordered = sorted(keys, key=str.encode)
    return [ordered[k] for k in evenly_spaced(len(ordered), max_cohort)]


def main(argv=None) -> int:
    parser = ArgumentParser(prog="apply_as_norm", description=__doc__.split("\n")[0])
    parser.add_argument("--scorer", default="cosine", choices=["cosine", "plda"], help="how vectors are scored against the cohort")
    parser.add_argument("--plda", default="", help="PLDA model (.npz) for --scorer=plda")
    add_scorer_options(parser, plda_option=True)
    parser.add_argument("--top-n", type=int, default=300, help="cohort scores kept per side")
    parser.add_argument("--max-cohort", type=int, default=0,
                        help="a cohort of more vectors is cut to this many, evenly spaced in key order (0: whole)")
    parser.add_argument("--enrolment", default="", help="enrolment file: 'enroll-id utt1 utt2 ...' per line")
    parser.add_argument("cohort_vectors", help="rspecifier of the cohort vectors (e.g. the training set's)")
    parser.add_argument("enrol_vectors", help="rspecifier of the enrolment utterances' vectors")
    parser.add_argument("test_vectors", help="rspecifier of the test utterances' vectors")
    parser.add_argument("scores_in", help="scores to normalise: enroll test score")
    parser.add_argument("scores_out", help="normalised scores, same order")
    args = parser.parse_args(argv)
    if args.scorer == "plda" and not args.plda:
        raise ProgramError("--scorer=plda needs --plda")
    scorer = scorer_from_options(args.scorer, args, args.plda)
    enroll, test, scores = read_scores(args.scores_in)
    enrolment = read_enrolment(args.enrolment) if args.enrolment else None
    enrol_vectors, test_vectors = read_enrol_and_test(args.enrol_vectors, args.test_vectors)
    cohort = read_vectors(args.cohort_vectors, select=lambda keys: cohort_keys(keys, args.max_cohort))
    cohort_matrix = cohort.matrix
    if cohort.dim != enrol_vectors.dim:
        raise DataError(f"cohort vectors have dimension {cohort.dim}, enrolment vectors {enrol_vectors.dim}")
    enrol_ids, enrol_index = unique_index(enroll)
    test_ids, test_index = unique_index(test)
    groups = enrol_groups(enrol_ids, enrolment, enrol_vectors)
    prepared = scorer.prepare(enrol_vectors.matrix)
    enrolled = scorer.enrol(prepared, groups)
    test_prepared = scorer.prepare(test_vectors.matrix[test_vectors.rows(test_ids, "test utterances named in the scores")])
    (e_mean, e_std), (t_mean, t_std) = scorer_cohort_stats(scorer, enrolled, test_prepared, scorer.prepare(cohort_matrix),
                                                        args.top_n)
    normed = as_norm(scores, e_mean[enrol_index], e_std[enrol_index], t_mean[test_index], t_std[test_index])
    write_scores(args.scores_out, enroll, test, normed)
    logging.getLogger().info("AS-norm of %d scores with a cohort of %d vectors, top %d (%d enrolments, %d test utterances)",
                             len(scores), len(cohort_matrix), min(args.top_n, len(cohort_matrix)), len(enrol_ids),
                             len(test_ids))
    return 0


if __name__ == "__main__":
    run_main(main)
