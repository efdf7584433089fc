#!/usr/bin/env bash
# Trains the diagonal-covariance UBM on a data dir's voiced, delta, CMN'd MFCCs (the first model
# of Kaldi's i-vector recipe). Initialisation (one job: a bounded random frame subset, mixing up
# from 1 Gaussian) then --num-iters EM iterations, each = $cmd JOB=1:nj accumulation jobs
# writing $dir/<x>.JOB.acc, then gmm_global_est summing them into $dir/<x+1>.dubm.
# The average log-likelihood per frame of each model is in $dir/log/update.<x>.log.
# With --feats-dir (steps/make_ivector_feats.sh) the features are read from those archives
# instead of running the delta/CMN/VAD pipeline in every pass.
set -euo pipefail

nj=4
cmd=run.pl
stage=-2
num_gaussians=256
num_iters=4            # EM iterations after the initialisation (reference: 4)
num_iters_init=20      # EM passes of the initialisation (the first half grow the mixture)
num_frames=500000      # frames kept in memory for the initialisation
subsample=5            # EM iterations use every 5th frame (Kaldi's sid/train_diag_ubm.sh)
min_variance=0.001
deltas_config=conf/ivector_deltas.conf
cmvn_config=conf/ivector_cmvn.conf
feats_dir=             # prepared features (steps/make_ivector_feats.sh); empty: the pipeline on <data-dir>
num_threads=0          # BLAS threads per accumulation job; 0: the machine's cores / nj
cleanup=true
help_message="Usage: $0 [options] <data-dir> <ubm-dir>
 e.g.: $0 --nj 4 --num-gaussians 256 data/train exp/diag_ubm
Writes <ubm-dir>/final.dubm. Needs <data-dir>/{feats.scp,vad.scp,utt2spk}.
Options:
  --nj N                 parallel accumulation jobs ($nj)
  --cmd CMD              job runner, e.g. run.pl or slurm.pl ($cmd)
  --stage N              resume: -2 (or less) from the init, x = from EM iteration x ($stage)
  --num-gaussians N      UBM size ($num_gaussians)
  --num-iters N          EM iterations after init ($num_iters)
  --num-iters-init N     EM passes during the initialisation ($num_iters_init)
  --num-frames N         frames held in memory for the initialisation ($num_frames)
  --subsample N          use every N-th frame in the EM iterations ($subsample)
  --min-variance F       variance floor ($min_variance)
  --deltas-config FILE   add_deltas options ($deltas_config)
  --cmvn-config FILE     apply_cmvn_sliding options ($cmvn_config)
  --feats-dir DIR        read prepared features from DIR/feats.scp (steps/make_ivector_feats.sh)
  --num-threads N        BLAS threads per job (0: cores / nj; the init and updates use all cores)
  --cleanup true|false   remove accumulators and intermediate models ($cleanup)"
. utils/parse_options.sh
. steps/lib/ivector_feats.sh

if [ $# -ne 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
dir=$2
ivector_check_files "$0" "$data/feats.scp" "$data/vad.scp" "$data/utt2spk" "$deltas_config" "$cmvn_config"

[ -z "$feats_dir" ] || ivector_check_files "$0" "$feats_dir/feats.scp"

mkdir -p "$dir/log"
feats=$(ivector_job_feats "$feats_dir" "$data" "$nj" "$deltas_config" "$cmvn_config")
if [ -n "$feats_dir" ]; then
  all_feats="scp,s,cs:$feats_dir/feats.scp"
else
  all_feats=$(ivector_feats_rspec "$data/feats.scp" "$data/vad.scp" "$deltas_config" "$cmvn_config")
fi
job_env=$(ivector_thread_env "$(ivector_threads "$nj" "$num_threads")")
one_env=$(ivector_thread_env "$(ivector_cores)")

if [ "$stage" -le -2 ]; then
  echo "$0: initialising a $num_gaussians-Gaussian diagonal UBM from $data"
  $cmd "$dir/log/init.log" \
    $one_env python -m sidkd.bin.gmm_global_init_from_feats --num-gauss="$num_gaussians" --num-iters="$num_iters_init" \
      --num-frames="$num_frames" --min-variance="$min_variance" "$all_feats" "$dir/0.dubm"
fi

for x in $(seq 0 $((num_iters - 1))); do
  if [ "$stage" -le "$x" ]; then
    echo "$0: EM iteration $x of $num_iters"
    $cmd JOB=1:"$nj" "$dir/log/acc.$x.JOB.log" \
      $job_env python -m sidkd.bin.gmm_global_acc_stats --subsample="$subsample" "$dir/$x.dubm" "$feats" "$dir/$x.JOB.acc"
    $cmd "$dir/log/update.$x.log" \
      $one_env python -m sidkd.bin.gmm_global_est --min-variance="$min_variance" "$dir/$x.dubm" \
        $(for j in $(seq "$nj"); do echo "$dir/$x.$j.acc"; done) "$dir/$((x + 1)).dubm"
    if $cleanup; then rm -f "$dir/$x".*.acc; fi
    grep -h "avg log-likelihood" "$dir/log/update.$x.log" | sed "s|^|$0: model $x: |" || true
  fi
done

cp "$dir/$num_iters.dubm" "$dir/final.dubm"
if $cleanup; then
  for x in $(seq 1 $((num_iters - 1))); do rm -f "$dir/$x.dubm"; done
fi
echo "$0: wrote $dir/final.dubm"
