#!/usr/bin/env bash
# Checks a Kaldi data directory; exits non-zero with a message naming the file and line/key.
help_message="Usage: $0 [--no-feats] [--no-wav] [--no-text] [--no-spk-sort] [--no-check-audio] <data-dir>
 Checks: every file C-sorted with unique keys; utt2spk and spk2utt agree; utt2spk also sorted
 by speaker (unless --no-spk-sort); every utterance has audio (wav.scp, or segments whose
 recording is in wav.scp; skip with --no-wav) and its file exists (pipes are not run; skip with
 --no-check-audio); feats.scp exists and covers exactly the utterances (skip with --no-feats, as
 in Kaldi); text, if present, covers exactly the utterances (skip with --no-text); vad.scp,
 utt2dur, utt2num_frames and other *.scp cover a subset; spk2gender, cmvn.scp a subset of speakers."
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
feats=true wav=true text=true spk_sort=true check_audio=true
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-feats) feats=false ;;
    --no-wav) wav=false ;;
    --no-text) text=false ;;
    --no-spk-sort) spk_sort=false ;;
    --no-check-audio) check_audio=false ;;
    --help|-h) echo "$help_message"; exit 0 ;;
    --*) echo "$0: unknown option $1" >&2; echo "$help_message" >&2; exit 1 ;;
    *) args+=("$1") ;;
  esac
  shift
done
if [ ${#args[@]} -ne 1 ]; then echo "$help_message" >&2; exit 1; fi
export LC_ALL=C PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec python -m sidkd.bin.validate_data_dir --feats=$feats --wav=$wav --text=$text \
  --spk-sort=$spk_sort --check-audio-files=$check_audio "${args[0]}"
