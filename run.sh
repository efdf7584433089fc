#!/usr/bin/env bash
# sidkd recipe: speaker verification with an i-vector teacher and a ResNet student distilled from it.
# Run from this directory; rerun any slice with ./run.sh --stage N --stop-stage M. Stages 0-5: data,
# features, the i-vector teacher and its baseline; 6-8: the students; 9-11: the short-speech transfer.
# Sizes live in files: conf/ivector.conf (teacher), conf/recipe.conf (back-ends, trials, validation
# split), conf/<variant>.yaml (networks; a variant names its base and holds its differences). Every
# variable of the two .conf files is an option too (--lda-dim 3), and --student-set / --transfer-set
# lay settings over the yamls; sizes the data cannot give are fitted to it once, logged (sidkd/sizes.py).
. ./path.sh
. ./cmd.sh
set -euo pipefail

stage=0
stop_stage=11
nj=4                             # parallel jobs per step
corpus_root=../shared/corpora
splits_dir=                      # default: $corpus_root/splits (speaker lists <corpus>.{train,test}.spk)
long_corpus=speechocean762
extra_train_corpora="librispeech_subset:ls"
short_corpus=speechcommands
sample_rate=16000                # Hz of every corpus; another rate: exp/conf_<rate>/mfcc.conf and students at it
# The method and its ablations: the students (stage 6) and transfers (stage 9), each conf/<name>.yaml.
students="student_nokd student_kd student_kd_whiten"
transfers="transfer_ce transfer_msce transfer_kl transfer_msce_kl"
transfer_source=student_kd       # exp/$transfer_source, "source" in the table of stage 11
student_seeds=                   # "" = the yamls' seed; "1 2 3": each student once per seed, <name>_seed<k>
dev_split=false                  # true: stages 6-8 train on data/train_dev_train, score data/train_dev (<name>_dev)
nnet_procs=1                     # >1: torchrun DistributedDataParallel processes per training
overwrite=false                  # true: retrain a system whose exp/<system>/config.yaml records another config
student_set=                     # 'KEY=VALUE ...' over every student's yaml (stage 6), e.g. 'optim.num_epochs=2 optim.average_last=1'
transfer_set=                    # the same over every transfer's yaml (stage 9)
help_message="Usage: $0 [--stage N] [--stop-stage M] [--option value ...]: the options are the variables
above (--nj, --students, ...) and those of conf/ivector.conf and conf/recipe.conf (--ivector-num-gauss 64,
--lda-dim 100, ...). A quick run without the ablations: --students student_kd --transfers transfer_msce_kl"
. conf/ivector.conf; . conf/recipe.conf  # their variables are options too: sourced before the command line
. utils/parse_options.sh
. utils/stage_timer.sh
data=data sets="train test${short_corpus:+ sc_train sc_test}"  # no short corpus: stages 0-8 on the long one
mfcc_conf=conf/mfcc.conf rate_set=  # conf/ is for 16 kHz; the filters of another rate stop as far below its Nyquist
[ $sample_rate = 16000 ] || { mfcc_conf=exp/conf_$sample_rate/mfcc.conf rate_set="features.sample_rate=$sample_rate features.fbank.high_freq=-$nyquist_margin"
  utils/conf_for_rate.sh --nyquist-margin $nyquist_margin $sample_rate conf/mfcc.conf $mfcc_conf; }
[ -n "$short_corpus" ] || { baseline_sets=test; [ $stop_stage -lt 9 ] || echo "$0: --short-corpus \"\": no short speech, stages 9-11 skipped"; }
[ -n "$short_corpus" ] || stop_stage=$(( stop_stage < 8 ? stop_stage : 8 ))
for v in $students $transfers; do [ -f conf/$v.yaml ] || { echo "$0: no variant file conf/$v.yaml" >&2; exit 1; }; done
# every yaml a training stage of this run reads, with its settings, checked (keys, types, ranges) first
[ $stop_stage -lt 6 ] || [ -z "$students" ] || python -m sidkd.bin.show_config --check true \
  --set "$rate_set $student_set" $(printf "conf/%s.yaml " $students) || {
  echo "$0: mend the setting named above (--student-set '$student_set', or the yaml)" >&2; exit 1; }
[ $stop_stage -lt 9 ] || [ -z "$transfers" ] || python -m sidkd.bin.show_config --check true --kind transfer \
  --set "$transfer_set" $(printf "conf/%s.yaml " $transfers) || {
  echo "$0: mend the setting named above (--transfer-set '$transfer_set', or the yaml)" >&2; exit 1; }
