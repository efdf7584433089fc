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
  --seed N             # default: the yaml's seed
  --num-procs N        # >1: torchrun --nproc_per_node N (DistributedDataParallel)
  --device D           # auto | cpu | cuda (default: the yaml's device)
  --resume true|false  # continue from the newest checkpoint (default true)
  --cmd CMD            # job runner (default run.pl)"
set -euo pipefail

nnet_config=conf/student.yaml
kd_weight=
kd_normalisation=
seed=
num_procs=1
device=
resume=true
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
fi
opts=(--config "$nnet_config" --train-data "$data" --dir "$dir" --resume "$resume" "${teacher_opt[@]}")
[ -n "$kd_weight" ] && opts+=(--kd-weight "$kd_weight")
[ -n "$kd_normalisation" ] && opts+=(--kd-normalisation "$kd_normalisation")
[ -n "$seed" ] && opts+=(--seed "$seed")
[ -n "$device" ] && opts+=(--device "$device")

# A finished training is not redone (and its train_seconds stays): delete final.pt to train again.
if [ "$resume" = true ] && [ -f "$dir/final.pt" ] && [ -f "$dir/train_seconds" ]; then
  echo "$0: $dir/final.pt exists: training finished earlier in $(cat "$dir/train_seconds") s; delete it to train again"
  exit 0
fi
mkdir -p "$dir/log"
# Checkpoints and models are written under a temporary name and renamed; a killed run's temporaries
# are never read, only removed here.
rm -f "$dir"/*.tmp.* "$dir"/checkpoints/*.tmp.*
cp "$nnet_config" "$dir/nnet_config.yaml"
if [ "$num_procs" -gt 1 ]; then
  launcher=(torchrun --standalone --nproc_per_node "$num_procs" -m sidkd.bin.train_student)
else
  launcher=(python -m sidkd.bin.train_student)
fi
start=$(date +%s)
$cmd "$dir/log/train.log" "${launcher[@]}" "${opts[@]}"
end=$(date +%s)
echo $((end - start)) > "$dir/train_seconds"
[ -f "$dir/final.pt" ] || { echo "$0: training ended without $dir/final.pt; see $dir/log/train.log" >&2; exit 1; }
echo "$0: trained $dir/final.pt in $((end - start)) s (log: $dir/log/train.log)"
