#!/usr/bin/env bash
# The conditions of the distillation study's claim (issue 24, studies/kd_targets.yaml and
# studies/kd_final.yaml) beside the whole and cropped trials it already has, each made once:
#  - degraded: <set>_babble<S> for S in --snrs, the test side of <set> mixed with --num-talkers-talker
#    babble of speakers outside it (sidkd.bin.degrade_data_dir, the mixing of each utterance in its
#    "mixing" file): data/train_dev with talkers of data/train_dev_train (validation) and data/test
#    with talkers of data/train (the confirmation);
#  - cross-domain: data/sc_dev, --sc-dev-speakers speakers of data/sc_train with all-pairs trials
#    (validation; local/make_dev_split.sh; the rest of sc_train is data/sc_dev_rest, the transfer study's
#    training data, studies/transfer_recipe.yaml),
#    and data/sc_test's own trials for the confirmation. No student trains on speechcommands.
# Each is kept when its options and source are unchanged, else remade.
help_message="Usage: $0 [options]
Options:
  --snrs \"S ...\"           babble SNRs in dB (default \"5 10\")
  --num-talkers N          talkers in the babble (default 3)
  --seed S                 seed of the draws (default 1)
  --sets \"SRC:NOISE ...\"   sets to degrade, each with the data dir of its talkers
                           (default \"data/train_dev:data/train_dev_train data/test:data/train\")
  --sc-dev-speakers N      speakers of data/sc_dev (default 40; 0: no cross-domain set)"
set -euo pipefail
snrs="5 10"
num_talkers=3
seed=1
sets="data/train_dev:data/train_dev_train data/test:data/train"
sc_dev_speakers=40
. utils/parse_options.sh
[ $# -eq 0 ] || { echo "$help_message" >&2; exit 1; }

for pair in $sets; do
  src=${pair%%:*} noise=${pair#*:}
  for f in "$src/trials" "$noise/utt2spk"; do
    [ -f "$f" ] || { echo "$0: no such file: $f (run ./run.sh --stop-stage 0, and --dev-split true for data/train_dev)" >&2; exit 1; }
  done
  for snr in $snrs; do
    python -m sidkd.bin.degrade_data_dir --noise-data "$noise" --snr-db "$snr" --num-talkers "$num_talkers" \
      --seed "$seed" "$src" "${src%/}_babble$snr"
  done
done
if [ "$sc_dev_speakers" -gt 0 ]; then
  [ -f data/sc_train/utt2spk ] || { echo "$0: no such file: data/sc_train/utt2spk (run ./run.sh --stop-stage 0)" >&2; exit 1; }
  local/make_dev_split.sh --num-speakers "$sc_dev_speakers" --seed "$seed" --exclude-prefixes "" \
    data/sc_train data/sc_dev_rest data/sc_dev
fi
