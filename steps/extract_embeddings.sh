#!/usr/bin/env bash
# Student embeddings of every utterance of <data>, with the model in <model-dir> (model.json +
# final.pt from steps/train_student.sh) -> <out>/xvector.scp (+ xvector.J.ark), in --nj jobs.
help_message="Usage: $0 [options] <model-dir> <data> <out>
  e.g.: $0 --nj 4 exp/student_kd data/test exp/student_kd/xvectors_test
Options:
  --nj N                 # parallel jobs (default 4)
  --cmd CMD              # job runner (default run.pl)
  --model FILE           # model file in <model-dir> (default final.pt)
  --max-duration S       # crop each utterance to S seconds first (default 0: whole utterance)
  --crop-position P      # start | center (default center)
  --chunk-seconds S      # longer utterances are embedded in chunks and averaged (default 10)
  --device D             # cpu | cuda (default cpu)"
set -euo pipefail

nj=4
cmd=run.pl
model=final.pt
max_duration=0
crop_position=center
chunk_seconds=10
device=cpu
. utils/parse_options.sh

if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
model_dir=$1
data=$2
out=$3

for f in "$model_dir/model.json" "$model_dir/$model" "$data/wav.scp" "$data/utt2spk"; do
  [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
done
# split_data.sh keeps speakers whole: no more jobs than speakers.
num_spk=$(cut -d' ' -f2 "$data/utt2spk" | sort -u | wc -l)
[ "$nj" -le "$num_spk" ] || nj=$num_spk
mkdir -p "$out/log"
utils/split_data.sh "$data" "$nj"
sdata=$data/split$nj

$cmd JOB=1:"$nj" "$out/log/extract.JOB.log" \
  python -m sidkd.bin.extract_embeddings --model "$model" --max-duration "$max_duration" \
    --crop-position "$crop_position" --chunk-seconds "$chunk_seconds" --device "$device" \
    "$model_dir" "$sdata/JOB" "ark,scp:$out/xvector.JOB.ark,$out/xvector.JOB.scp"

for j in $(seq "$nj"); do cat "$out/xvector.$j.scp"; done | LC_ALL=C sort -k1,1 > "$out/xvector.scp.tmp"
mv "$out/xvector.scp.tmp" "$out/xvector.scp"
n_in=$(wc -l < "$data/utt2spk")
n_out=$(wc -l < "$out/xvector.scp")
echo "$0: $n_out of $n_in utterances of $data embedded -> $out/xvector.scp" \
  "(skipped ones are named in $out/log/extract.*.log)"
