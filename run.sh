#!/usr/bin/env bash
# sidkd recipe: speaker verification with an i-vector teacher and a ResNet student distilled from it.
# Run from this directory. Every stage is one block; rerun any slice with
#   ./run.sh --stage N --stop-stage M
# Stages:
#   0  data directories (train, test, sc_train, sc_test) + trials, validated
#   1  MFCC + energy VAD for every data dir
#   2  i-vector teacher: diagonal UBM then full-covariance UBM on data/train
#   3  i-vector teacher: total-variability extractor on data/train
#   4  i-vectors for train, test, sc_train, sc_test (exp/ivectors_<name>)
#   5  i-vector baseline: cosine and LDA+PLDA, each with and without AS-norm, on test and sc_test
#   6  student ResNets: distilled from the teacher (exp/student_kd*) and without it (exp/student_nokd)
#   7  student embeddings of train and test
#   8  student scoring on test: cosine and LDA+PLDA, each with and without AS-norm
#   9  short-utterance transfer of the source student to data/sc_train: plain CE, + multi-subspace,
#      + long/short KL, + both (exp/transfer_*)
#  10  embeddings of the source and the transferred models: sc_train, sc_test, train, test, and
#      data/test cropped to 1 s and 2 s
#  11  short-speech table: sc_test, test with the test side cropped (enrolment full length), test
#      with both sides cropped, and test whole
. ./path.sh
. ./cmd.sh
set -euo pipefail

stage=0
stop_stage=11                # the last stage: a bare ./run.sh runs everything
nj=4                         # parallel jobs per step
corpus_root=../shared/corpora
splits_dir=                  # default: $corpus_root/splits (speaker lists <corpus>.{train,test}.spk)
long_corpus=speechocean762
extra_train_corpora="librispeech_subset:ls"
short_corpus=speechcommands
# i-vector teacher sizes (ivector_num_gauss, ivector_dim, ubm_num_iters, ivector_num_iters,
# {diag,full}_ubm_subsample, ivector_num_gselect, ivector_min_post): conf/ivector.conf says why; each is also
# an option here.
. conf/ivector.conf
baseline_sets="test sc_test"     # trial sets scored in stage 5
lda_dim=150                      # LDA before PLDA (reference: 150; < number of PLDA training speakers)
asnorm_top_n=300                 # AS-norm cohort size per side (cohort: the train vectors)
student_conf=conf/student.yaml   # conf/student_gpu.yaml on a GPU (with --student-procs N for N GPUs)
student_procs=1                  # >1: torchrun DistributedDataParallel processes
kd_weight=1.0                    # λ of L = L_AAM + λ·L_kd
kd_norm=length                   # teacher-side normalisation of exp/student_kd
kd_norm_alt=whiten               # a second normalisation, trained as exp/student_kd_$kd_norm_alt ("" = skip)
kd_target=ivector                # teacher target of the KD students: ivector | lda | speaker_mean |
                                 # speaker_mean_lda | crop | crop_lda | relation (docs/student.md)
kd_variants=                     # more students, each name:target:λ[:normalisation[:yaml]] (e.g. "student_kd_lda:lda:1")
kd_num_crops=4                   # crop targets: fixed crops per train utterance (exp/ivectors_train_crops)
student_seeds=                   # "" = the yaml's seed; "1 2 3": each student once per seed, as <name>_seed<k>
dev_split=false                  # true: stages 6-8 train on data/train_dev_train, score data/train_dev (names <name>_dev)
dev_num_speakers=30              # speechocean762 train speakers held out as data/train_dev
dev_seed=777                     # seed of that choice
transfer_conf=conf/transfer.yaml  # the transfer stage's yaml (losses, freezing, optimiser)
transfer_source=student_kd       # the source model: exp/$transfer_source, "source" in the table
transfer_sub_centers=3           # K of the multi-subspace variants (the others have K = 1)
transfer_kl_weight=1.0           # α of the KL variants (the others have α = 0)
transfer_long_view=concat        # long views of the KL: concat (same-speaker clips) | source (data/train)
                                 # | utterance (the replayed crop's own utterance) | concat+utterance
