#!/usr/bin/env bash
# Adaptive s-norm (AS-norm) of any scores file; the cohort is scored with the same back-end.
set -euo pipefail

cmd=run.pl
scorer=cosine                  # cosine | plda: how enrolment/test vectors are scored against the cohort
model_dir=                     # dir with mean.npz (cosine), or mean.npz [lda.npz] plda.npz (plda)
top_n=300                      # cohort scores kept per side
max_cohort=0                   # a larger cohort is cut to this many vectors (0: whole; apply_as_norm)
enrolment=
normalize_length=true
length_norm=true
trials=                        # labelled trials: also compute metrics
results=exp/results.tsv
system=system
trials_name=                   # trial-set name in the table (default: from the trials path)
backend=

usage="Usage: $0 [options] <cohort> <enrol-vectors-scp> <test-vectors-scp> <in-scores> <out-dir>
 <cohort>: a vector scp, or a directory holding ivector.scp, xvector.scp, embedding.scp or vector.scp
 e.g.: $0 --scorer plda --model-dir exp/ivectors_train/plda --trials data/test/trials \\
         exp/ivectors_train exp/ivectors_test/ivector.scp exp/ivectors_test/ivector.scp \\
         exp/scores/ivector_plda_test/scores exp/scores/ivector_plda_asnorm_test
Writes <out-dir>/scores; with --trials also <out-dir>/metrics and a row in --results.
Options:
  --cmd <cmd>                    # job runner (default: $cmd)
  --scorer <cosine|plda>         # default: $scorer
  --model-dir <dir>              # default: the directory of <in-scores>
  --top-n <n>                    # default: $top_n
  --max-cohort <n>               # cohort vectors used at most (default: $max_cohort, all)
  --enrolment <file>             # lines 'enroll-id utt1 utt2 ...' (default: none)
  --trials <file> --results <file> --system <name> --backend <name> --trials-name <name>"

[ -f ./path.sh ] && . ./path.sh
. utils/parse_options.sh

if [ $# -ne 5 ]; then
  echo "$usage" >&2
  exit 1
fi
cohort=$1
enrol_scp=$2
test_scp=$3
in_scores=$4
dir=$5
if [ -d "$cohort" ]; then
  found=
  for name in ivector.scp xvector.scp embedding.scp vector.scp; do
    [ -f "$cohort/$name" ] && { found=$cohort/$name; break; }
  done
  [ -n "$found" ] || { echo "$0: no ivector.scp, xvector.scp, embedding.scp or vector.scp in $cohort" >&2; exit 1; }
  cohort=$found
fi
[ -n "$model_dir" ] || model_dir=$(dirname "$in_scores")
[ -n "$backend" ] || backend=${scorer}+asnorm
model_opts="--mean=$model_dir/mean.npz"
case $scorer in
  cosine) [ -f "$model_dir/mean.npz" ] || model_opts= ;;
  plda)
    [ -f "$model_dir/plda.npz" ] || { echo "$0: no PLDA model $model_dir/plda.npz" >&2; exit 1; }
    model_opts="$model_opts --plda=$model_dir/plda.npz --length-norm=$length_norm --normalize-length=$normalize_length"
    [ -f "$model_dir/lda.npz" ] && model_opts="$model_opts --lda=$model_dir/lda.npz" ;;
  *) echo "$0: --scorer must be cosine or plda, got $scorer" >&2; exit 1 ;;
esac
for f in "$cohort" "$enrol_scp" "$test_scp" "$in_scores" ${enrolment:+"$enrolment"} ${trials:+"$trials"}; do
  [ -f "$f" ] || { echo "$0: no such file $f" >&2; exit 1; }
done
mkdir -p "$dir/log"

$cmd "$dir/log/apply_as_norm.log" \
  python -m sidkd.bin.apply_as_norm --scorer="$scorer" $model_opts --top-n="$top_n" --max-cohort="$max_cohort" \
    ${enrolment:+--enrolment="$enrolment"} \
    "scp:$cohort" "scp:$enrol_scp" "scp:$test_scp" "$in_scores" "$dir/scores"

if [ -n "$trials" ]; then
  steps/compute_metrics.sh --results "$results" --system "$system" --backend "$backend" \
    ${trials_name:+--trials-name "$trials_name"} "$trials" "$dir/scores"
fi
