#!/usr/bin/env bash
# Trains the total-variability i-vector extractor (Kaldi's formulation, see sidkd/ivector).
# Stage -2: initialise <dir>/0.ie from the full UBM. Stage -1: per-utterance Baum-Welch stats
# (full-UBM posteriors over the diagonal UBM's top --num-gselect, pruned at --min-post) written
# once to <dir>/stats/stats.JOB.{ark,scp} with the second-order sums second_order.JOB.npz: the UBMs
# are fixed, so the EM iterations read these and not the features. Iteration x = $cmd JOB=1:nj
# ivector_extractor_acc_stats -> <dir>/acc.x.JOB, then ivector_extractor_est -> <dir>/<x+1>.ie.
# The objective (log-likelihood per frame, must not decrease) is in <dir>/log/update.x.log.
set -euo pipefail

nj=4
cmd=run.pl
stage=-2
ivector_dim=200        # reference: 200
num_iters=5            # reference: 5
num_gselect=20         # Kaldi: 20
min_post=0.025         # Kaldi: 0.025
posterior_scale=1.0    # Kaldi's default for offline extractors
prior_offset=100       # Kaldi's initial prior offset
batch_size=256         # utterances per batched E-step (bigger GEMMs; 256 x R x R float64 = 82 MB)
update_variances=true
variance_floor_factor=0.1
gaussian_min_count=100
deltas_config=conf/ivector_deltas.conf
cmvn_config=conf/ivector_cmvn.conf
feats_dir=             # prepared features (steps/make_ivector_feats.sh); empty: the pipeline on <data-dir>
num_threads=0          # BLAS threads per job; 0: the machine's cores / nj
num_processes=1        # accepted for Kaldi compatibility
cleanup=true
help_message="Usage: $0 [options] <ubm-dir> <data-dir> <extractor-dir>
 e.g.: $0 --nj 4 --ivector-dim 200 exp/full_ubm data/train exp/extractor
Needs <ubm-dir>/{final.dubm,final.ubm} and <data-dir>/{feats.scp,vad.scp,utt2spk}.
Writes <extractor-dir>/final.ie (and final.dubm, final.ubm beside it).
Options:
  --feats-dir DIR        read prepared features from DIR/feats.scp (steps/make_ivector_feats.sh)
  --num-threads N        BLAS threads per job (0: cores / nj; the updates use all cores)
  --nj N --cmd CMD           parallel jobs and runner ($nj, $cmd)
  --stage N                  resume: -2 init, -1 stats, x = from EM iteration x ($stage)
  --ivector-dim N            i-vector dimension ($ivector_dim)
  --num-iters N              EM iterations ($num_iters)
  --num-gselect N            Gaussians per frame from the diagonal UBM ($num_gselect)
  --min-post F               posterior pruning threshold ($min_post)
  --posterior-scale F        scale on the posteriors ($posterior_scale)
  --update-variances true|false  --variance-floor-factor F  --gaussian-min-count F
  --deltas-config FILE --cmvn-config FILE    feature options
  --cleanup true|false       remove accumulators and intermediate models ($cleanup)"
. utils/parse_options.sh
. steps/lib/ivector_feats.sh

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
srcdir=$1
data=$2
dir=$3
ivector_check_files "$0" "$srcdir/final.dubm" "$srcdir/final.ubm" "$data/feats.scp" "$data/vad.scp" \
  "$data/utt2spk" "$deltas_config" "$cmvn_config"

[ -z "$feats_dir" ] || ivector_check_files "$0" "$feats_dir/feats.scp"

mkdir -p "$dir/log" "$dir/stats"
feats=$(ivector_job_feats "$feats_dir" "$data" "$nj" "$deltas_config" "$cmvn_config")
job_env=$(ivector_thread_env "$(ivector_threads "$nj" "$num_threads")")
one_env=$(ivector_thread_env "$(ivector_cores)")

# A copy under a temporary name, renamed when complete: a killed run never leaves a half file
# under the real name.
copy_atomic() { cp "$1" "$2.tmp.$$" && mv "$2.tmp.$$" "$2"; }
rm -f "$dir"/*.tmp.* "$dir"/stats/*.tmp.*  # what a killed run left

if [ "$stage" -le -2 ]; then
  copy_atomic "$srcdir/final.dubm" "$dir/final.dubm"
  copy_atomic "$srcdir/final.ubm" "$dir/final.ubm"
  $cmd "$dir/log/init.log" \
    python -m sidkd.bin.ivector_extractor_init --ivector-dim="$ivector_dim" --prior-offset="$prior_offset" \
      "$dir/final.ubm" "$dir/0.ie"
fi

if [ "$stage" -le -1 ]; then
  echo "$0: computing Baum-Welch statistics for $data"
  $cmd JOB=1:"$nj" "$dir/log/stats.JOB.log" \
    $job_env python -m sidkd.bin.compute_ivector_stats --num-gselect="$num_gselect" --min-post="$min_post" \
      --posterior-scale="$posterior_scale" --second-order="$dir/stats/second_order.JOB.npz" \
      "$dir/final.dubm" "$dir/final.ubm" "$feats" "ark,scp:$dir/stats/stats.JOB.ark,$dir/stats/stats.JOB.scp"
fi

for x in $(seq 0 $((num_iters - 1))); do
  if [ "$stage" -le "$x" ]; then
    echo "$0: EM iteration $x of $num_iters"
    $cmd JOB=1:"$nj" "$dir/log/acc.$x.JOB.log" \
      $job_env python -m sidkd.bin.ivector_extractor_acc_stats --batch-size="$batch_size" \
        --second-order="$dir/stats/second_order.JOB.npz" "$dir/$x.ie" "scp:$dir/stats/stats.JOB.scp" \
        "$dir/acc.$x.JOB"
    $cmd "$dir/log/update.$x.log" \
      $one_env python -m sidkd.bin.ivector_extractor_est --update-variances="$update_variances" \
        --variance-floor-factor="$variance_floor_factor" --gaussian-min-count="$gaussian_min_count" \
        "$dir/$x.ie" $(for j in $(seq "$nj"); do echo "$dir/acc.$x.$j"; done) "$dir/$((x + 1)).ie"
    if $cleanup; then rm -f "$dir/acc.$x".*; fi
    grep -h "objective" "$dir/log/update.$x.log" | sed "s|^|$0: model $x: |" || true
  fi
done

copy_atomic "$dir/$num_iters.ie" "$dir/final.ie"
if $cleanup; then
  for x in $(seq 1 $((num_iters - 1))); do rm -f "$dir/$x.ie"; done
fi
echo "$0: wrote $dir/final.ie"
