#!/usr/bin/env bash
# Log-mel filterbanks for a data directory (Kaldi's steps/make_fbank.sh interface): writes
# <fbank-dir>/raw_fbank_<name>.JOB.{ark,scp}, <data>/feats.scp and <data>/utt2num_frames.
# (A data dir holds one feats.scp: make fbank features in a copy, e.g. data/train_fbank.)
help_message="Usage: $0 [options] <data-dir> [<log-dir> [<fbank-dir>]]
 e.g.: $0 --nj 4 --cmd run.pl data/train_fbank exp/make_fbank/train_fbank fbank
 defaults: <log-dir> = exp/make_fbank/<data-name>, <fbank-dir> = fbank
Options:
  --nj N                         parallel jobs (default 4)
  --cmd CMD                      run.pl, slurm.pl ... (default run.pl)
  --fbank-config FILE            filterbank options (default conf/fbank.conf)
  --write-utt2num-frames BOOL    write <data-dir>/utt2num_frames (default true)
  --max-fail-fraction F          fail if more than this fraction of utterances fails (default 0.01)"
set -euo pipefail
nj=4
cmd=run.pl
fbank_config=conf/fbank.conf
write_utt2num_frames=true
max_fail_fraction=0.01
. utils/parse_options.sh
if [ $# -lt 1 ] || [ $# -gt 3 ]; then echo "$help_message" >&2; exit 1; fi
exec "$(dirname "$0")/make_features.sh" --feat-type fbank --nj "$nj" --cmd "$cmd" --feat-config "$fbank_config" \
  --write-utt2num-frames "$write_utt2num_frames" --max-fail-fraction "$max_fail_fraction" "$@"
