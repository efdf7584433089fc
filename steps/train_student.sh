#!/usr/bin/env bash
# Train the student ResNet on <train-data> (AAM-softmax), distilled from the teacher i-vectors in
# <teacher-scp> when the KD weight is > 0 (give "none" as <teacher-scp> for the λ = 0 ablation).
# Writes <dir>/model.json, <dir>/checkpoints/epoch_E.pt each epoch, <dir>/final.pt (average of the
# last checkpoints), <dir>/log/train.log and <dir>/train_seconds. Rerunning continues from the
# newest checkpoint (--resume true, the default).
help_message="Usage: $0 [options] <train-data> <teacher-scp|none> <dir>
  e.g.: $0 --kd-weight 1.0 data/train exp/ivectors_train/ivector.scp exp/student_kd
Options:
  --nnet-config FILE   # network/training yaml (default: conf/student.yaml)
  --kd-weight W        # λ of L = L_AAM + λ·L_kd (default: the yaml's loss.kd.weight)
  --kd-normalisation N # teacher side: none|mean|length|whiten (default: the yaml's loss.kd.normalisation)
  --kd-target T        # teacher target: ivector|lda|speaker_mean|speaker_mean_lda|crop|crop_lda|relation
                       # (default: the yaml's loss.kd.target; docs/student.md). crop*: <teacher-scp> is
                       # steps/extract_crop_ivectors.sh's ivector.scp, its crops file beside it
  --seed N             # every random stream of the training (default: the yaml's seed)
  --num-procs N        # >1: torchrun --nproc_per_node N (DistributedDataParallel)
  --num-threads N      # torch threads per process (default 0: the machine's cores / --num-procs)
  --device D           # auto | cpu | cuda (default: the yaml's device)
  --resume true|false  # continue from the newest checkpoint (default true)
  --overwrite true|false # train again although <dir>/config.yaml records another configuration (default false)
  --cmd CMD            # job runner (default run.pl)"
set -euo pipefail

nnet_config=conf/student.yaml
kd_weight=
kd_normalisation=
kd_target=
seed=
num_procs=1
num_threads=0
device=
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
teacher_opt=()
if [ "$teacher" != none ]; then
  [ -f "$teacher" ] || { echo "$0: no such file: $teacher" >&2; exit 1; }
  teacher_opt=(--teacher-scp "$teacher")
  if [ "${kd_target#crop}" != "$kd_target" ] && [ ! -f "$(dirname "$teacher")/crops" ]; then
    echo "$0: --kd-target $kd_target needs $(dirname "$teacher")/crops beside $teacher (steps/extract_crop_ivectors.sh)" >&2
    exit 1
  fi
fi
opts=(--config "$nnet_config" --train-data "$data" --dir "$dir" --resume "$resume" --overwrite "$overwrite" "${teacher_opt[@]}")
[ -n "$kd_weight" ] && opts+=(--kd-weight "$kd_weight")
[ -n "$kd_normalisation" ] && opts+=(--kd-normalisation "$kd_normalisation")
[ -n "$kd_target" ] && opts+=(--kd-target "$kd_target")
[ -n "$seed" ] && opts+=(--seed "$seed")
[ -n "$device" ] && opts+=(--device "$device")

. steps/lib/run_training.sh
run_training train_student