transfer_long_data=train         # data/<name>: long speech to replay and for the source/utterance views
transfer_replay_ratio=           # share of each batch replayed from it ("" = the yaml's replay.ratio)
transfer_short_seconds=          # training crop S or LO,HI seconds ("" = the yaml's short_seconds)
transfer_tag=                    # suffix of the variants' names: exp/transfer_ce$transfer_tag, ...
transfer_variant_names="ce msce kl msce_kl"  # which of the four variants stages 9-11 train and score
transfer_kd_weight=0             # β of an MSE to the sc_train i-vectors (exp/ivectors_sc_train), all variants
transfer_procs=1                 # >1: torchrun DistributedDataParallel processes
transfer_lda_dim=100             # LDA before the PLDA trained on sc_train (150 speakers with >= 2 clips)
test_crops="1 2"                 # crops of data/test (seconds) in stage 11: test side (test_Ss), both (test_SsSs)
overwrite=false                  # true: retrain a system whose exp/<system>/config.yaml records another configuration
ablations=true                   # false: a quick run without the ablations: of the students only
                                 # exp/student_kd, of the transfers only the full one (exp/transfer_msce_kl)
help_message="Usage: $0 [--stage N] [--stop-stage M] [--corpus-root DIR] [--nj N] [options]
Options (defaults in this script): --splits-dir --long-corpus --extra-train-corpora --short-corpus
  --ivector-num-gauss --ivector-dim --ubm-num-iters --ivector-num-iters --ivector-num-gselect
  --ivector-min-post --diag-ubm-subsample --full-ubm-subsample (defaults in conf/ivector.conf)
  --baseline-sets --lda-dim --asnorm-top-n --student-conf --student-procs --kd-weight --kd-norm
  --kd-norm-alt --kd-target --kd-variants --kd-num-crops --student-seeds --dev-split --dev-num-speakers
  --dev-seed --transfer-conf --transfer-source --transfer-sub-centers --transfer-kl-weight
  --transfer-long-view --transfer-long-data --transfer-replay-ratio --transfer-short-seconds
  --transfer-tag --transfer-variant-names --transfer-kd-weight --transfer-procs --transfer-lda-dim --test-crops
  --overwrite true|false --ablations true|false"
. utils/parse_options.sh

data=data
mfccdir=mfcc

# Wall time of every stage: a row (stage, seconds, date, nj, threads) appended to
# exp/stage_times.tsv, where threads = the cores a training takes; a summary line at the end.
stage_times=exp/stage_times.tsv
train_threads=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
stage_start=0
run_summary=
run_seconds=0
begin_stage() { stage_start=$(date +%s); }
end_stage() {
  local seconds=$(( $(date +%s) - stage_start ))
  mkdir -p exp
  [ -s $stage_times ] || printf 'stage\tseconds\tdate\tnj\tthreads\n' > $stage_times
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" $seconds "$(date -u +%Y-%m-%dT%H:%M:%SZ)" $nj $train_threads >> $stage_times
  run_summary="$run_summary $1:${seconds}s"
  run_seconds=$(( run_seconds + seconds ))
}

# Scores one system on one trial set with the four back-ends: cosine and LDA+PLDA, each with and
# without AS-norm (cohort: the training vectors). Rows go to exp/results.tsv; a DET plot of the four
# to exp/scores/<system>_<name>/det.png. Optional: $6 the test-side vectors (default $3: enrolment
# and test side from one extraction), $7 the trial-set name in the table (default $5), $8 the LDA
# dimension of <plda-dir> (default $lda_dim).
score_backends() {
  local sys=$1 train_scp=$2 eval_scp=$3 plda_dir=$4 set=$5 test_scp=${6:-$3} name=${7:-$5} dim=${8:-$lda_dim}
  local out=exp/scores/${sys}_$name trials=$data/$set/trials
  steps/score_cosine.sh --cmd "$train_cmd" --system $sys --backend cosine --trials-name $name \
    $train_scp $eval_scp $test_scp $trials $out/cosine
  steps/score_norm.sh --cmd "$train_cmd" --scorer cosine --top-n $asnorm_top_n --trials $trials \
    --system $sys --backend cosine+asnorm --trials-name $name \
    $train_scp $eval_scp $test_scp $out/cosine/scores $out/cosine_asnorm
  steps/score_plda.sh --cmd "$train_cmd" --system $sys --backend lda$dim+plda --trials-name $name \
    $plda_dir $eval_scp $test_scp $trials $out/plda
  steps/score_norm.sh --cmd "$train_cmd" --scorer plda --model-dir $plda_dir --top-n $asnorm_top_n \
    --trials $trials --system $sys --backend lda$dim+plda+asnorm --trials-name $name \
    $train_scp $eval_scp $test_scp $out/plda/scores $out/plda_asnorm
  python -m sidkd.bin.plot_det --title "$sys, $name" \
    --names cosine,cosine+asnorm,lda$dim+plda,lda$dim+plda+asnorm $trials $out/det.png \
    $out/cosine/scores $out/cosine_asnorm/scores $out/plda/scores $out/plda_asnorm/scores
}

