#!/usr/bin/env bash
# Runs steps/make_mfcc.sh through a real Slurm (slurm.pl) and through run.pl, and checks that the
# features are identical; then i-vector extraction likewise, and the scale bench through slurm.pl. Needs root and Debian's packages: installs slurm-wlm and munge with
# apt-get unless they are there, runs a private one-node cluster on this machine (its own munged,
# slurmctld and slurmd, config, ports, state and logs in a temporary folder), and stops it again.
#
# Usage: local/test_slurm.sh [--keep true] [--corpus DIR] [--install true|false]
#   --keep true        leave the temporary folder (logs, config, features) for inspection
#   --corpus DIR       a corpus folder (<spk>/<utt>.<ext> + utt2spk; default ../shared/corpora/speechcommands)
#   --install false    do not apt-get install; fail (status 2) if the programs are missing
# Exit status: 0 the outputs agree, 1 they differ or a step failed, 2 Slurm could not be set up
# (not root, no packages, daemons did not come up). Never runs longer than $SIDKD_SLURM_TIMEOUT
# seconds (default 600); every wait inside has its own, shorter limit.
set -euo pipefail

total_timeout=${SIDKD_SLURM_TIMEOUT:-600}
if [ -z "${SIDKD_SLURM_TEST_INNER:-}" ]; then
  # The whole test under a hard limit; TERM first (the cleanup trap runs), KILL 30 s later.
  SIDKD_SLURM_TEST_INNER=1 exec timeout -k 30 "$total_timeout" "$0" "$@"
fi

