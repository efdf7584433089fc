#!/usr/bin/env bash
# Copies a subset of a data directory (all its files, restricted; spk2utt regenerated).
help_message="Usage: $0 [--first|--last|--shortest] [--seed S] <src-dir> <num-utt> <dest-dir>
       $0 --utt-list <utt-list-file> <src-dir> <dest-dir>
       $0 --spk-list <spk-list-file> <src-dir> <dest-dir>
 Without --first/--last/--shortest, <num-utt> utterances are drawn at random (--seed, default 777).
 --shortest needs <src-dir>/utt2dur. List files hold one id per line (first field)."
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=random utt_list= spk_list= seed=777
while [ $# -gt 0 ]; do
  case "$1" in
    --first|--last|--shortest) mode=${1#--}; shift ;;
    *) break ;;
  esac
done
. "$root/utils/parse_options.sh"
export LC_ALL=C PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
if [ -n "$utt_list" ] || [ -n "$spk_list" ]; then
  if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
  list=(); [ -n "$utt_list" ] && list=(--utt-list "$utt_list"); [ -n "$spk_list" ] && list+=(--spk-list "$spk_list")
  exec python -m sidkd.bin.subset_data_dir "${list[@]}" "$1" "$2"
fi
if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
exec python -m sidkd.bin.subset_data_dir --mode "$mode" --seed "$seed" --num "$2" "$1" "$3"
