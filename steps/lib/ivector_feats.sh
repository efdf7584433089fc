# shellcheck shell=bash
# Sourced by the i-vector steps: the feature pipeline of Kaldi's i-vector recipe as one
# rspecifier. MFCC (feats.scp) -> deltas + delta-deltas -> sliding CMN -> voiced frames only
# (vad.scp). The delta and CMN options come from conf files (defaults below; each step has
# --deltas-config / --cmvn-config to change them).
#
#   feats=$(ivector_feats_rspec <feats.scp> <vad.scp> <deltas.conf> <cmvn.conf>)
ivector_feats_rspec() {
  local scp=$1 vad=$2 deltas_conf=$3 cmvn_conf=$4
  echo "ark,s,cs:python -m sidkd.bin.add_deltas --config=$deltas_conf scp:$scp ark:- |\
 python -m sidkd.bin.apply_cmvn_sliding --config=$cmvn_conf ark:- ark:- |\
 python -m sidkd.bin.select_voiced_frames ark:- scp,s,cs:$vad ark:- |"
}

# ivector_check_files <step-name> <file>...: exit with a clear message when one is missing.
ivector_check_files() {
  local prog=$1 f
  shift
  for f in "$@"; do
    if [ ! -f "$f" ]; then
      echo "$prog: expected file $f to exist" >&2
      exit 1
    fi
  done
}
