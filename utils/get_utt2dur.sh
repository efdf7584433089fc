#!/usr/bin/env bash
# Writes <data-dir>/utt2dur (seconds) from the audio headers of wav.scp (pipes are run and
# decoded); with segments, end - start of each segment.
help_message="Usage: $0 <data-dir>"
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/utils/parse_options.sh"
if [ $# -ne 1 ]; then echo "$help_message" >&2; exit 1; fi
export LC_ALL=C PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec python -m sidkd.bin.get_utt2dur "$1"
