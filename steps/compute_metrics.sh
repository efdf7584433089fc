#!/usr/bin/env bash
# EER and minDCF of a scores file; writes <scores-dir>/metrics and updates the results table.
set -euo pipefail

results=exp/results.tsv        # tab-separated: system backend trials EER% minDCF(0.01) minDCF(0.001)
system=system
backend=-
trials_name=                   # default: the trials file's directory name (data/test/trials -> test)
p_target=0.01,0.001

usage="Usage: $0 [options] <trials> <scores>
 e.g.: $0 --system ivector --backend plda data/test/trials exp/scores/ivector_plda_test/scores
Options:
  --results <file>               # default: $results
  --system <name> --backend <name> --trials-name <name>
  --p-target <list>              # default: $p_target"

[ -f ./path.sh ] && . ./path.sh
. utils/parse_options.sh

if [ $# -ne 2 ]; then
  echo "$usage" >&2
  exit 1
fi
trials=$1
scores=$2
for f in "$trials" "$scores"; do
  [ -f "$f" ] || { echo "$0: no such file $f" >&2; exit 1; }
done
if [ -z "$trials_name" ]; then
  if [ "$(basename "$trials")" = trials ]; then
    trials_name=$(basename "$(dirname "$trials")")
  else
    trials_name=$(basename "$trials")
  fi
fi
[ -n "$(dirname "$results")" ] && mkdir -p "$(dirname "$results")"
out=$(dirname "$scores")/metrics
python -m sidkd.bin.compute_metrics --p-target="$p_target" --results="$results" --system="$system" \
  --backend="$backend" --trials-name="$trials_name" "$trials" "$scores" > "$out.tmp"
mv "$out.tmp" "$out"
echo "$0: $system $backend $trials_name: $(tr '\n' ' ' < "$out")"
