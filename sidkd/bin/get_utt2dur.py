"""Write DATA/utt2dur (seconds per utterance) from audio headers (backs utils/get_utt2dur.sh).

Files are measured from their headers (soundfile.info); ``cmd |`` entries are decoded.
With segments, an utterance lasts end - start (end -1: to the end of the recording).
"""

import io
import logging
import os
import subprocess

import soundfile

from sidkd.cli import ArgumentParser, run_main
from sidkd.errors import DataError
from sidkd.io.datadir import read_segments, read_table, write_table


def recording_seconds(key: str, value: str) -> float:
    value = value.strip()
    if value.endswith("|"):
        # A pipe is run and decoded: a streamed wav header may not hold the true length.
        proc = subprocess.run(value[:-1], shell=True, capture_output=True)
        if proc.returncode != 0 or not proc.stdout:
            tail = " / ".join(proc.stderr.decode(errors="replace").strip().splitlines()[-3:])
            raise DataError(f"wav.scp: command for {key!r} failed (status {proc.returncode}): {tail}")
        try:
            samples, rate = soundfile.read(io.BytesIO(proc.stdout), dtype="int16", always_2d=True)
        except Exception as exc:  # soundfile raises several types for undecodable data
            raise DataError(f"wav.scp: cannot decode the output of the command for {key!r}: {exc}") from exc
        return samples.shape[0] / rate
    if not os.path.isfile(value):
        raise DataError(f"wav.scp: audio file of {key!r} does not exist: {value}")
    try:
        info = soundfile.info(value)
    except Exception as exc:  # soundfile raises several types for unreadable files
        raise DataError(f"wav.scp: cannot read the header of {value} for {key!r}: {exc}") from exc
    return info.frames / info.samplerate


def main(argv=None):
    parser = ArgumentParser(prog="get_utt2dur.sh", description=__doc__)
    parser.add_argument("data")
    args = parser.parse_args(argv)
    wav = dict(read_table(os.path.join(args.data, "wav.scp")))
    seg_file = os.path.join(args.data, "segments")
    durations = []
    if os.path.isfile(seg_file):
        rec_len = {}
        for utt, seg in read_segments(seg_file).items():
            if seg.recording not in wav:
                raise DataError(f"{seg_file}: recording {seg.recording!r} of {utt!r} is not in wav.scp")
            end = seg.end
            if end == -1:
                if seg.recording not in rec_len:
                    rec_len[seg.recording] = recording_seconds(seg.recording, wav[seg.recording])
                end = rec_len[seg.recording]
            durations.append((utt, f"{end - seg.start:.3f}"))
    else:
        durations = [(utt, f"{recording_seconds(utt, value):.3f}") for utt, value in wav.items()]
    write_table(os.path.join(args.data, "utt2dur"), durations)
    logging.info("%s/utt2dur: %d utterances", args.data, len(durations))


if __name__ == "__main__":
    run_main(main)
