#!/usr/bin/env bash
# Trains the full-covariance UBM from the diagonal one (Kaldi's sid/train_full_ubm.sh role).
# Each frame scores only the diagonal UBM's top --num-gselect Gaussians, selected in the first
# iteration's accumulation jobs and stored for the later ones (<dir>/gselect.JOB.npz).
# Each EM iteration = $cmd JOB=1:nj full_gmm_acc_stats -> full_gmm_est. Writes <dir>/final.ubm
# and copies the diagonal model to <dir>/final.dubm (the extractor needs both). As Kaldi's
# sid/train_full_ubm.sh, every 5th frame (--subsample): 1.3 M frames of data/train become 260 k,
# ~1000 per Gaussian at 256 Gaussians (14 per dimension of a 72x72 covariance).
set -euo pipefail

nj=4
cmd=run.pl
stage=-2
num_iters=4            # reference: 4
num_gselect=20         # Gaussians per frame from the diagonal UBM (Kaldi: 20)
subsample=5            # every 5th frame, as Kaldi's sid/train_full_ubm.sh
min_variance=0.001     # floor on covariance eigenvalues
max_condition=10000    # and on their spread
min_count=10           # a Gaussian seeing less keeps its parameters
deltas_config=conf/ivector_deltas.conf
cmvn_config=conf/ivector_cmvn.conf
feats_dir=             # prepared features (steps/make_ivector_feats.sh); empty: the pipeline on <data-dir>
num_threads=0          # BLAS threads per accumulation job; 0: the machine's cores / nj
cleanup=true
help_message="Usage: $0 [options] <data-dir> <diag-ubm-dir> <full-ubm-dir>
 e.g.: $0 --nj 4 data/train exp/diag_ubm exp/full_ubm
Needs <diag-ubm-dir>/final.dubm and <data-dir>/{feats.scp,vad.scp,utt2spk}.
Options:
  --nj N --cmd CMD       parallel jobs and runner ($nj, $cmd)
  --stage N              resume: -2 (or less) from the init, x = from EM iteration x ($stage)
  --num-iters N          EM iterations ($num_iters)
  --num-gselect N        Gaussians scored per frame ($num_gselect)
  --subsample N          use every N-th frame ($subsample)
  --min-variance F --max-condition F --min-count F   estimation limits
  --deltas-config FILE --cmvn-config FILE            feature options
  --feats-dir DIR        read prepared features from DIR/feats.scp (steps/make_ivector_feats.sh)
  --num-threads N        BLAS threads per job (0: cores / nj; the updates use all cores)
  --cleanup true|false   remove accumulators and intermediate models ($cleanup)"
. utils/parse_options.sh
. steps/lib/ivector_feats.sh

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
srcdir=$2
dir=$3
ivector_check_files "$0" "$data/feats.scp" "$data/vad.scp" "$data/utt2spk" "$srcdir/final.dubm" \
  "$deltas_config" "$cmvn_config"

[ -z "$feats_dir" ] || ivector_check_files "$0" "$feats_dir/feats.scp"

mkdir -p "$dir/log"
feats=$(ivector_job_feats "$feats_dir" "$data" "$nj" "$deltas_config" "$cmvn_config")
job_env=$(ivector_thread_env "$(ivector_threads "$nj" "$num_threads")")
one_env=$(ivector_thread_env "$(ivector_cores)")

if [ "$stage" -le -2 ]; then
  cp "$srcdir/final.dubm" "$dir/final.dubm"
  $cmd "$dir/log/init.log" python -m sidkd.bin.full_gmm_init_from_diag "$dir/final.dubm" "$dir/0.ubm"
fi

for x in $(seq 0 $((num_iters - 1))); do
  if [ "$stage" -le "$x" ]; then
    echo "$0: EM iteration $x of $num_iters"
    # The first iteration stores the Gaussian selection (fixed with the diagonal UBM), later ones
    # read it (Kaldi: gmm-gselect once); a resumed run without the file selects again.
    gsel_opt="--read-gselect=$dir/gselect.JOB.npz"
    for j in $(seq "$nj"); do
      if [ "$x" -eq 0 ] || [ ! -f "$dir/gselect.$j.npz" ]; then gsel_opt="--write-gselect=$dir/gselect.JOB.npz"; fi
    done
    $cmd JOB=1:"$nj" "$dir/log/acc.$x.JOB.log" \
      $job_env python -m sidkd.bin.full_gmm_acc_stats --num-gselect="$num_gselect" --subsample="$subsample" \
        $gsel_opt "$dir/final.dubm" "$dir/$x.ubm" "$feats" "$dir/$x.JOB.acc"
    $cmd "$dir/log/update.$x.log" \
      $one_env python -m sidkd.bin.full_gmm_est --min-variance="$min_variance" --max-condition="$max_condition" \
        --min-count="$min_count" "$dir/$x.ubm" $(for j in $(seq "$nj"); do echo "$dir/$x.$j.acc"; done) \
        "$dir/$((x + 1)).ubm"
    if $cleanup; then rm -f "$dir/$x".*.acc; fi
    grep -h "avg log-likelihood" "$dir/log/update.$x.log" | sed "s|^|$0: model $x: |" || true
  fi
done

cp "$dir/$num_iters.ubm" "$dir/final.ubm"
rm -f "$dir"/gselect.*.npz
if $cleanup; then
  for x in $(seq 1 $((num_iters - 1))); do rm -f "$dir/$x.ubm"; done
fi
echo "$0: wrote $dir/final.ubm"
