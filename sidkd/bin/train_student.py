"""Train the student ResNet: AAM-softmax, plus distillation to the teacher i-vectors when λ > 0.

    python -m sidkd.bin.train_student --config conf/student.yaml --train-data data/train \\
        --teacher-scp exp/ivectors_train/ivector.scp --dir exp/student_kd [--set "seed=3 loss.kd.target=lda"]
        [--resume true] [--overwrite true]

``--config`` here is the network's yaml (all tunables: features, model, losses, augmentation,
optimiser), or a variant of it (``base:`` + differences, sidkd.nnet.config); ``--set`` overrides
single values by their dotted keys. Writes DIR/model.json, DIR/checkpoints/
epoch_E.pt every epoch and DIR/final.pt (average of the last checkpoints). Under torchrun every
process runs this same command (DistributedDataParallel).
"""

from __future__ import annotations

import logging
import os

from sidkd.cli import ArgumentParser, ProgramError, parse_with_yaml_config, run_main
from sidkd.nnet.loop import end_session
from sidkd.nnet.config import load_config, parse_overrides
from sidkd.nnet.trainer import train

log = logging.getLogger("train_student")


def main(argv=None) -> int:
    parser = ArgumentParser(prog="train_student", description=__doc__.split("\n")[0])
    parser.add_argument("--train-data", required=True, help="training data dir (wav.scp, utt2spk)")
    parser.add_argument("--teacher-scp", default="", help="teacher i-vectors (scp file or rspecifier)")
    parser.add_argument("--dir", required=True, help="output directory")
    parser.add_argument("--teacher-crops", default="",
                        help="crops file of the crop targets (default: 'crops' beside --teacher-scp)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE ...",
                        help="settings over the yaml, e.g. 'seed=3 loss.kd.weight=0' (repeatable)")
    parser.add_argument("--stop-after-epoch", type=int, default=None,
                        help="stop after this epoch's checkpoint (the schedule still spans all epochs)")
    parser.add_bool("--resume", False, "continue from the newest checkpoint in DIR/checkpoints")
    parser.add_bool("--overwrite", False, "train again in DIR although DIR/config.yaml records another "
                    "configuration (its model and checkpoints are removed first)")
    # The network's yaml is not a Kaldi option file: parse_with_yaml_config takes --config before ArgumentParser does.
    args, yaml_path = parse_with_yaml_config(parser, argv)
    if int(os.environ.get("RANK", "0")) > 0:  # under torchrun, one process tells the story
        logging.getLogger().setLevel(logging.WARNING)
    if not os.path.isfile(yaml_path):
        raise ProgramError(f"{yaml_path}: no such network config")
    config = load_config(yaml_path, parse_overrides(args.set))
    teacher = args.teacher_scp
    if teacher and ":" not in teacher:
        if not os.path.isfile(teacher):
            raise ProgramError(f"{teacher}: no such teacher scp")
        teacher = f"scp:{teacher}"
    for name in ("wav.scp", "utt2spk"):
        if not os.path.isfile(os.path.join(args.train_data, name)):
            raise ProgramError(f"{args.train_data}/{name}: no such file")
    try:
        # only the path is kept: the (DDP) model must be gone before the process group is
        out = train(config, args.train_data, args.dir, teacher or None, resume=args.resume,
                    stop_after_epoch=args.stop_after_epoch, teacher_crops=args.teacher_crops or None,
                    overwrite=args.overwrite)[0]
        log.info("done: %s", out)
    finally:
        end_session()
    return 0


if __name__ == "__main__":
    run_main(main)
