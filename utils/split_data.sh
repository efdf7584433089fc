#!/usr/bin/env bash
# Splits a data directory into N parts for parallel jobs: <data>/splitN/{1..N} (each a data
# dir). By default speakers are kept whole and the parts get utterance counts as even as
# possible (N must not exceed the number of speakers); --per-utt splits utterances evenly into
# <data>/splitNutt/{1..N}. Every per-utterance file present is split (wav.scp through segments
# when there are segments). An existing split newer than the data dir's files is reused.
help_message="Usage: $0 [--per-utt] <data-dir> <num-splits>"
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
per_utt=false
if [ "${1:-}" = --per-utt ]; then per_utt=true; shift; fi
. "$root/utils/parse_options.sh"
if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
export LC_ALL=C PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec python -m sidkd.bin.split_data_dir --per-utt="$per_utt" "$1" "$2"
