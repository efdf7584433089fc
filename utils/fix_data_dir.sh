#!/usr/bin/env bash
# Repairs a data directory in place: sorts (C locale), drops duplicate keys, keeps only the
# utterances present in every per-utterance file and whose audio exists, regenerates spk2utt.
# The previous files are kept in <data-dir>/.backup; what was removed, and why, is printed.
help_message="Usage: $0 [--check-audio true|false] <data-dir>"
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
check_audio=true
. "$root/utils/parse_options.sh"
if [ $# -ne 1 ]; then echo "$help_message" >&2; exit 1; fi
export LC_ALL=C PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec python -m sidkd.bin.fix_data_dir --check-audio-files="$check_audio" "$1"
