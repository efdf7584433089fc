#!/usr/bin/env bash
# Extracts i-vectors for a data dir with a trained extractor (Kaldi's sid/extract_ivectors.sh
# outputs): <dir>/ivector.scp (one vector per utterance with voiced frames, prior offset
# removed), <dir>/spk_ivector.scp (per speaker: mean of length-normalised i-vectors, normalised
# again, to length sqrt(dim)) and <dir>/num_utts.ark ("spk N"). Skipped utterances are named in
# <dir>/log/stats.JOB.log and counted at the end.
set -euo pipefail

nj=4
cmd=run.pl
stage=0
num_gselect=20
min_post=0.025
posterior_scale=1.0
batch_size=256
deltas_config=conf/ivector_deltas.conf
cmvn_config=conf/ivector_cmvn.conf
num_threads=0          # BLAS threads per job; 0: the machine's cores / nj
help_message="Usage: $0 [options] <extractor-dir> <data-dir> <ivector-dir>
 e.g.: $0 --nj 4 exp/extractor data/test exp/ivectors_test
Needs <extractor-dir>/{final.ie,final.dubm,final.ubm} and <data-dir>/{feats.scp,vad.scp,utt2spk,spk2utt}.
Options:
  --num-threads N        BLAS threads per job (0: cores / nj)
  --nj N --cmd CMD           parallel jobs and runner ($nj, $cmd)
  --stage N                  0: extract, 1: speaker means only ($stage)
  --num-gselect N --min-post F --posterior-scale F   as used in training
  --deltas-config FILE --cmvn-config FILE            feature options (as in training)"
. utils/parse_options.sh
. steps/lib/ivector_feats.sh

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
srcdir=$1
data=$2
dir=$3
ivector_check_files "$0" "$srcdir/final.ie" "$srcdir/final.dubm" "$srcdir/final.ubm" "$data/feats.scp" \
  "$data/vad.scp" "$data/utt2spk" "$data/spk2utt" "$deltas_config" "$cmvn_config"

mkdir -p "$dir/log"
# Round-robin parts (ivector_split_scp): i-vectors need no speaker grouping, and so every job gets
# as many frames.
mkdir -p "$dir/split$nj"
ivector_split_scp "$data/feats.scp" "$nj" "$dir/split$nj/feats"
for j in $(seq "$nj"); do
  utils/filter_scp.pl "$dir/split$nj/feats.$j.scp" "$data/vad.scp" > "$dir/split$nj/vad.$j.scp"
done
feats=$(ivector_feats_rspec "$dir/split$nj/feats.JOB.scp" "$dir/split$nj/vad.JOB.scp" "$deltas_config" "$cmvn_config")
job_env=$(ivector_thread_env "$(ivector_threads "$nj" "$num_threads")")

if [ "$stage" -le 0 ]; then
  echo "$0: extracting i-vectors for $data"
  # Two passes rather than a pipe, so a failing stats job cannot leave a truncated ark that the
  # extraction would accept.
  $cmd JOB=1:"$nj" "$dir/log/stats.JOB.log" \
    $job_env python -m sidkd.bin.compute_ivector_stats --num-gselect="$num_gselect" --min-post="$min_post" \
      --posterior-scale="$posterior_scale" "$srcdir/final.dubm" "$srcdir/final.ubm" "$feats" \
      "ark:$dir/stats.JOB.ark"
  $cmd JOB=1:"$nj" "$dir/log/extract.JOB.log" \
    $job_env python -m sidkd.bin.extract_ivectors --batch-size="$batch_size" "$srcdir/final.ie" "ark:$dir/stats.JOB.ark" \
      "ark,scp:$dir/ivector.JOB.ark,$dir/ivector.JOB.scp"
  rm -f "$dir"/stats.*.ark
  for j in $(seq "$nj"); do cat "$dir/ivector.$j.scp"; done | sort > "$dir/ivector.scp.tmp"
  mv "$dir/ivector.scp.tmp" "$dir/ivector.scp"
fi

if [ "$stage" -le 1 ]; then
  $cmd "$dir/log/speaker_mean.log" \
    python -m sidkd.bin.ivector_mean_by_speaker "$data/spk2utt" "scp:$dir/ivector.scp" \
      "ark,scp:$dir/spk_ivector.ark,$dir/spk_ivector.scp" "$dir/num_utts.ark"
fi

num_in=$(wc -l < "$data/utt2spk")
num_out=$(wc -l < "$dir/ivector.scp")
echo "$0: $num_in utterances in = $num_out i-vectors + $((num_in - num_out)) skipped (see $dir/log/stats.*.log)"
