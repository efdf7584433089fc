# Sourced by run.sh and every steps/*.sh: puts the toolkit on PATH and fixes the locale.
SIDKD_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
export SIDKD_ROOT
# The project's environment (made by utils/setup_env.sh), if there is one.
if [ -f "$SIDKD_ROOT/.venv/bin/activate" ] && [ -z "${SIDKD_NO_VENV:-}" ]; then
  # shellcheck disable=SC1091
  . "$SIDKD_ROOT/.venv/bin/activate"
fi
export PATH="$SIDKD_ROOT/utils:$SIDKD_ROOT/steps:$SIDKD_ROOT/sidkd/bin:$PATH"
export PYTHONPATH="$SIDKD_ROOT${PYTHONPATH:+:$PYTHONPATH}"
# Kaldi's sort order and key comparisons assume the C locale.
export LC_ALL=C
export PYTHONUNBUFFERED=1
# Each job is one process; parallelism comes from --nj, not from BLAS threads fighting each other.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export MKL_NUM_THREADS=${MKL_NUM_THREADS:-$OMP_NUM_THREADS}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-$OMP_NUM_THREADS}
# The memory allocator of every program. A training step frees and re-allocates activations of tens
# of MB; glibc's default serves each through mmap, faults it in page by page and unmaps it again,
# which put a quarter of a training's CPU time in the kernel (docs/operations.md, "Allocator").
# SIDKD_MALLOC: auto (default: tcmalloc where libtcmalloc_minimal is installed, else glibc told to
# keep freed memory) | tcmalloc | glibc | system (nothing set). Numbers are the same under each.
case ${SIDKD_MALLOC:=auto} in
  auto|tcmalloc)
    sidkd_tcmalloc=
    for d in "/usr/lib/$HOSTTYPE-linux-gnu" /usr/lib64 /usr/lib /usr/local/lib ${CONDA_PREFIX:+"$CONDA_PREFIX/lib"}; do
      [ -f "$d/libtcmalloc_minimal.so.4" ] && { sidkd_tcmalloc=$d/libtcmalloc_minimal.so.4; break; }
    done
    if [ -n "$sidkd_tcmalloc" ]; then
      case " ${LD_PRELOAD:-} " in *" $sidkd_tcmalloc "*) ;; *) export LD_PRELOAD="$sidkd_tcmalloc${LD_PRELOAD:+ $LD_PRELOAD}";; esac
      # tcmalloc reports every allocation above 1 GB on stderr; the extractor's accumulators may be one
      export TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD=${TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD:-1099511627776}
    elif [ "$SIDKD_MALLOC" = tcmalloc ]; then
      echo "path.sh: SIDKD_MALLOC=tcmalloc but no libtcmalloc_minimal.so.4 found (apt-get install libtcmalloc-minimal4); using glibc's" >&2
    fi
    [ -n "$sidkd_tcmalloc" ] || SIDKD_MALLOC=glibc
    unset sidkd_tcmalloc d ;;
  glibc|system) ;;
  *) echo "path.sh: SIDKD_MALLOC=$SIDKD_MALLOC: expected auto, tcmalloc, glibc or system" >&2; return 1 ;;
esac
if [ "$SIDKD_MALLOC" = glibc ]; then
  # no mmap for large blocks (they come from the heap and are reused) and no trimming of its top
  case ${GLIBC_TUNABLES:-} in *glibc.malloc.mmap_max*) ;;
    *) export GLIBC_TUNABLES="glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}";; esac
fi
export SIDKD_MALLOC
