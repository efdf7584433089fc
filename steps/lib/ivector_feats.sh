# shellcheck shell=bash
# Sourced by the i-vector steps: the feature pipeline of Kaldi's i-vector recipe as one
# rspecifier. MFCC (feats.scp) -> deltas + delta-deltas -> sliding CMN -> voiced frames only
# (vad.scp). The delta and CMN options come from conf files (defaults below; each step has
# --deltas-config / --cmvn-config to change them).
#
#   feats=$(ivector_feats_rspec <feats.scp> <vad.scp> <deltas.conf> <cmvn.conf>)
# ivector_cmn_rspec is the same without the voiced-frame selection (steps/make_ivector_feats.sh
# ends the pipeline in an archive). A step with --feats-dir reads those archives instead:
#   feats=$(ivector_step_feats <feats-dir> <split-data-dir> <vad> <deltas.conf> <cmvn.conf>)
ivector_cmn_rspec() {
  local scp=$1 deltas_conf=$2 cmvn_conf=$3
  echo "ark,s,cs:python -m sidkd.bin.add_deltas --config=$deltas_conf scp:$scp ark:- |\
 python -m sidkd.bin.apply_cmvn_sliding --config=$cmvn_conf ark:- ark:- |"
}
ivector_feats_rspec() {
  local scp=$1 vad=$2 deltas_conf=$3 cmvn_conf=$4
  echo "$(ivector_cmn_rspec "$scp" "$deltas_conf" "$cmvn_conf")\
 python -m sidkd.bin.select_voiced_frames ark:- scp,s,cs:$vad ark:- |"
}

# ivector_split_scp <scp> <nj> <out-prefix>: <out-prefix>.1.scp .. .N.scp, line i to part i mod N.
# Round robin, not speaker blocks: EM statistics need no speaker grouping, and in data/train the
# (long) librispeech utterances sort after all speechocean762 ones, so contiguous parts would
# give one job most of the frames. Each part stays sorted.
ivector_split_scp() {
  local scp=$1 nj=$2 out=$3 j
  for j in $(seq "$nj"); do
    awk -v n="$nj" -v j="$j" '(NR - 1) % n == j - 1' "$scp" > "$out.$j.scp.tmp"
    mv "$out.$j.scp.tmp" "$out.$j.scp"
  done
}

# ivector_job_feats <feats-dir or ""> <data-dir> <nj> <deltas.conf> <cmvn.conf>: the rspecifier of
# job JOB's features: the prepared archives of <feats-dir> (steps/make_ivector_feats.sh) split
# round robin when given, else the pipeline on <data-dir>/splitN. Splits what it reads.
ivector_job_feats() {
  local fdir=$1 data=$2 nj=$3 deltas_conf=$4 cmvn_conf=$5
  if [ -n "$fdir" ]; then
    mkdir -p "$fdir/split_rr$nj"
    ivector_split_scp "$fdir/feats.scp" "$nj" "$fdir/split_rr$nj/feats"
    echo "scp,s,cs:$fdir/split_rr$nj/feats.JOB.scp"
  else
    utils/split_data.sh "$data" "$nj" >&2
    ivector_feats_rspec "$data/split$nj/JOB/feats.scp" "$data/split$nj/JOB/vad.scp" "$deltas_conf" "$cmvn_conf"
  fi
}

# ivector_cores: the cores this process may use (nproc itself would answer path.sh's
# OMP_NUM_THREADS=1).
ivector_cores() {
  env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc
}

# ivector_threads <nj> <num-threads>: BLAS threads per job; 0 = the machine's cores / nj (>= 1).
ivector_threads() {
  local nj=$1 t=$2
  if [ "$t" -le 0 ]; then
    t=$(( $(ivector_cores) / nj ))
    [ "$t" -ge 1 ] || t=1
  fi
  echo "$t"
}

# env prefix that gives a job N BLAS/OpenMP threads (the job commands start with it)
ivector_thread_env() {
  echo "env OMP_NUM_THREADS=$1 OPENBLAS_NUM_THREADS=$1 MKL_NUM_THREADS=$1"
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
