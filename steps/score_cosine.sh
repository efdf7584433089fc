#!/usr/bin/env bash
# Cosine scoring of a trial list: subtract the mean of the training vectors, unit length, dot product.
set -euo pipefail

cmd=run.pl
enrolment=                     # spk2utt-style enrolment file; empty: enroll ids are utterances
subtract_mean=true             # subtract the mean of <train-vectors-scp>
results=exp/results.tsv
system=system
trials_name=                   # trial-set name in the table (default: from the trials path)
backend=cosine

usage="Usage: $0 [options] <train-vectors-scp> <enrol-vectors-scp> <test-vectors-scp> <trials> <out-dir>
 e.g.: $0 --system ivector exp/ivectors_train/ivector.scp exp/ivectors_test/ivector.scp \\
         exp/ivectors_test/ivector.scp data/test/trials exp/scores/ivector_cosine_test
Writes <out-dir>/mean.npz, <out-dir>/scores; with labelled trials also <out-dir>/metrics and a
row in --results. (<out-dir> then serves as the model dir of steps/score_norm.sh --scorer cosine.)
Options:
  --cmd <cmd>                    # job runner (default: $cmd)
  --enrolment <file>             # lines 'enroll-id utt1 utt2 ...' (default: none)
  --subtract-mean <bool>         # default: $subtract_mean
  --results <file>               # default: $results
  --system <name> --backend <name> --trials-name <name>"

[ -f ./path.sh ] && . ./path.sh
. utils/parse_options.sh

if [ $# -ne 5 ]; then
  echo "$usage" >&2
  exit 1
fi
train_scp=$1
enrol_scp=$2
test_scp=$3
trials=$4
dir=$5
for f in "$train_scp" "$enrol_scp" "$test_scp" "$trials" ${enrolment:+"$enrolment"}; do
  [ -f "$f" ] || { echo "$0: no such file $f" >&2; exit 1; }
done
mkdir -p "$dir/log"
mean_opt=
rm -f "$dir/mean.npz"
if $subtract_mean; then
  $cmd "$dir/log/compute_mean.log" \
    python -m sidkd.bin.compute_mean_vector "scp:$train_scp" "$dir/mean.npz"
  mean_opt="--mean=$dir/mean.npz"
fi

$cmd "$dir/log/score_cosine.log" \
  python -m sidkd.bin.score_cosine $mean_opt ${enrolment:+--enrolment="$enrolment"} \
    "scp:$enrol_scp" "scp:$test_scp" "$trials" "$dir/scores"

if [ "$(head -n 1 "$trials" | wc -w)" -eq 3 ]; then
  steps/compute_metrics.sh --results "$results" --system "$system" --backend "$backend" \
    ${trials_name:+--trials-name "$trials_name"} "$trials" "$dir/scores"
fi