# fit_lda VAR DATA: $VAR (an LDA dimension of conf/recipe.conf) below the speakers with >= 2
# utterances of DATA (the back-end's PLDA speakers) and at most the i-vector dimension; decided once
# per run, when DATA exists, the reason logged (sidkd.bin.fit_sizes)
_fitted=" "
fit_lda() {
  if [[ $_fitted != *" $1 "* ]] && [ -f $2/utt2spk ]; then
    local dim
    dim=$(python -m sidkd.bin.fit_sizes lda --name $1 --dim ${!1} --max-dim $ivector_dim $2/utt2spk)
    printf -v $1 %s $dim
    _fitted+="$1 "
  fi
}
# score SYSTEM SET TRAIN_SCP ENROL_SCP PLDA_DIR [TEST_SCP NAME]: the four back-ends on $data/SET/trials
score() {
  local/score_backends.sh --cmd "$train_cmd" --top-n $asnorm_top_n --max-cohort $asnorm_max_cohort --test-scp ${6:-$4} --trials-name ${7:-$2} \
    $1 $3 $4 $5 $data/$2/trials exp/scores/${1}_${7:-$2}
}

# Stage 0: speaker-disjoint data dirs from the corpus folders, with all-pairs trials.
if stage_on 0; then
  local/prepare_data.sh --corpus-root "$corpus_root" --splits-dir "$splits_dir" --long-corpus "$long_corpus" \
    --extra-train-corpora "$extra_train_corpora" --short-corpus "$short_corpus" \
    --trials-all-pairs-max-utts $trials_all_pairs_max_utts --trials-per-utt "$trials_per_utt" $data
  end_stage 0
fi

# Stage 1: MFCC (conf/mfcc.conf: Kaldi voxceleb v1) and energy VAD; unreadable utterances are named and
# dropped, with the trials that name them. Each data dir starts as stage 0 left it (a rerun after a
# failure or after drops starts clean: utils/restore_data_dir.sh).
if stage_on 1; then
  for name in $sets; do
    utils/restore_data_dir.sh $data/$name
    steps/make_mfcc.sh --nj $nj --cmd "$train_cmd" --mfcc-config $mfcc_conf --write-utt2num-frames true $data/$name exp/make_mfcc/$name mfcc
    utils/fix_data_dir.sh $data/$name
    steps/compute_vad_decision.sh --nj $nj --cmd "$train_cmd" $data/$name exp/make_vad/$name mfcc
    utils/fix_data_dir.sh $data/$name
  done
  end_stage 1
fi

# Stages 2-3: the teacher on data/train's voiced frames (MFCC + deltas, sliding CMN; made once as
# exp/ivector_feats_train): diagonal UBM, full-covariance UBM, then the total-variability extractor.
if stage_on 2; then
  # the teacher's sizes against data/train's voiced frames and utterances: a warning naming the option to lower
  python -m sidkd.bin.fit_sizes teacher --num-gauss $ivector_num_gauss --ivector-dim $ivector_dim $data/train
  steps/make_ivector_feats.sh --nj $nj --cmd "$train_cmd" $data/train exp/ivector_feats_train
  steps/train_diag_ubm.sh --nj $nj --cmd "$train_cmd" --num-gaussians $ivector_num_gauss --num-iters $ubm_num_iters \
    --subsample $diag_ubm_subsample --feats-dir exp/ivector_feats_train $data/train exp/diag_ubm
  steps/train_full_ubm.sh --nj $nj --cmd "$train_cmd" --num-iters $ubm_num_iters --num-gselect $ivector_num_gselect \
    --subsample $full_ubm_subsample --feats-dir exp/ivector_feats_train $data/train exp/diag_ubm exp/full_ubm
  end_stage 2
fi

if stage_on 3; then
  steps/train_ivector_extractor.sh --nj $nj --cmd "$train_cmd" --ivector-dim $ivector_dim \
    --num-iters $ivector_num_iters --num-gselect $ivector_num_gselect --min-post $ivector_min_post \
    --feats-dir exp/ivector_feats_train exp/full_ubm $data/train exp/extractor
  end_stage 3
fi

# Stage 4: i-vectors (ivector.scp), speaker means (spk_ivector.scp) and num_utts.ark per data dir.
if stage_on 4; then
  for name in $sets; do
    steps/extract_ivectors.sh --nj $nj --cmd "$train_cmd" --num-gselect $ivector_num_gselect \
      --min-post $ivector_min_post exp/extractor $data/$name exp/ivectors_$name
  done
  end_stage 4
