#!/usr/bin/env bash
# A data dir as it was before feature extraction, for stage 1 to start from. The first call keeps
# its files (wav.scp, utt2spk, spk2utt, trials, ...) in <data-dir>/.orig; a later call (stage 1 run
# again, after its own failure or after it dropped utterances it could not read) puts them back and
# removes what the earlier run made: features, VAD, utt2num_frames, split dirs, fix_data_dir's backup.
# So a rerun of stage 1 never starts from a poisoned dir (an empty utt2num_frames, utterances lost).
help_message="Usage: $0 <data-dir>"
set -euo pipefail
if [ $# -ne 1 ]; then echo "$help_message" >&2; exit 1; fi
data=$1
[ -f "$data/utt2spk" ] || [ -d "$data/.orig" ] || { echo "$0: $data/utt2spk: no such file" >&2; exit 1; }
made="feats.scp vad.scp utt2num_frames utt2dur cmvn.scp"  # what stage 1 writes into a data dir
if [ -d "$data/.orig" ]; then
  for f in "$data"/*; do
    [ -f "$f" ] && rm -f "$f"
  done
  rm -rf "$data"/split* "$data/.backup"
  cp -p "$data"/.orig/* "$data"/
  echo "$0: $data: back to its files before stage 1 ($(wc -l < "$data/utt2spk") utterances; kept in $data/.orig)"
else
  mkdir -p "$data/.orig.tmp"
  for f in "$data"/*; do
    [ -f "$f" ] && [[ " $made " != *" $(basename "$f") "* ]] && cp -p "$f" "$data/.orig.tmp/"
  done
  mv "$data/.orig.tmp" "$data/.orig"
  for f in $made; do rm -f "$data/$f"; done
  rm -rf "$data"/split*
fi