# Stage 0: Kaldi data directories from the corpus folders, speaker-disjoint, with all-pairs trials.
if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  begin_stage
  local/prepare_data.sh --corpus-root "$corpus_root" --splits-dir "$splits_dir" \
    --long-corpus "$long_corpus" --extra-train-corpora "$extra_train_corpora" \
    --short-corpus "$short_corpus" $data
  end_stage 0
fi

# Stage 1: MFCCs (conf/mfcc.conf: Kaldi voxceleb v1 values) and energy VAD (conf/vad.conf) for
# every data dir. Utterances that cannot be read or are shorter than a frame are skipped and named
# in exp/make_mfcc/<name>/*.log; fix_data_dir.sh then drops them from the data dir and says so.
if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  begin_stage
  for name in train test sc_train sc_test; do
    steps/make_mfcc.sh --nj $nj --cmd "$train_cmd" --mfcc-config conf/mfcc.conf \
      --write-utt2num-frames true $data/$name exp/make_mfcc/$name $mfccdir
    utils/fix_data_dir.sh $data/$name
    steps/compute_vad_decision.sh --nj $nj --cmd "$train_cmd" --vad-config conf/vad.conf \
      $data/$name exp/make_vad/$name $mfccdir
    utils/fix_data_dir.sh $data/$name
  done
  end_stage 1
fi

# Stage 2: the UBMs of the i-vector teacher on data/train's voiced frames (MFCC + deltas, sliding
# CMN: conf/ivector_{deltas,cmvn}.conf): diagonal (mixing-up init + EM), then full covariance.
# The features go through that pipeline once (exp/ivector_feats_train, float32 archives); the UBM
# and extractor steps read them with --feats-dir. Full UBM: every 5th frame, as Kaldi's.
if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  begin_stage
  steps/make_ivector_feats.sh --nj $nj --cmd "$train_cmd" $data/train exp/ivector_feats_train
  steps/train_diag_ubm.sh --nj $nj --cmd "$train_cmd" --num-gaussians $ivector_num_gauss \
    --num-iters $ubm_num_iters --subsample $diag_ubm_subsample --feats-dir exp/ivector_feats_train \
    $data/train exp/diag_ubm
  steps/train_full_ubm.sh --nj $nj --cmd "$train_cmd" --num-iters $ubm_num_iters \
    --num-gselect $ivector_num_gselect --subsample $full_ubm_subsample --feats-dir exp/ivector_feats_train \
    $data/train exp/diag_ubm exp/full_ubm
  end_stage 2
fi

# Stage 3: the total-variability i-vector extractor (Kaldi's formulation) on data/train.
if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  begin_stage
  steps/train_ivector_extractor.sh --nj $nj --cmd "$train_cmd" --ivector-dim $ivector_dim \
    --num-iters $ivector_num_iters --num-gselect $ivector_num_gselect --min-post $ivector_min_post \
    --feats-dir exp/ivector_feats_train exp/full_ubm $data/train exp/extractor
  end_stage 3
fi

# Stage 4: i-vectors (ivector.scp), speaker means (spk_ivector.scp) and num_utts.ark per data dir.
if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  begin_stage
  for name in train test sc_train sc_test; do
    steps/extract_ivectors.sh --nj $nj --cmd "$train_cmd" --num-gselect $ivector_num_gselect \
      --min-post $ivector_min_post exp/extractor $data/$name exp/ivectors_$name
  done
  end_stage 4
fi

# Stage 5: the i-vector baseline. LDA and PLDA are trained on the train speakers with >= 2
# utterances (REFERENCE.md); scoring subtracts the mean of all train i-vectors.
if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  begin_stage
  steps/train_plda.sh --cmd "$train_cmd" --lda-dim $lda_dim --num-iters 10 \
    exp/ivectors_train/ivector.scp $data/train exp/ivectors_train/plda_lda$lda_dim
  for x in $baseline_sets; do
    score_backends ivector exp/ivectors_train/ivector.scp exp/ivectors_$x/ivector.scp \
      exp/ivectors_train/plda_lda$lda_dim $x
  done
  column -t -s$'\t' exp/results.tsv
  end_stage 5
