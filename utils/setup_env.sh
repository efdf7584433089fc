#!/usr/bin/env bash
# Creates (or completes) the project's environment in .venv: CPU torch 2.13.0 first, so that
# installing sidkd afterwards never pulls a CUDA build, then sidkd itself with its test and onnx extras.
# Idempotent: a second run only checks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
venv=$root/.venv
if [ ! -x "$venv/bin/python" ]; then
  echo "$0: creating $venv" >&2
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip -q --disable-pip-version-check)
if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  echo "$0: installing torch==2.13.0 (CPU build)" >&2
  "${pip[@]}" install torch==2.13.0
fi
if ! "$venv/bin/python" -c 'import sidkd, kaldiio, kaldi_native_fbank, pytest, onnx, onnxruntime' 2>/dev/null \
    || [ ! -x "$venv/bin/sidkd-embed" ]; then
  echo "$0: installing sidkd and its dependencies" >&2
  "${pip[@]}" install -e "$root[test,onnx]"
fi
"$venv/bin/python" -c 'import torch, sidkd; print("sidkd env ready: torch", torch.__version__)' >&2
