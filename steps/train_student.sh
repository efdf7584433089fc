#!/usr/bin/env bash
# Train the student ResNet on <train-data> (AAM-softmax), distilled from the teacher i-vectors in
# <teacher-scp> when the config's loss.kd.weight is > 0 ("none" when it is 0: the teacher is then
# not read). Writes <dir>/config.yaml (what it was trained with), <dir>/model.json,
# <dir>/checkpoints/epoch_E.pt each epoch, <dir>/final.pt (average of the last checkpoints),
# <dir>/log/train.log and <dir>/train_seconds. Rerunning continues from the newest checkpoint.
help_message="Usage: $0 [options] <train-data> <teacher-scp|none> <dir>
  e.g.: $0 --nnet-config conf/student_kd.yaml data/train exp/ivectors_train/ivector.scp exp/student_kd
Options:
  --nnet-config FILE   # network yaml or a variant of it (base: + differences; default: conf/student.yaml).
                       # Crop targets (loss.kd.target crop*): <teacher-scp> is steps/extract_crop_ivectors.sh's
                       # ivector.scp, its crops file beside it
  --set 'KEY=VALUE ..' # settings over the yaml by dotted key, e.g. 'seed=3 optim.num_epochs=2 optim.average_last=1'
  --num-procs N        # >1: torchrun --nproc_per_node N (DistributedDataParallel)
  --num-threads N      # torch threads per process (default 0: the machine's cores / --num-procs)
  --resume true|false  # continue from the newest checkpoint (default true)
  --overwrite true|false # train again although <dir>/config.yaml records another configuration (default false)
  --cmd CMD            # job runner (default run.pl)"
set -euo pipefail

nnet_config=conf/student.yaml
set=
num_procs=1
num_threads=0
resume=true
overwrite=false
cmd=run.pl
. utils/parse_options.sh

if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
data=$1
teacher=$2
dir=$3

for f in "$nnet_config" "$data/wav.scp" "$data/utt2spk"; do
  [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
done
opts=(--config "$nnet_config" --train-data "$data" --dir "$dir" --resume "$resume" --overwrite "$overwrite")
if [ "$teacher" != none ]; then
  [ -f "$teacher" ] || { echo "$0: no such file: $teacher" >&2; exit 1; }
  opts+=(--teacher-scp "$teacher")
fi
[ -z "$set" ] || opts+=(--set "$set")

. steps/lib/run_training.sh
run_training train_student
