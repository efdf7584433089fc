#!/usr/bin/env bash
# MFCCs for a data directory (Kaldi's steps/make_mfcc.sh interface): writes
# <mfcc-dir>/raw_mfcc_<name>.JOB.{ark,scp}, <data>/feats.scp and <data>/utt2num_frames.
help_message="Usage: $0 [options] <data-dir> [<log-dir> [<mfcc-dir>]]
 e.g.: $0 --nj 4 --cmd run.pl data/train exp/make_mfcc/train mfcc
 defaults: <log-dir> = exp/make_mfcc/<data-name>, <mfcc-dir> = mfcc
Options:
  --nj N                         parallel jobs (default 4)
  --cmd CMD                      run.pl, slurm.pl ... (default run.pl)
  --mfcc-config FILE             MFCC options (default conf/mfcc.conf)
  --write-utt2num-frames BOOL    write <data-dir>/utt2num_frames (default true)
  --max-fail-fraction F          fail if more than this fraction of utterances fails (default 0.01)"
set -euo pipefail
nj=4
cmd=run.pl
mfcc_config=conf/mfcc.conf
write_utt2num_frames=true
max_fail_fraction=0.01
. utils/parse_options.sh
if [ $# -lt 1 ] || [ $# -gt 3 ]; then echo "$help_message" >&2; exit 1; fi
exec "$(dirname "$0")/make_features.sh" --feat-type mfcc --nj "$nj" --cmd "$cmd" --feat-config "$mfcc_config" \
  --write-utt2num-frames "$write_utt2num_frames" --max-fail-fraction "$max_fail_fraction" "$@"
