#!/usr/bin/env bash
# A validation split inside a training data dir: --num-speakers speakers (seeded; not of the
# prefixed extra corpora; local/pick_dev_speakers.py) are held out with all their utterances as
# <dev-dir>, with all-pairs trials among them (<dev-dir>/trials); every other speaker is
# <train-dir>. Speaker-disjoint by construction and checked. Every file of <src-dir> (features,
# VAD, utt2num_frames, ...) is carried over, so no stage needs rerunning; existing i-vectors and
# embeddings of <src-dir> cover both parts. Each output dir is made under a temporary name and
# renamed when complete. <dev-dir>/split_params records the parameters and the source's utt2spk
# digest: a rerun with the same ones keeps the split, with others (or a rebuilt <src-dir>) remakes it
# and says what changed.
help_message="Usage: $0 [options] <src-dir> <train-dir> <dev-dir>
 e.g.: $0 --num-speakers 30 --seed 777 data/train data/train_dev_train data/train_dev
Options:
  --num-speakers N       held-out speakers (default 30)
  --seed S               seed of the choice (default 777)
  --exclude-prefixes P   space-separated speaker-id prefixes never held out (default \"ls\")
  --min-utts M           a held-out speaker has at least M utterances (default 2)"
set -euo pipefail
num_speakers=30
seed=777
exclude_prefixes="ls"
min_utts=2
. utils/parse_options.sh

if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
src=$1
train=$2
dev=$3
[ -f "$src/utt2spk" ] || { echo "$0: no such file: $src/utt2spk" >&2; exit 1; }
export LC_ALL=C

params="num_speakers=$num_speakers seed=$seed exclude_prefixes=${exclude_prefixes// /,} min_utts=$min_utts \
src=$src src_utt2spk_sha1=$(sha1sum < "$src/utt2spk" | cut -d' ' -f1)"
if [ -f "$dev/split_params" ] && [ -f "$dev/trials" ] && [ -f "$train/utt2spk" ]; then
  old=$(cat "$dev/split_params")
  if [ "$old" = "$params" ]; then
    echo "$0: $dev: the split of $src with these parameters exists; kept"
    exit 0
  fi
  changed=$( { diff <(tr ' ' '\n' <<< "$old") <(tr ' ' '\n' <<< "$params") || true; } | sed -n 's/^> //p' | tr '\n' ' ')
  echo "$0: $dev: made with other parameters or from another $src/utt2spk (now: $changed); remaking it and $train"
fi

mkdir -p "$(dirname "$dev")"
tmp=$(mktemp -d "${dev%/}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
utils/utt2spk_to_spk2utt.pl "$src/utt2spk" > "$tmp/spk2utt"
python local/pick_dev_speakers.py --num-speakers "$num_speakers" --seed "$seed" \
  --exclude-prefixes "$exclude_prefixes" --min-utts "$min_utts" "$tmp/spk2utt" > "$tmp/dev.spk"
awk 'NR == FNR {dev[$1] = 1; next} !($1 in dev) {print $1}' "$tmp/dev.spk" "$tmp/spk2utt" > "$tmp/train.spk"
utils/subset_data_dir.sh --spk-list "$tmp/dev.spk" "$src" "$tmp/dev"
utils/subset_data_dir.sh --spk-list "$tmp/train.spk" "$src" "$tmp/train"
python local/make_trials.py "$tmp/dev" "$tmp/dev/trials"

# the check a study relies on: no speaker and no utterance on both sides, none lost
shared=$( { comm -12 <(cut -d' ' -f1 "$tmp/dev/spk2utt") <(cut -d' ' -f1 "$tmp/train/spk2utt");
  comm -12 <(cut -d' ' -f1 "$tmp/dev/utt2spk") <(cut -d' ' -f1 "$tmp/train/utt2spk"); } | head -n 3 | tr '\n' ' ')
num_src=$(wc -l < "$src/utt2spk")
num_parts=$(( $(wc -l < "$tmp/dev/utt2spk") + $(wc -l < "$tmp/train/utt2spk") ))
if [ -n "$shared" ] || [ "$num_parts" -ne "$num_src" ]; then
  echo "$0: the split is not disjoint or loses utterances (on both sides: ${shared:-none}; $num_parts of $num_src utterances)" >&2
  exit 1
fi
cp "$tmp/dev.spk" "$tmp/dev/held_out.spk"
echo "$params" > "$tmp/dev/split_params"
for pair in "$tmp/train:$train" "$tmp/dev:$dev"; do
  from=${pair%%:*}; to=${pair#*:}
  rm -rf "$to"; mkdir -p "$(dirname "$to")"; mv "$from" "$to"
done
echo "$0: $dev: $(wc -l < "$dev/spk2utt") speakers, $(wc -l < "$dev/utt2spk") utterances, \
$(wc -l < "$dev/trials") trials ($(grep -c ' target$' "$dev/trials") target); \
$train: $(wc -l < "$train/spk2utt") speakers, $(wc -l < "$train/utt2spk") utterances"