fi

# The students of stages 6-8, each name:target:λ:normalisation:yaml: the ablation without the teacher,
# exp/student_kd (λ = $kd_weight) and exp/student_kd_$kd_norm_alt (the other teacher normalisation),
# then $kd_variants. --dev-split true trains them on data/train_dev_train and scores data/train_dev
# (the validation trials: a study chooses there, never on data/test), named <name>_dev;
# --student-seeds "1 2 3" trains each once per seed, named <name>_seed<k> (results_table
# --aggregate-seeds gives mean ± std).
student_train=train student_eval=test student_suffix=
if [ "$dev_split" = true ]; then student_train=train_dev_train student_eval=train_dev student_suffix=_dev; fi
student_specs="student_nokd:ivector:0:$kd_norm student_kd:$kd_target:$kd_weight:$kd_norm"
[ -z "$kd_norm_alt" ] || student_specs="$student_specs student_kd_$kd_norm_alt:$kd_target:$kd_weight:$kd_norm_alt"
[ $ablations = true ] || student_specs="student_kd:$kd_target:$kd_weight:$kd_norm"  # quick run: no ablations
student_runs=()   # system:target:λ:normalisation:yaml:seed ("none": the yaml's)
for spec in $student_specs $kd_variants; do
  IFS=: read -r name target weight norm yaml <<< "$spec"
  for seed in ${student_seeds:-none}; do
    sys=$name$student_suffix; [ "$seed" = none ] || sys=${sys}_seed$seed
    student_runs+=("$sys:$target:$weight:${norm:-$kd_norm}:${yaml:-$student_conf}:$seed")
  done
done
student_systems=$(for run in "${student_runs[@]}"; do echo -n "${run%%:*} "; done)
student_bases=$(for spec in $student_specs $kd_variants; do echo -n "${spec%%:*}$student_suffix "; done)

# Stage 6: the student ResNets above, all with the same config and seed unless told otherwise.
# Training time in exp/<system>/train_seconds; rerunning resumes from the last epoch checkpoint.
# The crop targets first get the teacher's i-vectors of fixed crops of data/train
# (exp/ivectors_train_crops, crops as long as the yaml's training chunks).
if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  begin_stage
  if [ "$dev_split" = true ]; then  # kept when made with these parameters from this data/train
    prefixes=$(for pair in $extra_train_corpora; do echo -n "${pair#*:} "; done)
    local/make_dev_split.sh --num-speakers $dev_num_speakers --seed $dev_seed --exclude-prefixes "$prefixes" \
      $data/train $data/train_dev_train $data/train_dev
  fi
  for run in "${student_runs[@]}"; do
    IFS=: read -r sys target weight norm yaml seed <<< "$run"
    teacher=exp/ivectors_train/ivector.scp
    if awk "BEGIN{exit !($weight == 0)}"; then
      teacher=none
    elif [ "${target#crop}" != "$target" ]; then
      teacher=exp/ivectors_train_crops/ivector.scp
      # kept when made with these settings (crop length = the yaml's chunks), else remade
      chunk=$(python -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['features']['chunk_seconds'])" $yaml)
      steps/extract_crop_ivectors.sh --nj $nj --cmd "$train_cmd" --num-crops $kd_num_crops --crop-seconds $chunk \
        --num-gselect $ivector_num_gselect --min-post $ivector_min_post exp/extractor $data/train exp/ivectors_train_crops
    fi
    seed_opt=(); [ "$seed" = none ] || seed_opt=(--seed $seed)
    steps/train_student.sh --cmd "$cuda_cmd" --overwrite $overwrite --nnet-config $yaml --num-procs $student_procs "${seed_opt[@]}" \
      --kd-weight $weight --kd-normalisation $norm --kd-target $target $data/$student_train $teacher exp/$sys
  done
  end_stage 6
fi

