"""Enrol speakers and verify new recordings with a trained student (docs/verify.md).

    python -m sidkd.bin.verify calibrate --model DIR --trials data/test/trials \\
        --scores exp/scores/student_kd_test/cosine/scores [--mean MEAN.npz] [--target-fa 0.01 | --eer]
    python -m sidkd.bin.verify enroll --model DIR --name alice a1.wav a2.wav ...
    python -m sidkd.bin.verify [test] --model DIR --name alice test.wav ...
    (installed: sidkd-verify ...; any command with --engine onnxruntime runs DIR/embedder.onnx)

calibrate: chooses the decision threshold on scored dev trials (the recipe's cosine scores) and
stores it with the training mean in DIR/verify.npz. enroll: embeds the recordings and stores
DIR/speakers/NAME.npz. test (the default command): prints ``NAME FILE SCORE accept|reject`` per
recording. Recordings are anything wav.scp takes (a path, or ``command |``); they are embedded
whole, as steps/extract_embeddings.sh embeds utterances (same front end, network and chunking).

Nothing is scored that cannot be judged: a recording that is unreadable, broken (truncated),
multi-channel without --channel, at another rate than the model's, or refused by the speech gate
(less than --min-speech seconds of voiced speech, or a constant signal; sidkd.feat.gate) makes
``enroll`` store nothing and exit 1, and ``test`` print ``NAME FILE - refused`` for it (the others
are scored) and exit 1. Each reason is logged with the file's name.
"""

from __future__ import annotations

import logging
import os
import sys

from sidkd.cli import ArgumentParser, ProgramError, run_main, str2bool
from sidkd.errors import DataError

log = logging.getLogger("verify")

COMMANDS = ("calibrate", "enroll", "test")


def _model_options(parser: ArgumentParser) -> None:
    from sidkd.bin._speech_gate import add_gate_options
    from sidkd.bin.extract_embeddings import add_engine_options

    parser.add_argument("--model", required=True, help="student model dir (model.json, final.pt; speakers/, verify.npz)")
    add_engine_options(parser, "--model-file")
    add_gate_options(parser)


def _engine(args):
    from sidkd.nnet.engines import load_engine

    return load_engine(args.engine, args.model, args.model_file)


def _embed_files(engine, args, files: list[str]) -> list:
    """Per file, its raw embedding with the recipe's front end and chunking (the network on
    ``engine``), or the DataError that kept it from being embedded: unreadable, broken, or refused
    by the speech gate."""
    from sidkd.bin._speech_gate import SpeechGate
    from sidkd.io.audio import read_audio
    from sidkd.nnet.embed import embed_utterance, model_audio_options
    from sidkd.nnet.features import frontend_from_config

    frontend = frontend_from_config(engine.desc["features"])
    gate = SpeechGate(args, frontend.sample_rate)
    opts = gate.audio_options(model_audio_options(args.model, frontend))
    def read(path):
        try:
            return path, read_audio(path, opts), None
        except DataError as exc:
            return path, None, exc

    # each file on its own (a name given twice is scored twice), through the gate sidkd-embed uses too
    return [error if error is not None else embed_utterance(engine, frontend, samples)
            for _, samples, error in gate.filter(map(read, files))]


def _speaker_path(model_dir: str, name: str) -> str:
    return os.path.join(model_dir, "speakers", f"{name}.npz")


def calibrate(argv) -> int:
    import numpy as np

    from sidkd.backend.vectors import load_mean
    from sidkd.backend.verify import Calibration, choose_threshold
    from sidkd.io.trials import read_trials, scores_for_trials
    from sidkd.metrics.rates import split_scores

    parser = ArgumentParser(prog="verify calibrate", description="choose and store the decision threshold")
    _model_options(parser)
    parser.add_argument("--trials", required=True, help="dev trials with target|nontarget labels")
    parser.add_argument("--scores", required=True, help="cosine scores of those trials by this model")
    parser.add_argument("--mean", default="", help="training mean the scores were computed with "
                        "(default: mean.npz beside --scores, as steps/score_cosine.sh writes it; 'none': no mean)")
    parser.add_argument("--target-fa", type=float, default=0.01, help="threshold: dev false-alarm rate <= this")
    parser.add_argument("--eer", type=str2bool, nargs="?", const=True, default=False, metavar="true|false",
                        help="threshold at the dev equal error rate instead of --target-fa ('--eer' alone: true)")
    args = parser.parse_args(argv)
    from sidkd.nnet.engines import engine_digest

    digest = engine_digest(args.engine, args.model, args.model_file)  # thresholds belong to one network
    mean_path = args.mean or os.path.join(os.path.dirname(os.path.abspath(args.scores)), "mean.npz")
    mean = None
    if mean_path != "none":
        if not os.path.isfile(mean_path):
            raise ProgramError(f"{mean_path}: no such file (give --mean FILE, or --mean none for scores "
                               "computed without mean subtraction)")
        mean = load_mean(mean_path)
    trials = read_trials(args.trials, require_labels=True)
    target, nontarget = split_scores(scores_for_trials(trials, args.scores), trials.is_target)
    info = choose_threshold(target, nontarget, None if args.eer else args.target_fa)
    if not args.eer and args.target_fa * len(nontarget) < 1:
        log.warning("%d nontarget trials cannot measure a false-alarm rate of %g", len(nontarget), args.target_fa)
    info.update(trials=os.path.abspath(args.trials), scores=os.path.abspath(args.scores),
                mean_file="none" if mean is None else os.path.abspath(mean_path), embedder=digest)
    out = os.path.join(args.model, "verify.npz")
    Calibration(None if mean is None else np.asarray(mean), info["threshold"], info).save(out)
    log.info("%s: threshold %.6g (%s) from %d target + %d nontarget trials: dev P_miss %.4f, P_fa %.4f, "
             "EER %.4f", out, info["threshold"], info["criterion"], len(target), len(nontarget), info["dev_p_miss"],
             info["dev_p_fa"], info["dev_eer"])
    return 0


