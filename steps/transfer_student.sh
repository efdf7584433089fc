#!/usr/bin/env bash
# Transfer a trained student (<source-dir>: model.json + final.pt) to the short utterances of
# <train-data>: new sub-centre AAM head, L = L_msce + α·L_kl (+ β·L_mse to the teacher vectors in
# <teacher-scp> when β > 0; "none" otherwise). Writes <dir>/model.json, <dir>/checkpoints/epoch_E.pt,
# <dir>/final.pt, <dir>/log/train.log and <dir>/train_seconds, like steps/train_student.sh, so that
# steps/extract_embeddings.sh reads <dir>. Rerunning continues from the newest checkpoint.
help_message="Usage: $0 [options] <source-dir> <train-data> <teacher-scp|none> <dir>
  e.g.: $0 --sub-centers 3 --kl-weight 1.0 exp/student_kd data/sc_train none exp/transfer_msce_kl
Options:
  --nnet-config FILE   # transfer yaml (default: conf/transfer.yaml)
  --sub-centers K      # sub-centres per speaker (default: the yaml's loss.msce.sub_centers)
  --kl-weight A        # α of the long/short KL (default: the yaml's loss.kl.weight)
  --long-view V        # concat | source | utterance | concat+utterance (default: the yaml's loss.kl.long_view)
  --long-data DIR      # long-speech training data (e.g. data/train): replayed crops and the long views
                       # source and utterance; read only when one of them is on
  --replay-ratio R     # share of each batch replayed from --long-data (default: the yaml's replay.ratio)
  --short-seconds S    # crop length S, or LO,HI for one length per batch in [LO, HI] (default: the yaml's)
  --kd-weight B        # β of the MSE to the teacher (default: the yaml's loss.kd.weight)
  --freeze-blocks N    # first N embedder blocks frozen ... (default: the yaml's freeze.blocks)
  --freeze-epochs E    # ... for the first E epochs (default: the yaml's freeze.epochs)
  --seed N             # default: the yaml's seed
  --num-procs N        # >1: torchrun --nproc_per_node N (DistributedDataParallel)
  --num-threads N      # torch threads per process (default 0: the machine's cores / --num-procs)
  --device D           # auto | cpu | cuda (default: the yaml's device)
  --resume true|false  # continue from the newest checkpoint (default true)
  --overwrite true|false # train again although <dir>/config.yaml records another configuration (default false)
  --cmd CMD            # job runner (default run.pl)"
set -euo pipefail

nnet_config=conf/transfer.yaml
sub_centers=
kl_weight=
long_view=
long_data=
replay_ratio=
short_seconds=
kd_weight=
freeze_blocks=
freeze_epochs=
seed=
num_procs=1
num_threads=0
device=
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
[ -n "$long_data" ] && opts+=(--long-data "$long_data")
[ -n "$sub_centers" ] && opts+=(--sub-centers "$sub_centers")
[ -n "$kl_weight" ] && opts+=(--kl-weight "$kl_weight")
[ -n "$long_view" ] && opts+=(--long-view "$long_view")
[ -n "$kd_weight" ] && opts+=(--kd-weight "$kd_weight")
[ -n "$replay_ratio" ] && opts+=(--replay-ratio "$replay_ratio")
[ -n "$short_seconds" ] && opts+=(--short-seconds "$short_seconds")
[ -n "$freeze_blocks" ] && opts+=(--freeze-blocks "$freeze_blocks")
[ -n "$freeze_epochs" ] && opts+=(--freeze-epochs "$freeze_epochs")
[ -n "$seed" ] && opts+=(--seed "$seed")
[ -n "$device" ] && opts+=(--device "$device")

. steps/lib/run_training.sh
run_training transfer_student