# Stage 7: student embeddings of the training set (back-end training, AS-norm cohort) and the scored set.
if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  begin_stage
  for sys in $student_systems; do
    for name in $student_train $student_eval; do
      steps/extract_embeddings.sh --nj $nj --cmd "$train_cmd" exp/$sys $data/$name exp/$sys/xvectors_$name
    done
  done
  end_stage 7
fi

# Stage 8: the students on data/test (data/train_dev with --dev-split true) with the back-ends of the baseline.
if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  begin_stage
  for sys in $student_systems; do
    xv=exp/$sys
    steps/train_plda.sh --cmd "$train_cmd" --lda-dim $lda_dim --num-iters 10 \
      $xv/xvectors_$student_train/xvector.scp $data/$student_train $xv/xvectors_$student_train/plda_lda$lda_dim
    score_backends $sys $xv/xvectors_$student_train/xvector.scp $xv/xvectors_$student_eval/xvector.scp \
      $xv/xvectors_$student_train/plda_lda$lda_dim $student_eval
    echo "$sys: trained in $(cat $xv/train_seconds 2>/dev/null || echo "an unrecorded time") s"
  done
  column -t -s$'\t' exp/results.tsv
  # README's student table (EER% / minDCF(0.01)), also in exp/student_table${student_suffix}.md
  cols="$student_eval:cosine $student_eval:cosine+asnorm $student_eval:lda$lda_dim+plda $student_eval:lda$lda_dim+plda+asnorm"
  python -m sidkd.bin.results_table --systems "ivector $student_systems" --columns "$cols" exp/results.tsv \
    | tee exp/student_table$student_suffix.md
  if [ -n "$student_seeds" ]; then  # mean ± std over the seeds, also in exp/student_seeds_table*.md
    python -m sidkd.bin.results_table --aggregate-seeds true --systems "$student_bases" --columns "$cols" \
      exp/results.tsv | tee exp/student_seeds_table$student_suffix.md
  fi
  end_stage 8
fi

# The transfer variants, name:K:α, all from the same source model with the same seed and yaml
# ($transfer_tag tells the variants of one data recipe from another's).
transfer_variants=
for v in $transfer_variant_names; do
  case $v in
    ce) transfer_variants+=" transfer_ce$transfer_tag:1:0" ;;
    msce) transfer_variants+=" transfer_msce$transfer_tag:$transfer_sub_centers:0" ;;
    kl) transfer_variants+=" transfer_kl$transfer_tag:1:$transfer_kl_weight" ;;
    msce_kl) transfer_variants+=" transfer_msce_kl$transfer_tag:$transfer_sub_centers:$transfer_kl_weight" ;;
    *) echo "$0: --transfer-variant-names: unknown variant '$v' (ce msce kl msce_kl)" >&2; exit 1 ;;
  esac
done
[ $ablations = true ] || transfer_variants=" transfer_msce_kl$transfer_tag:$transfer_sub_centers:$transfer_kl_weight"
transfer_systems=$(for v in $transfer_variants; do echo -n "${v%%:*} "; done)
# The model directory of a system of stages 10-11 ("source" is the source student).
system_dir() { if [ $1 = source ]; then echo exp/$transfer_source; else echo exp/$1; fi; }

# Stage 9: transfer of the source student (pre-trained on long speech with SpecAugment, babble and
# reverberation and a warm-up LR phase: stage 6) to the 1-s clips of data/sc_train: a new sub-centre
# AAM head, L = L_msce + α·L_kl (+ β·L_mse); docs/transfer.md. Rerunning resumes each training.
if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  begin_stage
  teacher=none
  if awk "BEGIN{exit !($transfer_kd_weight > 0)}"; then teacher=exp/ivectors_sc_train/ivector.scp; fi
  # the long speech (replay, long views source/utterance); the program reads it only when used
  data_opts=()
  [ -n "$transfer_long_data" ] && data_opts+=(--long-data $data/$transfer_long_data)
  [ -n "$transfer_replay_ratio" ] && data_opts+=(--replay-ratio $transfer_replay_ratio)
  [ -n "$transfer_short_seconds" ] && data_opts+=(--short-seconds $transfer_short_seconds)
  for v in $transfer_variants; do
    IFS=: read -r sys k alpha <<< "$v"
    steps/transfer_student.sh --cmd "$cuda_cmd" --overwrite $overwrite --nnet-config $transfer_conf --num-procs $transfer_procs \
      --sub-centers $k --kl-weight $alpha --long-view $transfer_long_view --kd-weight $transfer_kd_weight \
      ${data_opts[@]+"${data_opts[@]}"} exp/$transfer_source $data/sc_train $teacher exp/$sys
  done
  end_stage 9
