"""The fixed crop positions of the crop teacher targets (docs/student.md, loss.kd.target crop).

Usage: make_crops [--num-crops K] [--crop-frames C] <utt2num-frames> <crops-out>
Each utterance of F frames gets K crops of C frames, starts spread evenly from frame 0 to F − C
(sidkd.nnet.teacher_targets.crop_starts; repeated starts of a short utterance are dropped); an
utterance of at most C frames gets one crop, the whole of it. Lines ``<utt>-crop<k> <utt> <start-frame>
<num-frames>``, C-sorted by crop key.
"""

import logging

from sidkd.cli import ArgumentParser, ProgramError, run_main
from sidkd.io.datadir import atomic_write_text, read_table
from sidkd.nnet.teacher_targets import crop_starts

log = logging.getLogger("make_crops")


def main(argv=None):
    parser = ArgumentParser(prog="make_crops", description=__doc__)
    parser.add_argument("--num-crops", type=int, default=4, help="crops per utterance")
    parser.add_argument("--crop-frames", type=int, default=200, help="frames per crop (200: 2 s at 10 ms)")
    parser.add_argument("utt2num_frames")
    parser.add_argument("crops_out")
    args = parser.parse_args(argv)
    if args.num_crops < 1 or args.crop_frames < 1:
        raise ProgramError(f"--num-crops and --crop-frames must be >= 1, got {args.num_crops}, {args.crop_frames}")
    lines = []
    for utt, value in read_table(args.utt2num_frames, min_fields=2, max_fields=2):
        try:
            frames = int(value)
        except ValueError:
            raise ProgramError(f"{args.utt2num_frames}: utterance {utt!r}: frame count {value!r} is not an integer") from None
        if frames < 1:
            log.warning("skipping utterance %s: %d frames", utt, frames)
            continue
        for k, start in enumerate(crop_starts(frames, args.crop_frames, args.num_crops)):
            lines.append((f"{utt}-crop{k}", f"{utt}-crop{k} {utt} {start} {min(frames, args.crop_frames)}\n"))
    if not lines:
        raise ProgramError(f"{args.utt2num_frames}: no utterance to crop")
    lines.sort(key=lambda item: item[0].encode())
    atomic_write_text(args.crops_out, "".join(line for _, line in lines))
    log.info("%d crops of %d frames written to %s", len(lines), args.crop_frames, args.crops_out)


if __name__ == "__main__":
    run_main(main)
