#!/usr/bin/env bash
# sidkd recipe: speaker verification with an i-vector teacher and a ResNet student distilled from it.
# Run from this directory. Every stage is one block; rerun any slice with
#   ./run.sh --stage N --stop-stage M
# Stages:
#   0  data directories (train, test, sc_train, sc_test) + trials, validated
. ./path.sh
. ./cmd.sh
set -euo pipefail

stage=0
stop_stage=0                 # the last stage: a bare ./run.sh runs everything
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

# Stage 0: Kaldi data directories from the corpus folders, speaker-disjoint, with all-pairs trials.
if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  local/prepare_data.sh --corpus-root "$corpus_root" --splits-dir "$splits_dir" \
    --long-corpus "$long_corpus" --extra-train-corpora "$extra_train_corpora" \
    --short-corpus "$short_corpus" $data
fi
