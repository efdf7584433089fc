#!/usr/bin/env bash
# Runs a study (studies/<name>.yaml) to its ledger studies/<name>/results.tsv: local/run_study.py
# says what it does; this wrapper gives it the recipe's environment and job runners.
#   local/run_study.sh [--max-minutes M] [--nj N] [--dry-run true] studies/kd_targets.yaml
. ./path.sh
. ./cmd.sh
exec python local/run_study.py --cmd "$train_cmd" --cuda-cmd "$cuda_cmd" "$@"
