#!/usr/bin/env bash
# Writes <data-dir>/utt2dur (seconds, 3 decimals) from the audio headers of wav.scp (pipes are
# run and decoded); with segments, end - start of each segment (end -1: to the recording's end).
help_message="Usage: $0 [--nj N] [--cmd CMD] <data-dir>
 --nj and --cmd are accepted for compatibility with Kaldi's script; headers are read in one
 process, which is fast enough for these corpora."
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
nj=1 cmd=run.pl
. "$root/utils/parse_options.sh"
if [ $# -ne 1 ]; then echo "$help_message" >&2; exit 1; fi
export LC_ALL=C PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec python -m sidkd.bin.get_utt2dur "$1"
