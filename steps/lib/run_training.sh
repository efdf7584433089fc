# shellcheck shell=bash
# Sourced by steps/train_student.sh and steps/transfer_student.sh: the part they share.
# run_training PROGRAM runs `python -m sidkd.bin.PROGRAM "${opts[@]}"` (torchrun with $num_procs
# processes when > 1) through $cmd into $dir/log/train.log, and writes $dir/train_seconds.
# Uses the caller's $dir $resume $nnet_config $num_procs $num_threads $cmd and the array opts.
# path.sh gives every job one thread (parallelism comes from --nj); a training is one job, so it
# gets $num_threads threads per process (0: the machine's cores shared among its processes).
run_training() {
  local program=$1 start end
  # A finished training is not redone (and its train_seconds stays): delete final.pt to train again.
  if [ "$resume" = true ] && [ -f "$dir/final.pt" ] && [ -f "$dir/train_seconds" ]; then
    echo "$0: $dir/final.pt exists: training finished earlier in $(cat "$dir/train_seconds") s; delete it to train again"
    return 0
  fi
  mkdir -p "$dir/log"
  # Checkpoints and models are written under a temporary name and renamed; a killed run's
  # temporaries are never read, only removed here.
  rm -f "$dir"/*.tmp.* "$dir"/checkpoints/*.tmp.*
  cp "$nnet_config" "$dir/nnet_config.yaml"
  local threads=$num_threads
  if [ "$threads" -le 0 ]; then
    threads=$(( $(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) / num_procs ))  # nproc obeys OMP_*
    [ "$threads" -ge 1 ] || threads=1
  fi
  local launcher=(env OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" python -m "sidkd.bin.$program")
  if [ "$num_procs" -gt 1 ]; then
    launcher=(env OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" torchrun --standalone \
      --nproc_per_node "$num_procs" -m "sidkd.bin.$program")
  fi
  start=$(date +%s)
  # The job writes only to its log; its one line per epoch (epoch E/N: losses, accuracy, samples/s,
  # elapsed, ETA) is copied to stderr as it appears, so a training of half an hour is never silent.
  # tail --pid ends with the job; the old log goes first so that its lines are not shown again.
  rm -f "$dir/log/train.log"
  local job watcher rc=0
  $cmd "$dir/log/train.log" "${launcher[@]}" "${opts[@]}" &
  job=$!
  tail -n +1 -F --pid=$job "$dir/log/train.log" 2>/dev/null \
    | grep --line-buffered -oE 'epoch [0-9]+/[0-9]+: .*' | sed -u "s|^|$dir: |" >&2 &
  watcher=$!
  wait $job || rc=$?
  wait $watcher || true
  [ $rc -eq 0 ] || { echo "$0: training failed (exit $rc); see $dir/log/train.log" >&2; return $rc; }
  end=$(date +%s)
  echo $((end - start)) > "$dir/train_seconds"
  [ -f "$dir/final.pt" ] || { echo "$0: training ended without $dir/final.pt; see $dir/log/train.log" >&2; return 1; }
  echo "$0: trained $dir/final.pt in $((end - start)) s, $num_procs process(es) x $threads thread(s) (log: $dir/log/train.log)"
}
