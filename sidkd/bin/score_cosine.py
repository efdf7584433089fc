"""Cosine scoring of trials (mean subtraction, unit length, dot product).

Usage: python -m sidkd.bin.score_cosine [options] ENROL-RSPECIFIER TEST-RSPECIFIER TRIALS SCORES
With --enrolment, an enrol id is the mean of its utterances' unit vectors (renormalised).
"""

from sidkd.backend.scoring import add_scorer_options, score_trials_file, scorer_from_options
from sidkd.cli import ArgumentParser, run_main


def main(argv=None) -> int:
    parser = ArgumentParser(prog="score_cosine", description=__doc__.split("\n")[0])
    add_scorer_options(parser, plda_option=False)
    parser.add_argument("--enrolment", default="", help="enrolment file: 'enroll-id utt1 utt2 ...' per line")
    parser.add_argument("enrol_vectors", help="rspecifier of the enrolment utterances' vectors")
    parser.add_argument("test_vectors", help="rspecifier of the test utterances' vectors")
    parser.add_argument("trials", help="trials: enroll test [target|nontarget]")
    parser.add_argument("scores", help="output scores: enroll test score")
    args = parser.parse_args(argv)
    scorer = scorer_from_options("cosine", args)
    score_trials_file(scorer, args.enrol_vectors, args.test_vectors, args.trials, args.scores, args.enrolment)
    return 0


if __name__ == "__main__":
    run_main(main)
