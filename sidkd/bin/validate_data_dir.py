"""Check a Kaldi data directory (backs utils/validate_data_dir.sh)."""

import logging

from sidkd.cli import ArgumentParser, run_main
from sidkd.io.datadir_ops import validate_data_dir


def main(argv=None):
    parser = ArgumentParser(prog="validate_data_dir.sh", description=__doc__)
    parser.add_bool("--feats", True, "check feats.scp keys match utt2spk")
    parser.add_bool("--wav", True, "require wav.scp (or segments) covering every utterance")
    parser.add_bool("--text", True, "check text keys match utt2spk, if text exists")
    parser.add_bool("--spk-sort", True, "require utt2spk sorted by speaker as well as by utterance")
    parser.add_bool("--check-audio-files", True, "check files named in wav.scp exist (pipes not run)")
    parser.add_argument("data")
    args = parser.parse_args(argv)
    notes = validate_data_dir(args.data, feats=args.feats, wav=args.wav, text=args.text,
                              spk_sort=args.spk_sort, check_audio_files=args.check_audio_files)
    logging.info("%s: data directory is OK (%s)", args.data, "; ".join(notes))


if __name__ == "__main__":
    run_main(main)
