#!/usr/bin/env bash
# Builds the recipe's four data directories from corpus folders (<spk>/<utt>.<ext> + utt2spk):
#   DATA/train     long-corpus train speakers + every extra corpus whole (speaker ids prefixed)
#   DATA/test      long-corpus test speakers, with DATA/test/trials (all pairs)
#   DATA/sc_train  short-corpus train speakers
#   DATA/sc_test   short-corpus test speakers, with DATA/sc_test/trials
# Speaker lists come from SPLITS/<corpus>.{train,test}.spk; where a list is missing, a deterministic
# one is made (local/make_speaker_split.py) and kept in DATA/local/splits.
set -euo pipefail

corpus_root=../shared/corpora
splits_dir=                               # default: $corpus_root/splits
long_corpus=speechocean762
extra_train_corpora="librispeech_subset:ls"  # space-separated corpus:prefix pairs, added whole to train
short_corpus=speechcommands               # "" to skip the short-speech sets
test_fraction=0.2                         # only for corpora without split lists
min_test_utts=8
trials_all_pairs_max_utts=0               # a test set larger than this gets sampled trials (0: all pairs)
trials_per_utt="10 10"                    # the sample's target and nontarget partners per utterance
help_message="Usage: $0 [options] DATA
  --corpus-root DIR           folder holding the corpora ($corpus_root)
  --splits-dir DIR            speaker lists <corpus>.{train,test}.spk (default CORPUS_ROOT/splits)
  --long-corpus NAME          long-speech corpus split into train/test ($long_corpus)
  --extra-train-corpora LIST  'corpus:prefix ...' added whole to train ($extra_train_corpora)
  --short-corpus NAME         short-speech corpus for sc_train/sc_test ($short_corpus)
  --test-fraction F           test share for a corpus without split lists ($test_fraction)
  --min-test-utts N           test speakers need this many utterances ($min_test_utts)
  --trials-all-pairs-max-utts N  beyond N test utterances, sampled trials (local/make_trials.py; 0: all pairs)
  --trials-per-utt 'T M'      target and nontarget partners per utterance of the sample ($trials_per_utt)"
. utils/parse_options.sh

if [ $# -ne 1 ]; then echo "$help_message" >&2; exit 1; fi
data=$1
[ -n "$splits_dir" ] || splits_dir=$corpus_root/splits
if [ ! -d "$corpus_root" ]; then echo "$0: corpus root $corpus_root does not exist" >&2; exit 1; fi
# A rebuilt data dir starts empty: features, VAD, utt2num_frames and split/ dirs of an earlier (maybe
# failed) run describe other utterances, and nothing later would notice. Stage 1 makes them again.
for x in train test sc_train sc_test; do
  if [ -d "$data/$x" ]; then
    echo "$0: removing the earlier $data/$x (features and all; stage 1 makes them again)" >&2
    rm -rf "$data/$x"
  fi
done
mkdir -p "$data/local/splits"

# Prints the directory holding <corpus>.{train,test}.spk, making the lists if none exist.
split_lists() {
  local corpus=$1
  if [ -f "$splits_dir/$corpus.train.spk" ] && [ -f "$splits_dir/$corpus.test.spk" ]; then
    echo "$splits_dir"
  else
    echo "$0: no speaker lists for $corpus in $splits_dir; making a deterministic split" >&2
    python local/make_speaker_split.py --test-fraction "$test_fraction" --min-test-utts "$min_test_utts" \
      "$corpus_root/$corpus" "$corpus" "$data/local/splits" >&2
    echo "$data/local/splits"
  fi
}

# Splits one corpus by its speaker lists into TRAIN_DIR and TEST_DIR (+ trials).
prepare_split() {
  local corpus=$1 train_dir=$2 test_dir=$3 lists
  [ -f "$corpus_root/$corpus/utt2spk" ] || { echo "$0: $corpus_root/$corpus/utt2spk not found" >&2; exit 1; }
  lists=$(split_lists "$corpus")
  local both
  both=$(cat "$lists/$corpus.train.spk" "$lists/$corpus.test.spk" | awk '{ print $1 }' | LC_ALL=C sort | uniq -d)
  if [ -n "$both" ]; then
    echo "$0: $(echo "$both" | wc -l) speaker(s) in both $lists/$corpus.train.spk and $lists/$corpus.test.spk:" \
      "$(echo "$both" | head -10 | xargs)$([ "$(echo "$both" | wc -l)" -le 10 ] || echo " ...");" \
      "a speaker belongs to one side: delete it from one of the two lists" >&2
    exit 1
  fi
  python local/prepare_corpus.py --spk-list "$lists/$corpus.train.spk" "$corpus_root/$corpus" "$train_dir"
  python local/prepare_corpus.py --spk-list "$lists/$corpus.test.spk" "$corpus_root/$corpus" "$test_dir"
  python local/make_trials.py --all-pairs-max-utts "$trials_all_pairs_max_utts" \
    --targets-per-utt "${trials_per_utt% *}" --nontargets-per-utt "${trials_per_utt#* }" "$test_dir" "$test_dir/trials"
}

prepare_split "$long_corpus" "$data/local/${long_corpus}_train" "$data/test"
train_parts=("$data/local/${long_corpus}_train")
for pair in $extra_train_corpora; do
  corpus=${pair%%:*}; prefix=${pair#*:}
  [ "$prefix" != "$pair" ] || prefix=""
  python local/prepare_corpus.py --spk-prefix "$prefix" "$corpus_root/$corpus" "$data/local/$corpus"
  train_parts+=("$data/local/$corpus")
done
utils/combine_data.sh "$data/train" "${train_parts[@]}"

if [ -n "$short_corpus" ]; then
  prepare_split "$short_corpus" "$data/sc_train" "$data/sc_test"
fi

sets="train test"
[ -z "$short_corpus" ] || sets="$sets sc_train sc_test"
for x in $sets; do
  utils/validate_data_dir.sh --no-feats --no-text "$data/$x"
done

# Trials must not share speakers with any training set.
for pair in "train test" "sc_train sc_test"; do
  set -- $pair
  [ -d "$data/$2" ] || continue
  shared=$(cut -d' ' -f1 "$data/$1/spk2utt" | sort | comm -12 - <(cut -d' ' -f1 "$data/$2/spk2utt" | sort) | head -3)
  if [ -n "$shared" ]; then echo "$0: $data/$1 and $data/$2 share speakers: $shared" >&2; exit 1; fi
done
for x in $sets; do
  echo "$0: $data/$x: $(wc -l < "$data/$x/utt2spk") utterances, $(wc -l < "$data/$x/spk2utt") speakers" \
       "$([ -f "$data/$x/trials" ] && echo ", $(wc -l < "$data/$x/trials") trials ($(grep -c ' target$' "$data/$x/trials") target)")"
done
