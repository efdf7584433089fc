#!/usr/bin/env bash
# Scores one system on one trial set with the recipe's back-ends (sidkd/backend/backends.py: cosine
# and LDA+PLDA), each with and without AS-norm (cohort: the training vectors; --asnorm false: plain). Rows go to --results (exp/results.tsv;
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

# one pass per back-end of the registry (sidkd/backend/backends.py): its scores, then its AS-norm
names=() scores=()
while read -r backend column model step norm_scorer norm_model norm_column <&3; do
  case $model in
    train-vectors) model_arg=$train_scp ;;
    plda-dir) model_arg=$plda_dir ;;
    *) echo "$0: back-end $backend: unknown model kind $model" >&2; exit 1 ;;
  esac
  $step --cmd "$cmd" --results "$results" --system "$sys" --backend "$column" --trials-name "$name" \
    "$model_arg" "$eval_scp" "$test_scp" "$trials" "$out/$backend"
  names+=("$column") scores+=("$out/$backend/scores")
  if [ "$asnorm" = true ]; then
    norm_opts=()
    [ "$norm_model" = false ] || norm_opts=(--model-dir "$model_arg")
    steps/score_norm.sh --cmd "$cmd" --scorer "$norm_scorer" "${norm_opts[@]}" --top-n "$top_n" \
      --max-cohort "$max_cohort" --trials "$trials" --results "$results" --system "$sys" --backend "$norm_column" \
      --trials-name "$name" "$train_scp" "$eval_scp" "$test_scp" "$out/$backend/scores" "$out/${backend}_asnorm"
    names+=("$norm_column") scores+=("$out/${backend}_asnorm/scores")
  fi
done 3< <(python -m sidkd.bin.backends list --lda-dim "$(cat "$plda_dir/lda_dim")")
[ ${#names[@]} -gt 0 ] || { echo "$0: no back-end listed by sidkd.bin.backends" >&2; exit 1; }
if [ "$plot" = true ]; then
  python -m sidkd.bin.plot_det --title "$sys, $name" --names "$(IFS=,; echo "${names[*]}")" \
    "$trials" "$out/det.png" "${scores[@]}"
fi
