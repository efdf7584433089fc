"""Transfer a trained student to short utterances: multi-subspace CE + α·long/short KL (+ β·MSE to the teacher).

    python -m sidkd.bin.transfer_student --config conf/transfer.yaml --source exp/student_kd \\
        --train-data data/sc_train [--long-data data/train] [--teacher-scp exp/ivectors_sc_train/ivector.scp] \\
        --dir exp/transfer_msce_kl [--set "loss.msce.sub_centers=3 replay.ratio=0.25"] [--resume true]

``--config`` is the transfer yaml (losses, freezing, data, augmentation, optimiser; the network and
its features come from the source model), or a variant of it (``base:`` + differences,
sidkd.nnet.config); ``--set`` overrides single values by their dotted keys. Writes
DIR/model.json, DIR/checkpoints/epoch_E.pt and DIR/final.pt, in the layout of train_student, so
extract_embeddings reads DIR as it reads a student. See sidkd/nnet/transfer.py for the losses.
"""

from __future__ import annotations

import logging
import os

from sidkd.cli import ArgumentParser, ProgramError, parse_with_yaml_config, run_main
from sidkd.nnet.loop import end_session
from sidkd.nnet.config import load_config, parse_overrides
from sidkd.nnet.transfer import transfer

log = logging.getLogger("transfer_student")


def main(argv=None) -> int:
    parser = ArgumentParser(prog="transfer_student", description=__doc__.split("\n")[0])
    parser.add_argument("--source", required=True, help="source model dir (model.json, final.pt)")
    parser.add_argument("--train-data", required=True, help="target-domain data dir (wav.scp, utt2spk)")
    parser.add_argument("--long-data", default="",
                        help="long-speech training data dir: replayed crops, long views source/utterance")
    parser.add_argument("--teacher-scp", default="", help="teacher i-vectors of the training data (for β > 0)")
    parser.add_argument("--dir", required=True, help="output directory")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE ...",
                        help="settings over the yaml, e.g. 'seed=3 loss.kl.weight=1 short_seconds=[0.5,2]'")
    parser.add_argument("--stop-after-epoch", type=int, default=None,
                        help="stop after this epoch's checkpoint (the schedule still spans all epochs)")
    parser.add_bool("--resume", False, "continue from the newest checkpoint in DIR/checkpoints")
    parser.add_bool("--overwrite", False, "train again in DIR although DIR/config.yaml records another "
                    "configuration (its model and checkpoints are removed first)")
    args, yaml_path = parse_with_yaml_config(parser, argv)
    if int(os.environ.get("RANK", "0")) > 0:
        logging.getLogger().setLevel(logging.WARNING)
    if not os.path.isfile(yaml_path):
        raise ProgramError(f"{yaml_path}: no such transfer config")
    config = load_config(yaml_path, parse_overrides(args.set), kind="transfer")
    for name in ("model.json", "final.pt"):
        if not os.path.isfile(os.path.join(args.source, name)):
            raise ProgramError(f"{args.source}/{name}: no such file (the source model)")
    for data in filter(None, (args.train_data, args.long_data)):
        for name in ("wav.scp", "utt2spk"):
            if not os.path.isfile(os.path.join(data, name)):
                raise ProgramError(f"{data}/{name}: no such file")
    teacher = args.teacher_scp
    if teacher and ":" not in teacher:
        if not os.path.isfile(teacher):
            raise ProgramError(f"{teacher}: no such teacher scp")
        teacher = f"scp:{teacher}"
    try:
        # only the path is kept: the (DDP) model must be gone before the process group is
        out = transfer(config, args.source, args.train_data, args.dir, args.long_data or None, teacher or None,
                       resume=args.resume, stop_after_epoch=args.stop_after_epoch, overwrite=args.overwrite)[0]
        log.info("done: %s", out)
    finally:
        end_session()
    return 0


if __name__ == "__main__":
    run_main(main)
