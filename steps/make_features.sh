#!/usr/bin/env bash
# Shared body of steps/make_mfcc.sh and steps/make_fbank.sh (call those): computes features for a
# data directory in $nj parallel jobs, writes <featdir>/raw_<type>_<name>.JOB.{ark,scp}, and puts
# feats.scp and utt2num_frames into the data directory.
# Unreadable, empty or shorter-than-one-frame utterances are skipped (named in the job logs);
# the step fails when more than --max-fail-fraction of the data dir's utterances were skipped,
# otherwise it lists them: run utils/fix_data_dir.sh to drop them from the other files.
help_message="Usage: $0 --feat-type mfcc|fbank [options] <data-dir> [<log-dir> [<feat-dir>]]
 defaults: <log-dir> = exp/make_<type>/<data-name>, <feat-dir> = <type> (both under the recipe root)
Options:
  --nj N                         parallel jobs (default 4)
  --cmd CMD                      how to run them: run.pl, slurm.pl ... (default run.pl)
  --feat-config FILE             feature options, Kaldi syntax (default conf/<type>.conf)
  --write-utt2num-frames BOOL    also write <data-dir>/utt2num_frames (default true)
  --max-fail-fraction F          fail if more than this fraction is skipped (default 0.01)"
set -euo pipefail
[ -f ./path.sh ] && . ./path.sh

feat_type=
nj=4
cmd=run.pl
feat_config=
write_utt2num_frames=true
max_fail_fraction=0.01
. utils/parse_options.sh

if [ $# -lt 1 ] || [ $# -gt 3 ]; then echo "$help_message" >&2; exit 1; fi
case "$feat_type" in
  mfcc|fbank) ;;
  *) echo "$prog: --feat-type must be mfcc or fbank, got '$feat_type'" >&2; exit 1 ;;
esac
data=$1
prog=make_${feat_type}.sh
name=$(basename "$data")
logdir=${2:-exp/make_${feat_type}/$name}
featdir=${3:-$feat_type}
feat_config=${feat_config:-conf/${feat_type}.conf}

for f in "$data/wav.scp" "$data/utt2spk" "$feat_config"; do
  [ -f "$f" ] || { echo "$prog: no such file $f" >&2; exit 1; }
done
# Features that no longer match the audio must not survive next to the new ones, nor stop the
# check below (an earlier failed run leaves an empty utt2num_frames).
for f in feats.scp utt2num_frames vad.scp; do
  if [ -f "$data/$f" ]; then
    mkdir -p "$data/.backup"
    mv "$data/$f" "$data/.backup/$f"
    echo "$prog: moved the old $data/$f to $data/.backup/"
  fi
done
# Missing or bad audio is not an error here: such utterances are skipped and counted below.
utils/validate_data_dir.sh --no-text --no-feats --no-check-audio "$data"

mkdir -p "$featdir" "$logdir"
# Absolute, so that feats.scp works from any directory.
featdir=$(cd "$featdir" && pwd)

utils/split_data.sh "$data" "$nj"
sdata=$data/split$nj
segments_opt=
[ -f "$data/segments" ] && segments_opt="--segments=$sdata/JOB/segments"
num_frames_opt=
$write_utt2num_frames && num_frames_opt="--write-utt2num-frames=$logdir/utt2num_frames.JOB"

# Leftovers of a killed run (never read: archives are renamed into place only when complete).
rm -f "$featdir/raw_${feat_type}_${name}".*.tmp.* "$data"/feats.scp.tmp "$data"/utt2num_frames.tmp

# Jobs never fail for skipped utterances (--max-fail-fraction=1): the fraction is judged below,
# over the whole data dir, where a few bad files in a small job are not a reason to stop.
$cmd JOB=1:"$nj" "$logdir/make_${feat_type}_${name}.JOB.log" \
  python -m sidkd.bin.compute_${feat_type}_feats --config="$feat_config" --max-fail-fraction=1 \
    $segments_opt $num_frames_opt "scp:$sdata/JOB/wav.scp" \
    "ark,scp:$featdir/raw_${feat_type}_${name}.JOB.ark,$featdir/raw_${feat_type}_${name}.JOB.scp"

# Written under a temporary name and renamed, feats.scp last: a step killed here leaves no
# partial feats.scp that a later stage (or a resumed run.sh) would take for complete.
if $write_utt2num_frames; then
  for n in $(seq "$nj"); do cat "$logdir/utt2num_frames.$n"; done | sort > "$data/utt2num_frames.tmp"
  mv "$data/utt2num_frames.tmp" "$data/utt2num_frames"
fi
for n in $(seq "$nj"); do cat "$featdir/raw_${feat_type}_${name}.$n.scp"; done | sort > "$data/feats.scp.tmp"
mv "$data/feats.scp.tmp" "$data/feats.scp"

num_in=$(wc -l < "$data/utt2spk")
num_out=$(wc -l < "$data/feats.scp")
num_skipped=$((num_in - num_out))
echo "$prog: $data: $num_in utterances, $num_out with $feat_type features, $num_skipped skipped"
if [ "$num_skipped" -gt 0 ]; then
  echo "$prog: skipped utterances (reasons in $logdir/make_${feat_type}_${name}.*.log):"
  grep -h "skipping utterance" "$logdir"/make_${feat_type}_${name}.*.log | awk 'NR <= 50 { print "  " $0 }' || true
  if awk -v s="$num_skipped" -v n="$num_in" -v f="$max_fail_fraction" 'BEGIN { exit !(s > f * n) }'; then
    echo "$prog: ERROR: $num_skipped of $num_in utterances failed, more than --max-fail-fraction $max_fail_fraction" >&2
    if grep -qh "skipping utterance .*: sample rate" "$logdir"/make_${feat_type}_${name}.*.log; then
      echo "$prog: the audio is not at the rate of $feat_config: resample it, or run the recipe at the audio's" \
        "rate: ./run.sh --sample-rate <Hz> --stage 1 (it writes exp/conf_<Hz>/mfcc.conf and trains the students" \
        "at that rate; by hand: --sample-frequency and --high-freq of conf/mfcc.conf and conf/fbank.conf," \
        "features.sample_rate and features.fbank.high_freq of conf/student.yaml)" >&2
    fi
    exit 1
  fi
  echo "$prog: WARNING: run utils/fix_data_dir.sh $data to remove them from the other files"
else
  utils/validate_data_dir.sh --no-text --no-check-audio "$data"
fi
echo "$prog: succeeded making $feat_type features for $name"
