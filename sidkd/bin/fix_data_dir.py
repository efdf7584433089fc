"""Repair a Kaldi data directory in place (backs utils/fix_data_dir.sh)."""

import logging

from sidkd.cli import ArgumentParser, run_main
from sidkd.io.datadir_ops import fix_data_dir


def main(argv=None):
    parser = ArgumentParser(prog="fix_data_dir.sh", description=__doc__)
    parser.add_bool("--check-audio-files", True, "drop utterances whose audio file does not exist")
    parser.add_argument("data")
    args = parser.parse_args(argv)
    report = fix_data_dir(args.data, check_audio_files=args.check_audio_files)
    for name, reason, count in report.removed:
        logging.info("%s/%s: removed %d: %s", args.data, name, count, reason)
    logging.info("%s: kept %d of %d utterances (%d removed); old files in %s/.backup",
                 args.data, report.utts_after, report.utts_before,
                 report.utts_before - report.utts_after, args.data)


if __name__ == "__main__":
    run_main(main)
