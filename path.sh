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
