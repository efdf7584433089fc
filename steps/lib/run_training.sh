# shellcheck shell=bash
# Sourced by steps/train_student.sh and steps/transfer_student.sh: the part they share.
# run_training PROGRAM runs `python -m sidkd.bin.PROGRAM "${opts[@]}"` (torchrun with $num_procs
# processes when > 1) through $cmd into $dir/log/train.log, and writes $dir/train_seconds.
# Uses the caller's $dir $num_procs $num_threads $cmd and the array opts.
# path.sh gives every job one thread (parallelism comes from --nj); a training is one job, so it
# gets $num_threads threads per process (0: the machine's cores shared among its processes).
run_training() {
  local program=$1 start end
  # The program itself compares $dir/config.yaml with what is asked: the same configuration
  # resumes, or finds the training finished and does nothing (train_seconds then stays as it was);
  # another one is an error naming the keys that differ, unless --overwrite true.
  mkdir -p "$dir/log"
  # Checkpoints and models are written under a temporary name and renamed; a killed run's
  # temporaries are never read, only removed here.
  rm -f "$dir"/*.tmp.* "$dir"/checkpoints/*.tmp.*
  local before= rotated=
  # final.pt is replaced by a rename, so a new one has a new inode
  [ -f "$dir/final.pt" ] && before=$(stat -c %i.%Y "$dir/final.pt")
  # an earlier run's log is kept (a resumed training's first epochs are in it), renamed by its time
  if [ -f "$dir/log/train.log" ]; then
    rotated=$dir/log/train.$(date -r "$dir/log/train.log" +%Y%m%d-%H%M%S).log
    mv "$dir/log/train.log" "$rotated"
  fi
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
  # tail --pid ends with the job.
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
  [ -f "$dir/final.pt" ] || { echo "$0: training ended without $dir/final.pt; see $dir/log/train.log" >&2; return 1; }
  if [ -n "$before" ] && [ "$(stat -c %i.%Y "$dir/final.pt")" = "$before" ]; then
    # nothing was trained: the training's own log stays train.log, this check goes to check.log
    mv "$dir/log/train.log" "$dir/log/check.log"
    [ -z "$rotated" ] || mv "$rotated" "$dir/log/train.log"
    local took="an unrecorded time (its run was killed after writing final.pt)"
    [ -f "$dir/train_seconds" ] && took="$(cat "$dir/train_seconds") s"
    echo "$0: $dir/final.pt: this configuration finished training earlier, in $took"
    return 0
  fi
  echo $((end - start)) > "$dir/train_seconds"
  echo "$0: trained $dir/final.pt in $((end - start)) s, $num_procs process(es) x $threads thread(s) (log: $dir/log/train.log)"
}
