# shellcheck shell=bash
# Sourced by a recipe: which stages run, and the wall time of each. `if stage_on N; then ...;
# end_stage N; fi` runs stage N when $stage <= N <= $stop_stage and appends a row (stage, seconds,
# date, nj, threads) to $stage_times (default exp/stage_times.tsv), where threads = the cores a
# training takes; stage_summary prints one line of all stages run. A stage that fails says so on
# exit, with the command that reruns from it.
stage_times=${stage_times:-exp/stage_times.tsv}
_st_threads=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
_st_start=0
_st_summary=
_st_total=0
_st_current=
stage_on() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ] && _st_start=$(date +%s) && _st_current=$1; }
_st_on_exit() {
  local rc=$?
  [ $rc -eq 0 ] || [ -z "$_st_current" ] || echo "$0: stage $_st_current failed (exit $rc): mend what the" \
    "error above names, then rerun from that stage: $0 --stage $_st_current [your other options]" >&2
}
trap _st_on_exit EXIT
end_stage() {
  local seconds=$(( $(date +%s) - _st_start ))
  mkdir -p "$(dirname "$stage_times")"
  [ -s "$stage_times" ] || printf 'stage\tseconds\tdate\tnj\tthreads\n' > "$stage_times"
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" $seconds "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${nj:-1}" "$_st_threads" >> "$stage_times"
  _st_summary="$_st_summary $1:${seconds}s"
  _st_total=$(( _st_total + seconds ))
  _st_current=
}
stage_summary() {
  [ -z "$_st_summary" ] || echo "$0: stage wall times:$_st_summary; total $_st_total s" \
    "($(( (_st_total + 30) / 60 )) min), rows in $stage_times"
}
