#!/usr/bin/env bash
# Concatenates data directories into <dest-dir> (sorted, spk2utt regenerated). A file present
# in only some sources is left out with a warning; segments are made (whole recordings) for
# sources without them when another source has them. Duplicate utterance ids are an error.
help_message="Usage: $0 <dest-dir> <src-dir1> <src-dir2> ..."
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/utils/parse_options.sh"
if [ $# -lt 2 ]; then echo "$help_message" >&2; exit 1; fi
export LC_ALL=C PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec python -m sidkd.bin.combine_data_dirs "$@"
