#!/usr/bin/env bash
# Train the LDA + PLDA back-end on any vector scp (i-vectors, embeddings), as Kaldi's
# ivector-mean / ivector-compute-lda / ivector-compute-plda do in egs/voxceleb/v1.
set -euo pipefail

cmd=run.pl
lda_dim=150                    # 0: no LDA
total_covariance_factor=0.0
num_iters=10
min_utts_per_spk=2             # speakers with fewer vectors are dropped (count in the logs)
length_norm=true               # scale to norm sqrt(dim) after the LDA, before the PLDA

usage="Usage: $0 [options] <vectors-scp> <data-dir|utt2spk> <model-dir>
 e.g.: $0 --lda-dim 150 exp/ivectors_train/ivector.scp data/train exp/ivectors_train/plda
Writes <model-dir>/mean.npz (mean of ALL vectors of the scp, subtracted at scoring time),
subset_mean.npz (mean of the training subset), lda.npz (unless --lda-dim 0), lda_dim and plda.npz.
Options:
  --cmd <cmd>                        # job runner (default: $cmd)
  --lda-dim <n>                      # LDA output dimension, 0 = no LDA (default: $lda_dim)
  --total-covariance-factor <f>      # as ivector-compute-lda (default: $total_covariance_factor)
  --num-iters <n>                    # PLDA EM iterations (default: $num_iters)
  --min-utts-per-spk <n>             # speakers with fewer vectors are dropped (default: $min_utts_per_spk)
  --length-norm <true|false>         # length-normalise before the PLDA (default: $length_norm)"

[ -f ./path.sh ] && . ./path.sh
. utils/parse_options.sh

if [ $# -ne 3 ]; then
  echo "$usage" >&2
  exit 1
fi
vectors=$1
utt2spk=$2
dir=$3
[ -d "$utt2spk" ] && utt2spk=$utt2spk/utt2spk
for f in "$vectors" "$utt2spk"; do
  [ -f "$f" ] || { echo "$0: no such file $f" >&2; exit 1; }
done
mkdir -p "$dir/log"

$cmd "$dir/log/compute_mean.log" \
  python -m sidkd.bin.compute_mean_vector "scp:$vectors" "$dir/mean.npz"
$cmd "$dir/log/compute_subset_mean.log" \
  python -m sidkd.bin.compute_mean_vector --utt2spk="$utt2spk" --min-utts-per-spk="$min_utts_per_spk" \
    "scp:$vectors" "$dir/subset_mean.npz"

lda_opt=
rm -f "$dir/lda.npz"
if [ "$lda_dim" -gt 0 ]; then
  $cmd "$dir/log/compute_lda.log" \
    python -m sidkd.bin.compute_lda --dim="$lda_dim" --total-covariance-factor="$total_covariance_factor" \
      --min-utts-per-spk="$min_utts_per_spk" --mean="$dir/subset_mean.npz" \
      "scp:$vectors" "$utt2spk" "$dir/lda.npz"
  lda_opt="--lda=$dir/lda.npz"
fi

$cmd "$dir/log/train_plda.log" \
  python -m sidkd.bin.train_plda --num-iters="$num_iters" --min-utts-per-spk="$min_utts_per_spk" \
    --length-norm="$length_norm" --mean="$dir/subset_mean.npz" $lda_opt \
    "scp:$vectors" "$utt2spk" "$dir/plda.npz"

echo "$lda_dim" > "$dir/lda_dim"  # the back-end's name in the score tables (local/score_backends.sh)
grep -h "using .* vectors of" "$dir/log/train_plda.log" | sed "s|^|$0: |" || true
echo "$0: back-end in $dir (lda_dim=$lda_dim)"