fi

# Stage 10: embeddings. Every system: sc_train (the sc_test back-end) and sc_test (1-s clips), and
# data/test with --max-duration S for each S in $test_crops (the centre S seconds: the cropped test
# side of test_Ss, and both sides of test_SsSs). The transferred models also embed train and test
# whole (the source did in stage 7).
if [ $stage -le 10 ] && [ $stop_stage -ge 10 ]; then
  begin_stage
  for sys in source $transfer_systems; do
    dir=$(system_dir $sys)
    names="sc_train sc_test"
    [ $sys = source ] || names="train test $names"
    for name in $names; do
      steps/extract_embeddings.sh --nj $nj --cmd "$train_cmd" $dir $data/$name $dir/xvectors_$name
    done
    for s in $test_crops; do
      steps/extract_embeddings.sh --nj $nj --cmd "$train_cmd" --max-duration $s \
        $dir $data/test $dir/xvectors_test_${s}s
    done
  done
  end_stage 10
fi

# Stage 11: the short-speech table. sc_test: back-end (mean, LDA+PLDA, AS-norm cohort) from the same
# model's sc_train embeddings (in-domain, as a deployment on short clips would have). test_Ss: the
# trials of data/test with the enrolment side whole and the test side cropped to S seconds, back-end
# from the train embeddings (the enrolment domain); test_SsSs: the same trials with both sides
# cropped to S seconds (enrolment vectors from the cropped extraction too: a short-utterance product),
# same back-end; test: both sides whole, for the cost of transfer on long speech.
if [ $stage -le 11 ] && [ $stop_stage -ge 11 ]; then
  begin_stage
  for sys in source $transfer_systems; do
    xv=$(system_dir $sys)
    steps/train_plda.sh --cmd "$train_cmd" --lda-dim $transfer_lda_dim --num-iters 10 \
      $xv/xvectors_sc_train/xvector.scp $data/sc_train $xv/xvectors_sc_train/plda_lda$transfer_lda_dim
    score_backends $sys $xv/xvectors_sc_train/xvector.scp $xv/xvectors_sc_test/xvector.scp \
      $xv/xvectors_sc_train/plda_lda$transfer_lda_dim sc_test "" "" $transfer_lda_dim
    steps/train_plda.sh --cmd "$train_cmd" --lda-dim $lda_dim --num-iters 10 \
      $xv/xvectors_train/xvector.scp $data/train $xv/xvectors_train/plda_lda$lda_dim
    score_backends $sys $xv/xvectors_train/xvector.scp $xv/xvectors_test/xvector.scp \
      $xv/xvectors_train/plda_lda$lda_dim test
    for s in $test_crops; do
      cropped=$xv/xvectors_test_${s}s/xvector.scp
      score_backends $sys $xv/xvectors_train/xvector.scp $xv/xvectors_test/xvector.scp \
        $xv/xvectors_train/plda_lda$lda_dim test $cropped test_${s}s
      score_backends $sys $xv/xvectors_train/xvector.scp $cropped \
        $xv/xvectors_train/plda_lda$lda_dim test $cropped test_${s}s${s}s
    done
  done
  { head -n 1 exp/results.tsv; grep -E "^(source|transfer_)" exp/results.tsv; } | column -t -s$'\t'
  # README's short-speech table (EER% / minDCF(0.01)), also in exp/transfer_table$transfer_tag.md
  cols="sc_test:cosine sc_test:lda$transfer_lda_dim+plda"
  for s in $test_crops; do cols="$cols test_${s}s:cosine test_${s}s:lda$lda_dim+plda"; done
  for s in $test_crops; do cols="$cols test_${s}s${s}s:cosine test_${s}s${s}s:lda$lda_dim+plda"; done
  python -m sidkd.bin.results_table --systems "source $transfer_systems" \
    --columns "$cols test:cosine test:lda$lda_dim+plda" exp/results.tsv | tee exp/transfer_table$transfer_tag.md
  end_stage 11
fi

if [ -n "$run_summary" ]; then
  echo "$0: stage wall times:$run_summary; total $run_seconds s ($(( (run_seconds + 30) / 60 )) min), rows in $stage_times"
fi