keep=false
corpus=
install=true
. utils/parse_options.sh
if [ $# -ne 0 ]; then sed -n '2,15p' "$0" >&2; exit 1; fi
root=$(pwd)
corpus=${corpus:-$root/../shared/corpora/speechcommands}
prog=test_slurm.sh
say() { echo "$prog: $*"; }
setup_fail() { echo "$prog: SETUP FAILED: $*" >&2; exit 2; }

[ -x steps/make_mfcc.sh ] && [ -x utils/slurm.pl ] || { echo "$prog: run from the recipe root" >&2; exit 1; }
[ "$(id -u)" = 0 ] || setup_fail "must run as root (installs packages, runs slurmd)"
python=$(command -v python3 || command -v python) || setup_fail "no python"
# Jobs get only PATH from the submitter (conf/slurm.conf: --export=PATH): keep our python first.
export PATH="$(dirname "$python"):$PATH"
"$python" -c 'import sidkd, kaldiio' 2>/dev/null || setup_fail "python $python cannot import sidkd and kaldiio"

need=(munged mungekey slurmctld slurmd sbatch squeue sinfo scancel)
missing() { for p in "${need[@]}"; do command -v "$p" > /dev/null || { echo "$p"; return 0; }; done; return 1; }
if missing > /dev/null; then
  $install || setup_fail "missing $(missing) and --install false"
  command -v apt-get > /dev/null || setup_fail "no apt-get to install slurm-wlm and munge"
  say "installing slurm-wlm and munge (apt-get)"
  start=$(date +%s)
  timeout 300 apt-get update -qq > /dev/null 2>&1 || setup_fail "apt-get update failed or took > 300 s"
  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends slurm-wlm munge \
    > /dev/null 2>&1 || setup_fail "apt-get install slurm-wlm munge failed or took > 300 s"
  say "installed in $(( $(date +%s) - start )) s"
  ! missing > /dev/null || setup_fail "still missing $(missing) after installing"
fi

tmp=$(mktemp -d /tmp/sidkd_slurm.XXXXXX)
chmod 0700 "$tmp"
pids=()
cleanup() {
  local status=$?
  set +e
  if [ -n "${SLURM_CONF:-}" ] && [ -f "$SLURM_CONF" ]; then
    timeout 10 scancel --user=root --quiet > /dev/null 2>&1
  fi
  # Stop only the daemons this script started, newest first; KILL what ignores TERM.
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2> /dev/null; done
  for _ in $(seq 20); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2> /dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.5
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2> /dev/null; done
  if [ "$status" != 0 ]; then
    for log in "$tmp"/log/*.log; do
      [ -f "$log" ] && { echo "---- last lines of $log"; tail -n 15 "$log"; }
    done >&2
  fi
  if $keep; then say "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'echo "$prog: interrupted (time limit?)" >&2; exit 1' TERM INT

# Two free TCP ports for slurmctld and slurmd, so a cluster already on this machine is left alone.
read -r ctld_port slurmd_port < <("$python" -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')

mkdir -p "$tmp/log" "$tmp/state" "$tmp/spool/slurmd" "$tmp/munge"
chmod 0700 "$tmp/munge"
mungekey --create --keyfile="$tmp/munge/munge.key" > /dev/null 2>&1 \
  || dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 0400 "$tmp/munge/munge.key"
socket=$tmp/munge/munge.socket
munged --foreground --force --socket="$socket" --key-file="$tmp/munge/munge.key" \
  --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/log/munged.log" --seed-file="$tmp/munge/munged.seed" \
  > /dev/null 2>&1 &
pids+=($!)
timeout 20 bash -c "until [ -S '$socket' ]; do sleep 0.2; done" || setup_fail "munged did not start"

# The node as slurmd sees this machine (CPUs, sockets, memory): a node whose configuration
# promises more than the hardware has is drained.
hardware=$(timeout 30 slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* //' -e 's/ *UpTime=.*//') \
  || setup_fail "slurmd -C failed"
cat > "$tmp/slurm.conf" <<EOF
# Written by local/test_slurm.sh: a private one-node cluster for the test.
ClusterName=sidkdtest
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool/slurmd
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=30
KillWait=5
NodeName=localhost NodeAddr=127.0.0.1 $hardware State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$tmp/slurm.conf

slurmctld -D -i -f "$SLURM_CONF" > "$tmp/log/slurmctld.stdout.log" 2>&1 &
pids+=($!)
slurmd -D -N localhost -f "$SLURM_CONF" > "$tmp/log/slurmd.stdout.log" 2>&1 &
pids+=($!)
say "waiting for the node (slurmctld port $ctld_port, slurmd port $slurmd_port)"
timeout 90 bash -c 'until sinfo -h -n localhost -o %t 2> /dev/null | grep -qx idle; do sleep 1; done' \
  || setup_fail "the node did not become idle within 90 s: $(sinfo -h -N -o '%N %t %E' 2>&1 | head -n 3)"
say "cluster up: $(sinfo -h -o '%P %D %c %t')"

# A small recipe folder: the toolkit linked in, one data dir of a few speakers.
recipe=$tmp/recipe
mkdir -p "$recipe"
for item in steps utils conf sidkd local path.sh; do ln -s "$root/$item" "$recipe/$item"; done
cd "$recipe"
. ./path.sh  # utils/ and steps/ on PATH, as run.sh has them
find "$corpus/" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | LC_ALL=C sort | head -n 2 > spk.list
[ -s spk.list ] || { echo "$prog: no speakers in $corpus" >&2; exit 1; }
timeout 60 "$python" local/prepare_corpus.py --spk-list spk.list "$corpus" data/slurm
cp -r data/slurm data/runpl
num_utts=$(wc -l < data/slurm/utt2spk)
say "data dir of $num_utts utterances"

# dither is seeded per utterance, so the features do not depend on which job computed them.
start=$(date +%s)
timeout 300 steps/make_mfcc.sh --cmd "slurm.pl --poll-interval 1 --gone-grace 20" --nj 2 \
  data/slurm exp/make_mfcc/slurm mfcc_slurm
say "slurm.pl: make_mfcc.sh took $(( $(date +%s) - start )) s"
ls exp/make_mfcc/slurm/q/done.make_mfcc_slurm.1 exp/make_mfcc/slurm/q/done.make_mfcc_slurm.2 > /dev/null \
  || { echo "$prog: slurm.pl left no task markers: the jobs did not go through Slurm" >&2; exit 1; }
timeout 300 steps/make_mfcc.sh --cmd run.pl --nj 2 data/runpl exp/make_mfcc/runpl mfcc_runpl

timeout 60 "$python" - data/slurm data/runpl "$num_utts" <<'EOF'
import sys

import kaldiio
import numpy as np

slurm, runpl, num_utts = sys.argv[1], sys.argv[2], int(sys.argv[3])
a, b = kaldiio.load_scp(f"{slurm}/feats.scp"), kaldiio.load_scp(f"{runpl}/feats.scp")
assert len(a) == num_utts, f"slurm.pl run: {len(a)} of {num_utts} utterances have features"
assert sorted(a) == sorted(b), "the two runs have features for different utterances"
differ = [k for k in a if not np.array_equal(a[k], b[k])]
assert not differ, f"{len(differ)} utterances differ, e.g. {differ[:3]}"
assert open(f"{slurm}/utt2num_frames").read() == open(f"{runpl}/utt2num_frames").read()
print(f"test_slurm.sh: {num_utts} utterances: features through slurm.pl equal those through run.pl")
EOF
# i-vectors through slurm.pl and run.pl: a tiny extractor trained with run.pl on the run.pl data
# dir, then the same extraction with both runners.
if [ -x steps/extract_ivectors.sh ]; then
  timeout 120 steps/compute_vad_decision.sh --nj 2 data/runpl exp/make_vad/runpl vad_runpl
  timeout 300 steps/train_diag_ubm.sh --nj 2 --num-gaussians 4 --num-iters 1 --num-iters-init 4 --subsample 1 \
    data/runpl exp/diag_ubm
  timeout 300 steps/train_full_ubm.sh --nj 2 --num-iters 1 --num-gselect 3 data/runpl exp/diag_ubm exp/full_ubm
  timeout 300 steps/train_ivector_extractor.sh --nj 2 --num-iters 1 --ivector-dim 4 --num-gselect 3 \
    --gaussian-min-count 10 exp/full_ubm data/runpl exp/extractor
  start=$(date +%s)
  timeout 300 steps/extract_ivectors.sh --cmd "utils/slurm.pl --poll-interval 1 --gone-grace 20" --nj 2 \
    --num-gselect 3 exp/extractor data/runpl exp/ivectors_slurm
  say "slurm.pl: extract_ivectors.sh took $(( $(date +%s) - start )) s"
  ls exp/ivectors_slurm/log/q/done.* > /dev/null \
    || { echo "$prog: no slurm.pl task markers under exp/ivectors_slurm/log/q: not run through Slurm" >&2; exit 1; }
  timeout 300 steps/extract_ivectors.sh --cmd run.pl --nj 2 --num-gselect 3 exp/extractor data/runpl exp/ivectors_runpl
  timeout 60 "$python" - exp/ivectors_slurm exp/ivectors_runpl "$num_utts" <<'EOF'
import sys

import kaldiio
import numpy as np

slurm, runpl, num_utts = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name in ("ivector.scp", "spk_ivector.scp"):
    a, b = kaldiio.load_scp(f"{slurm}/{name}"), kaldiio.load_scp(f"{runpl}/{name}")
    assert sorted(a) == sorted(b) and len(a) > 0, f"{name}: the two runs have different keys"
    differ = [k for k in a if not np.array_equal(a[k], b[k])]
    assert not differ, f"{name}: {len(differ)} vectors differ, e.g. {differ[:3]}"
print(f"test_slurm.sh: {len(kaldiio.load_scp(slurm + '/ivector.scp'))} of {num_utts} utterances: "
      "i-vectors through slurm.pl equal those through run.pl")
EOF
else
  say "no steps/extract_ivectors.sh here: i-vector extraction through Slurm not tested"
fi

# The scale bench (bench/scale.py) through cmd.sh with slurm.pl: every stage of run.sh at one small
# size (a few speakers, tiny teacher), its jobs and trainings submitted to the cluster.
if [ -f "$root/bench/scale.py" ]; then
  printf 'export train_cmd="slurm.pl --poll-interval 1 --gone-grace 20"\nexport cuda_cmd="$train_cmd"\n' \
    > "$tmp/cmd_slurm.sh"
  start=$(date +%s)
  timeout 400 "$python" "$root/bench/scale.py" --work "$tmp/scale" --sizes 1 --max-speakers 3 --student-steps 1 \
    --cmd-sh "$tmp/cmd_slurm.sh" --ledger "$tmp/scale/results.tsv" --recipe-options "--ivector-num-gauss 8 \
    --ivector-dim 10 --ubm-num-iters 1 --ivector-num-iters 1" | sed 's/^/  /'
  rows=$(tail -n +2 "$tmp/scale/results.tsv" | wc -l)
  markers=$(ls "$tmp"/scale/x1/exp/make_mfcc/train/q/done.* "$tmp"/scale/x1/exp/ivectors_test/log/q/done.* \
    2> /dev/null | wc -l)
  [ "$rows" = 9 ] && [ "$markers" -gt 0 ] \
    || { echo "$prog: the scale bench through slurm.pl measured $rows of 9 stages, $markers task markers" >&2; exit 1; }
  say "scale bench through slurm.pl: $rows stages measured in $(( $(date +%s) - start )) s"
fi

# A failing task: slurm.pl exits non-zero and names its log, as run.pl does.
set +e
out=$(timeout 120 utils/slurm.pl --poll-interval 1 JOB=1:2 exp/fail/t.JOB.log 'echo task JOB; [ JOB -ne 2 ]' 2>&1)
status=$?
set -e
echo "$out" | sed 's/^/  /'
[ $status != 0 ] && [ $status != 124 ] && echo "$out" | grep -q "exp/fail/t.2.log" \
  || { echo "$prog: slurm.pl did not report the failed task 2 (status $status)" >&2; exit 1; }
grep -q "^task 1$" exp/fail/t.1.log || { echo "$prog: exp/fail/t.1.log lacks the task's output" >&2; exit 1; }

# A task that Slurm kills (scancel stands for a time or memory limit) writes no status marker:
# slurm.pl must notice that it left the queue and fail, not wait forever.
set +e
timeout 120 utils/slurm.pl --poll-interval 1 --gone-grace 3 JOB=1:1 exp/cancel/t.JOB.log 'sleep 100' > exp/cancel.out 2>&1 &
waiter=$!
timeout 60 bash -c 'until squeue -h -n t -t RUNNING -o %i 2> /dev/null | grep -q .; do sleep 0.5; done'
timeout 10 scancel --name=t
wait $waiter
status=$?
set -e
sed 's/^/  /' exp/cancel.out
[ $status != 0 ] && [ $status != 124 ] && grep -q "ended without reporting a status" exp/cancel.out \
  || { echo "$prog: slurm.pl did not report the cancelled task (status $status)" >&2; exit 1; }
say "PASS"
