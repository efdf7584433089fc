#!/usr/bin/env bash
# Teacher i-vectors of fixed crops, for the crop targets of the student (loss.kd.target crop,
# docs/student.md): every utterance of <data-dir> gets --num-crops crops of --crop-seconds, spread
# evenly over its frames (one crop, the whole utterance, when it is no longer), and each crop its own
# i-vector under the key <utt>-crop<k>. Writes <ivector-dir>/crops ("<crop> <utt> <start-frame>
# <num-frames>", frames of conf/mfcc.conf), <ivector-dir>/frame_shift (seconds) and, through
# steps/extract_ivectors.sh on a data dir of the cropped features (<ivector-dir>/data),
# <ivector-dir>/ivector.scp. The student then draws its training crops only at those positions.
# Deltas and sliding CMN see the crop only, as the student's features do.
set -euo pipefail

nj=4
cmd=run.pl
num_crops=4
crop_seconds=2.0
mfcc_config=conf/mfcc.conf
num_gselect=20
min_post=0.025
cleanup=true           # remove the cropped features once the i-vectors are written
help_message="Usage: $0 [options] <extractor-dir> <data-dir> <ivector-dir>
 e.g.: $0 --nj 4 --num-crops 4 --crop-seconds 2 exp/extractor data/train exp/ivectors_train_crops
Needs <data-dir>/{feats.scp,vad.scp,utt2spk,utt2num_frames} and the extractor's files.
Options:
  --nj N --cmd CMD           parallel jobs and runner ($nj, $cmd)
  --num-crops K              crops per utterance ($num_crops)
  --crop-seconds S           crop length; must be the student's features.chunk_seconds ($crop_seconds)
  --mfcc-config FILE         the features' config: frame shift and snip-edges are read from it ($mfcc_config)
  --num-gselect N --min-post F   as in training ($num_gselect, $min_post)
  --cleanup true|false       delete the cropped features at the end ($cleanup)"
. utils/parse_options.sh

if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
srcdir=$1
data=$2
dir=$3
for f in "$data/feats.scp" "$data/vad.scp" "$data/utt2spk" "$data/utt2num_frames" "$mfcc_config"; do
  [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
done

# The crop [f, f + C) of frames is the sample slice [f·shift, (f + C)·shift) only when frames are
# centred every shift (snip-edges=false); Kaldi's default (true) would shift every crop by ~1.5 frames.
snip=$(sed -n 's/^--snip-edges=\([a-z]*\).*/\1/p' "$mfcc_config" | tail -n 1)
if [ "$snip" != false ]; then
  echo "$0: $mfcc_config: crop positions need --snip-edges=false (frames centred every frame shift)" >&2
  exit 1
fi
shift_ms=$(sed -n 's/^--frame-shift=\([0-9.]*\).*/\1/p' "$mfcc_config" | tail -n 1)
shift_ms=${shift_ms:-10}
crop_frames=$(awk -v s="$crop_seconds" -v f="$shift_ms" 'BEGIN{n = s * 1000 / f; r = int(n + 0.5);
  if (r < 1 || (n - r) > 1e-6 || (r - n) > 1e-6) exit 1; print r}') || {
  echo "$0: --crop-seconds $crop_seconds is not a whole number of ${shift_ms}-ms frames" >&2; exit 1; }

# The i-vectors are kept when made with these settings from this data and extractor, else remade.
params="num_crops=$num_crops crop_frames=$crop_frames frame_shift_ms=$shift_ms data=$data \
utt2num_frames_sha1=$(sha1sum < "$data/utt2num_frames" | cut -d' ' -f1) \
extractor_sha1=$(sha1sum < "$srcdir/final.ie" | cut -d' ' -f1) num_gselect=$num_gselect min_post=$min_post"
if [ -f "$dir/crop_params" ] && [ -f "$dir/ivector.scp" ]; then
  if [ "$(cat "$dir/crop_params")" = "$params" ]; then
    echo "$0: $dir: crop i-vectors with these settings exist; kept"
    exit 0
  fi
  changed=$( { diff <(tr ' ' '\n' < "$dir/crop_params") <(tr ' ' '\n' <<< "$params") || true; } | sed -n 's/^> //p' | tr '\n' ' ')
  echo "$0: $dir: made with other settings (now: $changed); remaking"
fi
rm -f "$dir/crop_params" "$dir/ivector.scp"

mkdir -p "$dir/log" "$dir/data" "$dir/crop_feats"
echo "$0: $num_crops crops of $crop_frames frames per utterance of $data"
python -m sidkd.bin.make_crops --num-crops "$num_crops" --crop-frames "$crop_frames" \
  "$data/utt2num_frames" "$dir/crops"
awk -v f="$shift_ms" 'BEGIN{printf "%g\n", f / 1000}' > "$dir/frame_shift.tmp"
mv "$dir/frame_shift.tmp" "$dir/frame_shift"

# The crops as a data dir: utt2spk, utt2num_frames, and their slices of feats.scp and vad.scp.
cdata=$dir/data
awk 'NR == FNR {spk[$1] = $2; next} ($2 in spk) {print $1, spk[$2]}' "$data/utt2spk" "$dir/crops" \
  | LC_ALL=C sort > "$cdata/utt2spk"
awk '{print $1, $4}' "$dir/crops" | LC_ALL=C sort > "$cdata/utt2num_frames"
utils/utt2spk_to_spk2utt.pl "$cdata/utt2spk" > "$cdata/spk2utt"
utils/split_data.sh "$data" "$nj"
sdata=$data/split$nj
for kind in feats vad; do
  $cmd JOB=1:"$nj" "$dir/log/crop_$kind.JOB.log" \
    python -m sidkd.bin.extract_feature_crops --crops "$dir/crops" "scp:$sdata/JOB/$kind.scp" \
      "ark,scp:$dir/crop_feats/$kind.JOB.ark,$dir/crop_feats/$kind.JOB.scp"
  for j in $(seq "$nj"); do cat "$dir/crop_feats/$kind.$j.scp"; done | LC_ALL=C sort > "$cdata/$kind.scp.tmp"
  mv "$cdata/$kind.scp.tmp" "$cdata/$kind.scp"
done
utils/fix_data_dir.sh --check-audio false "$cdata"   # drops crops that could not be cut, and says so

steps/extract_ivectors.sh --nj "$nj" --cmd "$cmd" --num-gselect "$num_gselect" --min-post "$min_post" \
  "$srcdir" "$cdata" "$dir"
if [ "$cleanup" = true ]; then
  rm -rf "$dir/crop_feats" "$cdata"/split* "$cdata/.backup"
  rm -f "$cdata/feats.scp" "$cdata/vad.scp"
fi
echo "$0: $(wc -l < "$dir/crops") crops listed, $(wc -l < "$dir/ivector.scp") crop i-vectors in $dir/ivector.scp"
echo "$params" > "$dir/crop_params"
