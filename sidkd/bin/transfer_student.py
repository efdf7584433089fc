"""Transfer a trained student to short utterances: multi-subspace CE + α·long/short KL (+ β·MSE to the teacher).

    python -m sidkd.bin.transfer_student --config conf/transfer.yaml --source exp/student_kd \\
        --train-data data/sc_train [--long-data data/train] [--teacher-scp exp/ivectors_sc_train/ivector.scp] \\
        --dir exp/transfer_msce_kl [--sub-centers 3] [--kl-weight 1.0] [--replay-ratio 0.25] \\
        [--short-seconds 0.5,2] [--resume true]

``--config`` is the transfer yaml (losses, freezing, data, augmentation, optimiser; the network and
its features come from the source model); the other options override single values. Writes
DIR/model.json, DIR/checkpoints/epoch_E.pt and DIR/final.pt, in the layout of train_student, so
extract_embeddings reads DIR as it reads a student. See sidkd/nnet/transfer.py for the losses.
"""

from __future__ import annotations

import logging
import os

from sidkd.cli import ArgumentParser, ProgramError, parse_with_yaml_config, run_main
from sidkd.nnet.loop import end_session
from sidkd.nnet.trainer import load_config
from sidkd.nnet.transfer import DEFAULTS, LONG_VIEWS, transfer

log = logging.getLogger("transfer_student")


def _seconds(text: str):
    """``--short-seconds``: "1" -> 1.0, "0.5,2" (or "0.5 2") -> [0.5, 2.0], as the yaml's short_seconds."""
    fields = text.replace(",", " ").split()
    try:
        values = [float(f) for f in fields]
    except ValueError:
        values = []
    if len(values) not in (1, 2):
        raise ProgramError(f"--short-seconds {text!r}: expected S or LO,HI seconds")
    return values[0] if len(values) == 1 else values


def main(argv=None) -> int:
    parser = ArgumentParser(prog="transfer_student", description=__doc__.split("\n")[0])
    parser.add_argument("--source", required=True, help="source model dir (model.json, final.pt)")
    parser.add_argument("--train-data", required=True, help="target-domain data dir (wav.scp, utt2spk)")
    parser.add_argument("--long-data", default="",
                        help="long-speech training data dir: replayed crops, long views source/utterance")
    parser.add_argument("--teacher-scp", default="", help="teacher i-vectors of the training data (for β > 0)")
    parser.add_argument("--dir", required=True, help="output directory")
    parser.add_argument("--sub-centers", type=int, default=None, help="K (overrides loss.msce.sub_centers)")
    parser.add_argument("--kl-weight", type=float, default=None, help="α (overrides loss.kl.weight)")
    parser.add_argument("--long-view", default=None, choices=list(LONG_VIEWS), help="overrides loss.kl.long_view")
    parser.add_argument("--kd-weight", type=float, default=None, help="β (overrides loss.kd.weight)")
    parser.add_argument("--replay-ratio", type=float, default=None, help="overrides replay.ratio")
    parser.add_argument("--short-seconds", default=None, help="S or LO,HI (overrides short_seconds)")
    parser.add_argument("--freeze-blocks", type=int, default=None, help="overrides freeze.blocks")
    parser.add_argument("--freeze-epochs", type=int, default=None, help="overrides freeze.epochs")
    parser.add_argument("--seed", type=int, default=None, help="overrides seed of the yaml")
    parser.add_argument("--num-epochs", type=int, default=None, help="overrides optim.num_epochs")
    parser.add_argument("--stop-after-epoch", type=int, default=None,
                        help="stop after this epoch's checkpoint (the schedule still spans all epochs)")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda (overrides device of the yaml)")
    parser.add_bool("--resume", False, "continue from the newest checkpoint in DIR/checkpoints")
    parser.add_bool("--overwrite", False, "train again in DIR although DIR/config.yaml records another "
                    "configuration (its model and checkpoints are removed first)")
    args, yaml_path = parse_with_yaml_config(parser, argv)
    if int(os.environ.get("RANK", "0")) > 0:
        logging.getLogger().setLevel(logging.WARNING)
    overrides: dict = {}
    loss = {}
    if args.sub_centers is not None:
        loss["msce"] = {"sub_centers": args.sub_centers}
    if args.kl_weight is not None or args.long_view is not None:
        loss["kl"] = {k: v for k, v in (("weight", args.kl_weight), ("long_view", args.long_view)) if v is not None}
    if args.kd_weight is not None:
        loss["kd"] = {"weight": args.kd_weight}
    if loss:
        overrides["loss"] = loss
    freeze = {k: v for k, v in (("blocks", args.freeze_blocks), ("epochs", args.freeze_epochs)) if v is not None}
    if freeze:
        overrides["freeze"] = freeze
    if args.replay_ratio is not None:
        overrides["replay"] = {"ratio": args.replay_ratio}
    if args.short_seconds is not None:
        overrides["short_seconds"] = _seconds(args.short_seconds)
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.num_epochs is not None:
        overrides["optim"] = {"num_epochs": args.num_epochs}
    if args.device is not None:
        overrides["device"] = args.device
    if not os.path.isfile(yaml_path):
        raise ProgramError(f"{yaml_path}: no such transfer config")
    config = load_config(yaml_path, overrides, DEFAULTS)
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
