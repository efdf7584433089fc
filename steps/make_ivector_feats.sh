#!/usr/bin/env bash
# Writes the i-vector features of a data dir once: MFCC -> deltas -> sliding CMN -> voiced frames
# (the pipeline of steps/lib/ivector_feats.sh), float32, as a data dir of its own (<out>/feats.scp
# with utt2spk and spk2utt). The UBM and extractor steps read it with --feats-dir instead of
# running that three-process pipeline again in every EM iteration: on the 2-core machine the
# pipeline delivers ~15-30k frames/s, a float32 archive reads at >2M frames/s
# (bench/bench_ivector.py). Utterances without voiced frames are skipped and counted.
set -euo pipefail

nj=4
cmd=run.pl
deltas_config=conf/ivector_deltas.conf
cmvn_config=conf/ivector_cmvn.conf
help_message="Usage: $0 [options] <data-dir> <feats-dir>
 e.g.: $0 --nj 4 data/train exp/ivector_feats_train
Needs <data-dir>/{feats.scp,vad.scp,utt2spk,spk2utt}. Writes <feats-dir>/{feats.scp,utt2spk,spk2utt}
and the archives <feats-dir>/data/feats.JOB.ark.
Options:
  --nj N --cmd CMD                                   parallel jobs and runner ($nj, $cmd)
  --deltas-config FILE --cmvn-config FILE            feature options ($deltas_config, $cmvn_config)"
. utils/parse_options.sh
. steps/lib/ivector_feats.sh

if [ $# -ne 2 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
dir=$2
ivector_check_files "$0" "$data/feats.scp" "$data/vad.scp" "$data/utt2spk" "$data/spk2utt" \
  "$deltas_config" "$cmvn_config"

# Done before, from these very inputs: keep it (a resumed run.sh --stage 2 does not redo it).
if [ -f "$dir/feats.scp" ] && [ -z "$(find "$data/feats.scp" "$data/vad.scp" "$data/utt2spk" "$deltas_config" \
     "$cmvn_config" -newer "$dir/feats.scp")" ]; then
  echo "$0: $dir/feats.scp is newer than its inputs; not recomputing ($(wc -l < "$dir/feats.scp") utterances)"
  exit 0
fi

mkdir -p "$dir/log" "$dir/data" "$dir/split_in"
rm -f "$dir"/data/*.tmp.* "$dir/feats.scp"  # what a killed run left; feats.scp is written last
# Round-robin parts (see ivector_split_scp): frames spread evenly over the jobs.
ivector_split_scp "$data/feats.scp" "$nj" "$dir/split_in/feats"
for j in $(seq "$nj"); do
  utils/filter_scp.pl "$dir/split_in/feats.$j.scp" "$data/vad.scp" > "$dir/split_in/vad.$j.scp"
done
# The pipeline of ivector_feats_rspec, its last program writing the archive (atomically; a
# failing program earlier in the pipe fails the job: sidkd.io.ark checks the pipe's status).
$cmd JOB=1:"$nj" "$dir/log/make_feats.JOB.log" \
  python -m sidkd.bin.select_voiced_frames \
    "$(ivector_cmn_rspec "$dir/split_in/feats.JOB.scp" "$deltas_config" "$cmvn_config")" \
    "scp,s,cs:$dir/split_in/vad.JOB.scp" \
    "ark,scp:$dir/data/feats.JOB.ark,$dir/data/feats.JOB.scp"

for j in $(seq "$nj"); do cat "$dir/data/feats.$j.scp"; done | LC_ALL=C sort > "$dir/feats.scp.tmp"
utils/filter_scp.pl "$dir/feats.scp.tmp" "$data/utt2spk" > "$dir/utt2spk"
utils/utt2spk_to_spk2utt.pl "$dir/utt2spk" > "$dir/spk2utt"
mv "$dir/feats.scp.tmp" "$dir/feats.scp"
rm -r "$dir/split_in"
num_in=$(wc -l < "$data/utt2spk")
num_out=$(wc -l < "$dir/feats.scp")
echo "$0: $num_in utterances in = $num_out written + $((num_in - num_out)) skipped (no voiced frame; see $dir/log/make_feats.*.log)"
