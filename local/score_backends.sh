#!/usr/bin/env bash
# Scores one system on one trial set with the recipe's four back-ends: cosine and LDA+PLDA, each
# with and without AS-norm (cohort: the training vectors; --asnorm false: the two plain ones). Rows go to --results (exp/results.tsv;
# through the scoring steps); a DET plot of the four to <out-dir>/det.png.
help_message="Usage: $0 [options] <system> <train-scp> <enrol-scp> <plda-dir> <trials> <out-dir>
 e.g.: $0 ivector exp/ivectors_train/ivector.scp exp/ivectors_test/ivector.scp \\
         exp/ivectors_train/plda_lda150 data/test/trials exp/scores/ivector_test
Options:
  --test-scp SCP      the test side's vectors (default: <enrol-scp>: both sides from one extraction)
  --trials-name NAME  the trial set's name in exp/results.tsv (default: the trials file's folder name)
  --top-n N           AS-norm cohort scores per side (default 300)
  --max-cohort N      AS-norm cohort vectors used at most (default 0: all the training vectors)
  --results FILE      the table the rows go to (default exp/results.tsv)
  --asnorm true|false also the AS-normed scores (default true)
  --plot true|false   a DET plot of the back-ends, <out-dir>/det.png (default true)
  --cmd CMD           job runner (default run.pl)"
set -euo pipefail
test_scp=
trials_name=
top_n=300
max_cohort=0
results=exp/results.tsv
asnorm=true
plot=true
cmd=run.pl
. utils/parse_options.sh

if [ $# -ne 6 ]; then echo "$help_message" >&2; exit 1; fi
sys=$1 train_scp=$2 eval_scp=$3 plda_dir=$4 trials=$5 out=$6
test_scp=${test_scp:-$eval_scp}
name=${trials_name:-$(basename "$(dirname "$trials")")}
[ -f "$plda_dir/lda_dim" ] || { echo "$0: no $plda_dir/lda_dim: not a back-end of steps/train_plda.sh" >&2; exit 1; }
plda=lda$(cat "$plda_dir/lda_dim")+plda  # the back-end's name: its LDA dimension

steps/score_cosine.sh --cmd "$cmd" --results "$results" --system "$sys" --backend cosine --trials-name "$name" \
  "$train_scp" "$eval_scp" "$test_scp" "$trials" "$out/cosine"
steps/score_plda.sh --cmd "$cmd" --results "$results" --system "$sys" --backend "$plda" --trials-name "$name" \
  "$plda_dir" "$eval_scp" "$test_scp" "$trials" "$out/plda"
names=(cosine "$plda") scores=("$out/cosine/scores" "$out/plda/scores")
if [ "$asnorm" = true ]; then
  steps/score_norm.sh --cmd "$cmd" --scorer cosine --top-n "$top_n" --max-cohort "$max_cohort" --trials "$trials" \
    --results "$results" --system "$sys" --backend cosine+asnorm --trials-name "$name" \
    "$train_scp" "$eval_scp" "$test_scp" "$out/cosine/scores" "$out/cosine_asnorm"
  steps/score_norm.sh --cmd "$cmd" --scorer plda --model-dir "$plda_dir" --top-n "$top_n" --max-cohort "$max_cohort" \
    --trials "$trials" --results "$results" --system "$sys" --backend "$plda+asnorm" --trials-name "$name" \
    "$train_scp" "$eval_scp" "$test_scp" "$out/plda/scores" "$out/plda_asnorm"
  names=(cosine cosine+asnorm "$plda" "$plda+asnorm")
  scores=("$out/cosine/scores" "$out/cosine_asnorm/scores" "$out/plda/scores" "$out/plda_asnorm/scores")
fi
if [ "$plot" = true ]; then
  python -m sidkd.bin.plot_det --title "$sys, $name" --names "$(IFS=,; echo "${names[*]}")" \
    "$trials" "$out/det.png" "${scores[@]}"
fi
