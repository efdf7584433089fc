#!/usr/bin/env bash
# sidkd recipe: speaker verification with an i-vector teacher and a ResNet student distilled from it.
# Run from this directory. Every stage is one block; rerun any slice with
#   ./run.sh --stage N --stop-stage M
# Stages:
#   0  data directories (train, test, sc_train, sc_test) + trials, validated
#   1  MFCC + energy VAD for every data dir
. ./path.sh
. ./cmd.sh
set -euo pipefail

stage=0
stop_stage=1                 # the last stage: a bare ./run.sh runs everything
nj=4                         # parallel jobs per step
corpus_root=../shared/corpora
splits_dir=                  # default: $corpus_root/splits (speaker lists <corpus>.{train,test}.spk)
long_corpus=speechocean762
extra_train_corpora="librispeech_subset:ls"
short_corpus=speechcommands
help_message="Usage: $0 [--stage N] [--stop-stage M] [--corpus-root DIR] [--nj N] [options]
Options (defaults in this script): --splits-dir --long-corpus --extra-train-corpora --short-corpus"
. utils/parse_options.sh

data=data
mfccdir=mfcc

# Stage 0: Kaldi data directories from the corpus folders, speaker-disjoint, with all-pairs trials.
if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  local/prepare_data.sh --corpus-root "$corpus_root" --splits-dir "$splits_dir" \
    --long-corpus "$long_corpus" --extra-train-corpora "$extra_train_corpora" \
    --short-corpus "$short_corpus" $data
fi

# Stage 1: MFCCs (conf/mfcc.conf: Kaldi voxceleb v1 values) and energy VAD (conf/vad.conf) for
# every data dir. Utterances that cannot be read or are shorter than a frame are skipped and named
# in exp/make_mfcc/<name>/*.log; fix_data_dir.sh then drops them from the data dir and says so.
if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for name in train test sc_train sc_test; do
    steps/make_mfcc.sh --nj $nj --cmd "$train_cmd" --mfcc-config conf/mfcc.conf \
      --write-utt2num-frames true $data/$name exp/make_mfcc/$name $mfccdir
    utils/fix_data_dir.sh $data/$name
    steps/compute_vad_decision.sh --nj $nj --cmd "$train_cmd" --vad-config conf/vad.conf \
      $data/$name exp/make_vad/$name $mfccdir
    utils/fix_data_dir.sh $data/$name
  done
fi