def enroll(argv) -> int:
    import numpy as np

    from sidkd.backend.verify import SpeakerModel, check_speaker_name

    parser = ArgumentParser(prog="verify enroll", description="store a speaker model from recordings")
    _model_options(parser)
    parser.add_argument("--name", required=True, help="speaker name (a file name: letters, digits, _ . -)")
    parser.add_argument("recordings", nargs="+", help="audio files (or 'command |')")
    args = parser.parse_args(argv)
    name = check_speaker_name(args.name)
    engine = _engine(args)
    embeddings = _embed_files(engine, args, args.recordings)
    errors = [e for e in embeddings if isinstance(e, DataError)]
    if errors:
        raise DataError(f"nothing enrolled: {len(errors)} of {len(embeddings)} recordings cannot be used; "
                        + "; ".join(map(str, errors)))
    path = _speaker_path(args.model, name)
    if os.path.exists(path):
        log.warning("%s exists: replaced", path)
    SpeakerModel(name, np.stack(embeddings), list(args.recordings), engine.network_digest).save(path)
    log.info("enrolled %s from %d recordings -> %s", name, len(args.recordings), path)
    return 0


def test(argv) -> int:
    import numpy as np

    from sidkd.backend.verify import Calibration, SpeakerModel, check_speaker_name, verification_scores

    parser = ArgumentParser(prog="verify test", description="score recordings against an enrolled speaker")
    _model_options(parser)
    parser.add_argument("--name", required=True, help="enrolled speaker")
    parser.add_argument("recordings", nargs="+", help="audio files (or 'command |')")
    args = parser.parse_args(argv)
    name = check_speaker_name(args.name)
    engine = _engine(args)
    calibration_path = os.path.join(args.model, "verify.npz")
    if not os.path.isfile(calibration_path):
        raise ProgramError(f"{calibration_path}: no such file; run 'python -m sidkd.bin.verify calibrate' first")
    speaker_path = _speaker_path(args.model, name)
    if not os.path.isfile(speaker_path):
        raise ProgramError(f"{speaker_path}: no such file; enrol {name} first ('python -m sidkd.bin.verify enroll')")
    calibration = Calibration.load(calibration_path)
    speaker = SpeakerModel.load(speaker_path)
    if speaker.embedder != engine.network_digest:
        raise DataError(f"{speaker_path} was enrolled with another network than {engine.path}: enrol {name} again")
    if calibration.info.get("embedder") != engine.network_digest:
        raise DataError(f"{calibration_path} was calibrated for another network than {engine.path}: calibrate again")
    embedded = _embed_files(engine, args, args.recordings)
    good = [i for i, result in enumerate(embedded) if not isinstance(result, DataError)]
    scores = dict(zip(good, verification_scores(calibration.scorer(), speaker.embeddings,
                                                np.stack([embedded[i] for i in good])))) if good else {}
    log.info("threshold %.6g (%s), speaker %s enrolled from %d recordings", calibration.threshold,
             calibration.info.get("criterion"), name, len(speaker.files))
    refused = 0
    for i, (path, result) in enumerate(zip(args.recordings, embedded)):
        if isinstance(result, DataError):
            refused += 1
            log.error("%s", result)
            print(f"{name} {path} - refused")
            continue
        score = scores[i]
        decision = "accept" if score >= calibration.threshold else "reject"
        print(f"{name} {path} {score:.9g} {decision}")
    sys.stdout.flush()
    if refused:
        log.error("%d of %d recordings refused (lines 'NAME FILE - refused'): exit status 1", refused,
                  len(args.recordings))
    return 1 if refused else 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "test"
    if argv and argv[0] in COMMANDS:
        command = argv.pop(0)
    elif argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    return {"calibrate": calibrate, "enroll": enroll, "test": test}[command](argv)


def cli() -> None:
    run_main(main)


if __name__ == "__main__":
    cli()
