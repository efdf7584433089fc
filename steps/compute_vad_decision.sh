#!/usr/bin/env bash
# Energy VAD for a data directory with MFCCs (Kaldi's sid/compute_vad_decision.sh interface):
# writes <vad-dir>/vad_<name>.JOB.{ark,scp} and <data>/vad.scp, and reports the share of voiced
# frames (for real speech expect roughly 60-80% with conf/vad.conf).
help_message="Usage: $0 [options] <data-dir> [<log-dir> [<vad-dir>]]
 e.g.: $0 --nj 4 --cmd run.pl data/train exp/make_vad/train mfcc
 defaults: <log-dir> = exp/make_vad/<data-name>, <vad-dir> = mfcc
Options:
  --nj N              parallel jobs (default 4)
  --cmd CMD           run.pl, slurm.pl ... (default run.pl)
  --vad-config FILE   VAD options (default conf/vad.conf)"
set -euo pipefail
[ -f ./path.sh ] && . ./path.sh
nj=4
cmd=run.pl
vad_config=conf/vad.conf
. utils/parse_options.sh
if [ $# -lt 1 ] || [ $# -gt 3 ]; then echo "$help_message" >&2; exit 1; fi
data=$1
prog=compute_vad_decision.sh
name=$(basename "$data")
logdir=${2:-exp/make_vad/$name}
vaddir=${3:-mfcc}

for f in "$data/feats.scp" "$data/utt2spk" "$vad_config"; do
  [ -f "$f" ] || { echo "$prog: no such file $f" >&2; exit 1; }
done
mkdir -p "$vaddir" "$logdir"
vaddir=$(cd "$vaddir" && pwd)

# An old vad.scp would point into the archives the jobs now replace: drop it first. Leftovers of a
# killed run go too (never read: archives are renamed into place only when complete).
rm -f "$data/vad.scp" "$data/vad.scp.tmp" "$vaddir/vad_${name}".*.tmp.*

utils/split_data.sh "$data" "$nj"
sdata=$data/split$nj
$cmd JOB=1:"$nj" "$logdir/vad_${name}.JOB.log" \
  python -m sidkd.bin.compute_vad --config="$vad_config" "scp:$sdata/JOB/feats.scp" \
    "ark,scp:$vaddir/vad_${name}.JOB.ark,$vaddir/vad_${name}.JOB.scp"

for n in $(seq "$nj"); do cat "$vaddir/vad_${name}.$n.scp"; done | sort > "$data/vad.scp.tmp"
mv "$data/vad.scp.tmp" "$data/vad.scp"  # complete or absent, never partial

num_feats=$(wc -l < "$data/feats.scp")
num_vad=$(wc -l < "$data/vad.scp")
# Each job logs "voiced frames: V of T (P%)"; add them up.
sed -n 's/.*voiced frames: \([0-9]*\) of \([0-9]*\).*/\1 \2/p' "$logdir"/vad_${name}.*.log |
  awk -v p="$prog" -v d="$data" -v nf="$num_feats" -v nv="$num_vad" '
    { v += $1; t += $2 }
    END { printf "%s: %s: %d of %d utterances have VAD; voiced frames: %d of %d (%.1f%%)\n",
                 p, d, nv, nf, v, t, (t > 0 ? 100 * v / t : 0) }'
if [ "$num_vad" -ne "$num_feats" ]; then
  echo "$prog: WARNING: $((num_feats - num_vad)) utterances got no VAD (see $logdir/vad_${name}.*.log)"
  grep -h "skipping utterance" "$logdir"/vad_${name}.*.log | awk 'NR <= 50 { print "  " $0 }' || true
fi
echo "$prog: succeeded computing VAD for $name"
