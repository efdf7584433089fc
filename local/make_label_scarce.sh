#!/usr/bin/env bash
# The label-scarce regime of the distillation study (studies/kd_scarce*.yaml): the student and its
# back-end see the speaker labels of only a fraction of the training speakers, while the i-vector
# teacher, which needs no labels, learns from all the speech there is.
#  - <train-dir>_lab<F> for F in --fractions (percent): F % of the speakers of each corpus of
#    <train-dir> (corpora told apart by the speaker-id prefixes of --corpus-prefixes; the rest is
#    the long corpus), a seeded choice, nested (the 25 % are inside the 50 %), with all their
#    utterances and every file of <train-dir> (features, VAD);
#  - <out-dir>/pool: <train-dir> and the <unlabelled-dir>s combined (labels unused), the teacher's
#    data: its diagonal and full UBMs and extractor in <out-dir>/{diag_ubm,full_ubm,extractor} with
#    the sizes of conf/ivector.conf, as run.sh stages 2-3 train them on data/train;
#  - <out-dir>/ivectors_<name>: that teacher's i-vectors of every utterance of <train-dir> (a
#    labelled fraction reads its own), and <out-dir>/ivectors_<name>_crops: its crop i-vectors.
# Each part is kept when it exists (remove it to remake it).
help_message="Usage: $0 [options] <train-dir> <out-dir> <unlabelled-dir> ...
 e.g.: $0 --fractions \"25 50\" data/train_dev_train exp/scarce data/sc_dev_rest
Options:
  --fractions \"F ...\"       labelled shares in percent (default \"25 50\")
  --seed S                  seed of the speakers' order (default 39)
  --corpus-prefixes \"P ...\" speaker-id prefixes of the extra corpora (default \"ls\")
  --crop-seconds C          crops of the crop targets (default 2: the student's crop)
  --nj N, --cmd CMD         parallel jobs and their runner (default 2, run.pl)
  (and every variable of conf/ivector.conf, conf/recipe.conf: --ivector-num-gauss 128 ...)"
set -euo pipefail
fractions="25 50"
seed=39
corpus_prefixes="ls"
crop_seconds=2
nj=2
cmd=run.pl
. conf/ivector.conf
. conf/recipe.conf
. utils/parse_options.sh

if [ $# -lt 3 ]; then echo "$help_message" >&2; exit 1; fi
src=${1%/} out=${2%/}
shift 2
unlabelled=("$@")
name=$(basename "$src")
for d in "$src" "${unlabelled[@]}"; do
  for f in utt2spk feats.scp vad.scp; do
    [ -f "$d/$f" ] || { echo "$0: no $d/$f (run.sh stage 1 makes the features of the recipe's data dirs)" >&2; exit 1; }
  done
done
export LC_ALL=C

# the labelled fractions: per corpus, the first F % (rounded up) of a seeded order of its speakers
for f in $fractions; do
  lab=${src}_lab$f
  if [ -f "$lab/utt2spk" ]; then echo "$0: $lab exists; kept"; continue; fi
  tmp=$(mktemp -d "$lab.tmp.XXXXXX")
  python - "$src/utt2spk" "$f" "$seed" "$corpus_prefixes" > "$tmp/speakers" <<'EOF'
import random
import sys

utt2spk, percent, seed, prefixes = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split()
speakers = sorted({line.split()[1] for line in open(utt2spk) if line.strip()})
corpus = {s: next((p for p in prefixes if s.startswith(p)), "") for s in speakers}
for c in sorted(set(corpus.values())):
    mine = [s for s in speakers if corpus[s] == c]
    random.Random(f"{seed}:{c}").shuffle(mine)  # the same order for every fraction: nested subsets
    print("\n".join(sorted(mine[: -(-len(mine) * int(percent * 100) // 10000)])))
EOF
  sort -o "$tmp/speakers" "$tmp/speakers"
  utils/subset_data_dir.sh --spk-list "$tmp/speakers" "$src" "$tmp/data"
  rm -rf "$lab"; mv "$tmp/data" "$lab"; rm -rf "$tmp"
  echo "$0: $lab: $(wc -l < "$lab/spk2utt") of $(cut -d' ' -f2 "$src/utt2spk" | sort -u | wc -l) speakers" \
    "($f % of each corpus), $(wc -l < "$lab/utt2spk") utterances"
done

# the teacher on the whole pool, labels unused
pool=$out/pool
if [ ! -f "$pool/utt2spk" ]; then
  mkdir -p "$out"
  utils/combine_data.sh "$pool.tmp" "$src" "${unlabelled[@]}"
  rm -rf "$pool"; mv "$pool.tmp" "$pool"
fi
if [ ! -f "$out/extractor/final.ie" ]; then
  python -m sidkd.bin.fit_sizes teacher --num-gauss $ivector_num_gauss --ivector-dim $ivector_dim $pool
  steps/make_ivector_feats.sh --nj $nj --cmd "$cmd" $pool $out/ivector_feats_pool
  steps/train_diag_ubm.sh --nj $nj --cmd "$cmd" --num-gaussians $ivector_num_gauss --num-iters $ubm_num_iters \
    --subsample $diag_ubm_subsample --feats-dir $out/ivector_feats_pool $pool $out/diag_ubm
  steps/train_full_ubm.sh --nj $nj --cmd "$cmd" --num-iters $ubm_num_iters --num-gselect $ivector_num_gselect \
    --subsample $full_ubm_subsample --feats-dir $out/ivector_feats_pool $pool $out/diag_ubm $out/full_ubm
  steps/train_ivector_extractor.sh --nj $nj --cmd "$cmd" --ivector-dim $ivector_dim \
    --num-iters $ivector_num_iters --num-gselect $ivector_num_gselect --min-post $ivector_min_post \
    --feats-dir $out/ivector_feats_pool $out/full_ubm $pool $out/extractor
fi
[ -f "$out/ivectors_$name/ivector.scp" ] || steps/extract_ivectors.sh --nj $nj --cmd "$cmd" \
  --num-gselect $ivector_num_gselect --min-post $ivector_min_post $out/extractor "$src" "$out/ivectors_$name"
[ -f "$out/ivectors_${name}_crops/ivector.scp" ] || steps/extract_crop_ivectors.sh --nj $nj --cmd "$cmd" \
  --num-crops $kd_num_crops --crop-seconds $crop_seconds --num-gselect $ivector_num_gselect \
  --min-post $ivector_min_post $out/extractor "$src" "$out/ivectors_${name}_crops"
echo "$0: teacher of $(wc -l < "$pool/utt2spk") utterances (labels unused) in $out/extractor;" \
  "its i-vectors of $src in $out/ivectors_$name, crops in $out/ivectors_${name}_crops"
