#!/usr/bin/env bash
# sidkd recipe: speaker verification with an i-vector teacher and a ResNet student distilled from it.
# Run from this directory. Every stage is one block; rerun any slice with
#   ./run.sh --stage N --stop-stage M
# Stages:
#   0  data directories (train, test, sc_train, sc_test) + trials, validated
#   1  MFCC + energy VAD for every data dir
#   2  i-vector teacher: diagonal UBM then full-covariance UBM on data/train
#   3  i-vector teacher: total-variability extractor on data/train
#   4  i-vectors for train, test, sc_train, sc_test (exp/ivectors_<name>)
. ./path.sh
. ./cmd.sh
set -euo pipefail

stage=0
stop_stage=4                 # the last stage: a bare ./run.sh runs everything
nj=4                         # parallel jobs per step
corpus_root=../shared/corpora
splits_dir=                  # default: $corpus_root/splits (speaker lists <corpus>.{train,test}.spk)
long_corpus=speechocean762
extra_train_corpora="librispeech_subset:ls"
short_corpus=speechcommands
# i-vector teacher sizes (ivector_num_gauss, ivector_dim, ubm_num_iters, ivector_num_iters,
# ivector_num_gselect, ivector_min_post): conf/ivector.conf says why; each is also an option here.
. conf/ivector.conf
help_message="Usage: $0 [--stage N] [--stop-stage M] [--corpus-root DIR] [--nj N] [options]
Options (defaults in this script): --splits-dir --long-corpus --extra-train-corpora --short-corpus
  --ivector-num-gauss --ivector-dim --ubm-num-iters --ivector-num-iters --ivector-num-gselect
  --ivector-min-post (defaults in conf/ivector.conf)"
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

# Stage 2: the UBMs of the i-vector teacher on data/train's voiced frames (MFCC + deltas, sliding
# CMN: conf/ivector_{deltas,cmvn}.conf): diagonal (mixing-up init + EM), then full covariance.
if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  steps/train_diag_ubm.sh --nj $nj --cmd "$train_cmd" --num-gaussians $ivector_num_gauss \
    --num-iters $ubm_num_iters $data/train exp/diag_ubm
  steps/train_full_ubm.sh --nj $nj --cmd "$train_cmd" --num-iters $ubm_num_iters \
    --num-gselect $ivector_num_gselect $data/train exp/diag_ubm exp/full_ubm
fi

# Stage 3: the total-variability i-vector extractor (Kaldi's formulation) on data/train.
if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  steps/train_ivector_extractor.sh --nj $nj --cmd "$train_cmd" --ivector-dim $ivector_dim \
    --num-iters $ivector_num_iters --num-gselect $ivector_num_gselect --min-post $ivector_min_post \
    exp/full_ubm $data/train exp/extractor
fi

# Stage 4: i-vectors (ivector.scp), speaker means (spk_ivector.scp) and num_utts.ark per data dir.
if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  for name in train test sc_train sc_test; do
    steps/extract_ivectors.sh --nj $nj --cmd "$train_cmd" --num-gselect $ivector_num_gselect \
      --min-post $ivector_min_post exp/extractor $data/$name exp/ivectors_$name
  done
fi