fi

# Stage 5: the i-vector baseline; LDA and PLDA on the train speakers with >= 2 utterances (docs/reference.md).
[ $stop_stage -lt 5 ] || fit_lda lda_dim $data/train
if stage_on 5; then
  steps/train_plda.sh --cmd "$train_cmd" --lda-dim $lda_dim exp/ivectors_train/ivector.scp $data/train exp/ivectors_train/plda_lda$lda_dim
  for x in $baseline_sets; do
    score ivector $x exp/ivectors_train/ivector.scp exp/ivectors_$x/ivector.scp exp/ivectors_train/plda_lda$lda_dim
  done
  end_stage 5
fi

# Stages 6-8 train on data/train and score data/test, or with --dev-split true on the validation
# split (a study chooses there, never on data/test): systems <name>_dev, the teacher scored beside them.
student_train=train student_eval=test suffix=
[ $dev_split = false ] || { student_train=train_dev_train student_eval=train_dev suffix=_dev; }
# fit_eval_lda: $eval_lda, the LDA of stages 6-8's back-ends and of the *lda teacher targets, fitted
# to the speakers of the data they train on
fit_eval_lda() {
  if [ $dev_split = false ]; then fit_lda lda_dim $data/train; eval_lda=$lda_dim
  else fit_lda dev_lda_dim $data/train_dev_train; eval_lda=$dev_lda_dim; fi
}
student_systems=$(for v in $students; do for s in ${student_seeds:-none}; do echo -n "$v${suffix}_seed$s "; done; done)
student_systems=${student_systems//_seednone/}

# Stage 6: the students. A crop target first gets i-vectors of fixed crops of data/train as long as
# its training chunks (exp/ivectors_train_crops, kept when made so).
if stage_on 6; then
  # the validation split: kept when made with these parameters from this data/train
  [ $dev_split = false ] || local/make_dev_split.sh --num-speakers $dev_num_speakers --seed $dev_seed \
    --exclude-prefixes "$(for p in $extra_train_corpora; do echo -n "${p#*:} "; done)" $data/train $data/train_dev_train $data/train_dev
  fit_eval_lda
  for v in $students; do
    kd=$(python -m sidkd.bin.show_config --set "$student_set" conf/$v.yaml kd_teacher features.chunk_seconds | xargs)
    teacher=exp/ivectors_train/ivector.scp chunk=${kd#* }  # read only when the variant's loss.kd.weight > 0
    if [ "${kd% *}" = crops ]; then
      teacher=exp/ivectors_train_crops/ivector.scp
      steps/extract_crop_ivectors.sh --nj $nj --cmd "$train_cmd" --mfcc-config $mfcc_conf --num-crops $kd_num_crops --crop-seconds $chunk \
        --num-gselect $ivector_num_gselect --min-post $ivector_min_post exp/extractor $data/train exp/ivectors_train_crops
    fi
    for s in ${student_seeds:-none}; do
      # the *lda teacher targets' LDA as the back-end's: below the speakers of the training data
      set="$rate_set loss.kd.lda.dim=$eval_lda $student_set" sys=$v$suffix
      [ $s = none ] || set="$set seed=$s" sys=$v${suffix}_seed$s
      steps/train_student.sh --cmd "$cuda_cmd" --nnet-config conf/$v.yaml --set "$set" --num-procs $nnet_procs \
        --overwrite $overwrite $data/$student_train $teacher exp/$sys
    done
  done
  end_stage 6
fi

# Stage 7: student embeddings of the training set (back-end training, AS-norm cohort) and the scored set.
if stage_on 7; then
  for sys in $student_systems; do
    for x in $student_train $student_eval; do steps/extract_embeddings.sh --nj $nj --cmd "$train_cmd" exp/$sys $data/$x exp/$sys/xvectors_$x; done
  done
  end_stage 7
fi

# Stage 8: the back-ends of stage 5; the students' table (EER% / minDCF(0.01)) in exp/student_table*.md.
if stage_on 8; then
  fit_eval_lda
  if [ $dev_split = true ]; then  # the teacher on the same trials, its back-end from the same speakers
    iv=exp/ivectors_$student_train
    mkdir -p $iv && utils/filter_scp.pl $data/$student_train/utt2spk exp/ivectors_train/ivector.scp > $iv/ivector.scp
    steps/train_plda.sh --cmd "$train_cmd" --lda-dim $eval_lda $iv/ivector.scp $data/$student_train $iv/plda
    score ivector $student_eval $iv/ivector.scp exp/ivectors_train/ivector.scp $iv/plda
  fi
  for sys in $student_systems; do
    xv=exp/$sys/xvectors_$student_train
    steps/train_plda.sh --cmd "$train_cmd" --lda-dim $eval_lda $xv/xvector.scp $data/$student_train $xv/plda_lda$eval_lda
    score $sys $student_eval $xv/xvector.scp exp/$sys/xvectors_$student_eval/xvector.scp $xv/plda_lda$eval_lda
  done
  cols=$(python -m sidkd.bin.backends columns --lda-dim $eval_lda --sets $student_eval)  # every back-end, ± AS-norm
  python -m sidkd.bin.results_table --systems "ivector $student_systems" --columns "$cols" exp/results.tsv \
    | tee exp/student_table$suffix.md
  [ -z "$student_seeds" ] || python -m sidkd.bin.results_table --aggregate-seeds true --columns "$cols" \
    --systems "$(printf "%s$suffix " $students)" exp/results.tsv | tee exp/student_seeds_table$suffix.md
  end_stage 8
fi

# Stage 9: the transfers of the source student to the 1-s clips of data/sc_train (docs/transfer.md);
# data/train is the long speech they replay and view; the teacher is read only where loss.kd.weight > 0.
if stage_on 9; then
  for v in $transfers; do
    steps/transfer_student.sh --cmd "$cuda_cmd" --nnet-config conf/$v.yaml --set "$transfer_set" --num-procs $nnet_procs --overwrite $overwrite \
      --long-data $data/train exp/$transfer_source $data/sc_train exp/ivectors_sc_train/ivector.scp exp/$v
  done
  end_stage 9
fi

# Stage 10: embeddings of sc_train, sc_test and of data/test's centre S seconds (S in $test_crops);
# the transfers also embed train and test whole (the source did in stage 7).
if stage_on 10; then
  for sys in source $transfers; do
    dir=exp/${sys/#source/$transfer_source} names="sc_train sc_test"
    [ $sys = source ] || names="train test $names"
    for x in $names; do steps/extract_embeddings.sh --nj $nj --cmd "$train_cmd" $dir $data/$x $dir/xvectors_$x; done
    for s in $test_crops; do
      steps/extract_embeddings.sh --nj $nj --cmd "$train_cmd" --max-duration $s $dir $data/test $dir/xvectors_test_${s}s
    done
  done
  end_stage 10
fi

# Stage 11: sc_test (back-end from sc_train: in domain); data/test's trials with the test side cropped
# to S s (test_Ss), both sides (test_SsSs) and none (test), back-end from train; exp/transfer_table.md.
if stage_on 11; then
  fit_lda lda_dim $data/train; fit_lda transfer_lda_dim $data/sc_train
  for sys in source $transfers; do
    xv=exp/${sys/#source/$transfer_source}
    sc_plda=$xv/xvectors_sc_train/plda_lda$transfer_lda_dim plda=$xv/xvectors_train/plda_lda$lda_dim
    steps/train_plda.sh --cmd "$train_cmd" --lda-dim $transfer_lda_dim $xv/xvectors_sc_train/xvector.scp $data/sc_train $sc_plda
    score $sys sc_test $xv/xvectors_sc_train/xvector.scp $xv/xvectors_sc_test/xvector.scp $sc_plda
    steps/train_plda.sh --cmd "$train_cmd" --lda-dim $lda_dim $xv/xvectors_train/xvector.scp $data/train $plda
    score $sys test $xv/xvectors_train/xvector.scp $xv/xvectors_test/xvector.scp $plda
    for s in $test_crops; do
      cropped=$xv/xvectors_test_${s}s/xvector.scp
      score $sys test $xv/xvectors_train/xvector.scp $xv/xvectors_test/xvector.scp $plda $cropped test_${s}s
      score $sys test $xv/xvectors_train/xvector.scp $cropped $plda $cropped test_${s}s${s}s
    done
  done
  cols="$(python -m sidkd.bin.backends columns --asnorm false --lda-dim $transfer_lda_dim --sets sc_test) $(python \
    -m sidkd.bin.backends columns --asnorm false --lda-dim $lda_dim --sets "$(printf "test_%ss " $test_crops
    for s in $test_crops; do echo test_${s}s${s}s; done) test")"  # sc_test, then test_Ss, test_SsSs, test
  python -m sidkd.bin.results_table --systems "source $transfers" --columns "$cols" exp/results.tsv | tee exp/transfer_table.md
  end_stage 11
fi
stage_summary
