#!/usr/bin/env bash
# A feature config (Kaldi options, one per line) for audio at another sample rate: <src-conf> with
# --sample-frequency=<rate> and --high-freq=-<margin> (the mel filters stop <margin> Hz below the
# new Nyquist) appended; later options win, so every other setting stays as in <src-conf>.
help_message="Usage: $0 [--nyquist-margin HZ] <rate> <src-conf> <dest-conf>
  e.g.: $0 --nyquist-margin 400 8000 conf/mfcc.conf exp/conf_8000/mfcc.conf"
set -euo pipefail
nyquist_margin=400
. utils/parse_options.sh
if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
rate=$1 src=$2 dest=$3
[[ $rate =~ ^[1-9][0-9]*$ ]] || { echo "$0: the sample rate must be a whole number of Hz, got '$rate'" >&2; exit 1; }
[ $(( rate / 2 )) -gt $(( nyquist_margin + 100 )) ] || { echo "$0: $rate Hz leaves no band below Nyquist minus $nyquist_margin Hz" >&2; exit 1; }
[ -f "$src" ] || { echo "$0: no such file: $src" >&2; exit 1; }
mkdir -p "$(dirname "$dest")"
{ cat "$src"; echo "# $0: audio at $rate Hz"; echo "--sample-frequency=$rate"; echo "--high-freq=-$nyquist_margin"; } > "$dest.tmp"
mv "$dest.tmp" "$dest"
