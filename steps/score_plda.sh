#!/usr/bin/env bash
# PLDA log-likelihood-ratio scoring of a trial list with a back-end from steps/train_plda.sh.
set -euo pipefail

cmd=run.pl
enrolment=                     # spk2utt-style enrolment file; empty: enroll ids are utterances
normalize_length=true          # Kaldi's ivector-plda-scoring --normalize-length
length_norm=true               # must match steps/train_plda.sh
results=exp/results.tsv        # table the metrics row goes to (labelled trials only)
system=system                  # system name in the table
trials_name=                   # trial-set name in the table (default: from the trials path)
backend=plda                   # back-end name in the table

usage="Usage: $0 [options] <model-dir> <enrol-vectors-scp> <test-vectors-scp> <trials> <out-dir>
 e.g.: $0 --system ivector exp/ivectors_train/plda exp/ivectors_test/ivector.scp \\
         exp/ivectors_test/ivector.scp data/test/trials exp/scores/ivector_plda_test
Writes <out-dir>/scores (enroll test score, trial order); with labelled trials also
<out-dir>/metrics and a row in --results.
Options:
  --cmd <cmd>                    # job runner (default: $cmd)
  --enrolment <file>             # lines 'enroll-id utt1 utt2 ...' (default: none)
  --normalize-length <bool>      # default: $normalize_length
  --length-norm <bool>           # default: $length_norm
  --results <file>               # default: $results
  --system <name> --backend <name> --trials-name <name>"

[ -f ./path.sh ] && . ./path.sh
. utils/parse_options.sh

if [ $# -ne 5 ]; then
  echo "$usage" >&2
  exit 1
fi
model=$1
enrol_scp=$2
test_scp=$3
trials=$4
dir=$5
for f in "$model/mean.npz" "$model/plda.npz" "$enrol_scp" "$test_scp" "$trials" ${enrolment:+"$enrolment"}; do
  [ -f "$f" ] || { echo "$0: no such file $f" >&2; exit 1; }
done
mkdir -p "$dir/log"
lda_opt=
[ -f "$model/lda.npz" ] && lda_opt="--lda=$model/lda.npz"

$cmd "$dir/log/score_plda.log" \
  python -m sidkd.bin.score_plda --mean="$model/mean.npz" $lda_opt --length-norm="$length_norm" \
    --normalize-length="$normalize_length" ${enrolment:+--enrolment="$enrolment"} \
    "$model/plda.npz" "scp:$enrol_scp" "scp:$test_scp" "$trials" "$dir/scores"

if [ "$(head -n 1 "$trials" | wc -w)" -eq 3 ]; then
  steps/compute_metrics.sh --results "$results" --system "$system" --backend "$backend" \
    ${trials_name:+--trials-name "$trials_name"} "$trials" "$dir/scores"
fi
