#!/usr/bin/env bash
# Transfer a trained student (<source-dir>: model.json + final.pt) to the short utterances of
# <train-data>: new sub-centre AAM head, L = L_msce + α·L_kl (+ β·L_mse to the teacher vectors in
# <teacher-scp>, read only when β > 0; "none" otherwise). Writes <dir>/config.yaml,
# <dir>/model.json, <dir>/checkpoints/epoch_E.pt, <dir>/final.pt, <dir>/log/train.log and
# <dir>/train_seconds, like steps/train_student.sh, so that steps/extract_embeddings.sh reads <dir>.
# Rerunning continues from the newest checkpoint.
help_message="Usage: $0 [options] <source-dir> <train-data> <teacher-scp|none> <dir>
  e.g.: $0 --nnet-config conf/transfer_msce_kl.yaml --long-data data/train exp/student_kd data/sc_train \\
          none exp/transfer_msce_kl
Options:
  --nnet-config FILE   # transfer yaml or a variant of it (base: + differences; default: conf/transfer.yaml)
  --set 'KEY=VALUE ..' # settings over the yaml by dotted key, e.g. 'replay.ratio=0.25 short_seconds=[0.5,2]'
  --long-data DIR      # long-speech training data (e.g. data/train): replayed crops and the long views
                       # source and utterance; read only when one of them is on
  --num-procs N        # >1: torchrun --nproc_per_node N (DistributedDataParallel)
  --num-threads N      # torch threads per process (default 0: the machine's cores / --num-procs)
  --resume true|false  # continue from the newest checkpoint (default true)
  --overwrite true|false # train again although <dir>/config.yaml records another configuration (default false)
  --cmd CMD            # job runner (default run.pl)"
set -euo pipefail

nnet_config=conf/transfer.yaml
set=
long_data=
num_procs=1
num_threads=0
resume=true
overwrite=false
cmd=run.pl
. utils/parse_options.sh

if [ $# -ne 4 ]; then echo "$help_message" >&2; exit 1; fi
source_dir=$1
data=$2
teacher=$3
dir=$4

for f in "$nnet_config" "$source_dir/model.json" "$source_dir/final.pt" "$data/wav.scp" "$data/utt2spk" \
    ${long_data:+"$long_data/wav.scp" "$long_data/utt2spk"}; do
  [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
done
opts=(--config "$nnet_config" --source "$source_dir" --train-data "$data" --dir "$dir" --resume "$resume" --overwrite "$overwrite")
if [ "$teacher" != none ]; then
  [ -f "$teacher" ] || { echo "$0: no such file: $teacher" >&2; exit 1; }
  opts+=(--teacher-scp "$teacher")
fi
[ -z "$long_data" ] || opts+=(--long-data "$long_data")
[ -z "$set" ] || opts+=(--set "$set")

. steps/lib/run_training.sh
run_training transfer_student
