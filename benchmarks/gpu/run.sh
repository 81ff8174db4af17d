#!/usr/bin/env bash
# The GPU check in one command: rnnlab's CUDA tests on the real GPU, then the
# benchmark against PyTorch cuDNN (benchmarks/gpu/bench_gpu.py).  Under 5 minutes on an H100.
#
#   bash benchmarks/gpu/run.sh                 # tests, then the full benchmark
#   bash benchmarks/gpu/run.sh --quick         # tests, then two grid rows and a small ensemble
#   bash benchmarks/gpu/run.sh --skip-tests    # benchmark only
#   bash benchmarks/gpu/run.sh --out DIR       # also where last_run.md goes
#
# Needs numpy, scipy, tqdm, numba and numba-cuda (PyTorch and CuPy optional); no
# pip install: the repository is put on PYTHONPATH.  PYTHON=... picks the interpreter.
# Exit status: 0 all passed, 1 a test or benchmark step failed, 3 no GPU (nothing run).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
unset NUMBA_ENABLE_CUDASIM
LIMIT="${RNNLAB_GPU_CHECK_SECONDS:-290}"

run_tests=1
bench_args=()
for arg in "$@"; do
  case "$arg" in
    --skip-tests) run_tests=0 ;;
    *) bench_args+=("$arg") ;;
  esac
done

echo "== rnnlab GPU check ($(date '+%Y-%m-%d %H:%M'), $("$PY" --version 2>&1))"
"$PY" benchmarks/gpu/bench_gpu.py --preflight
pre=$?
if [ "$pre" -ne 0 ]; then
  exit "$pre"
fi

status=0
if [ "$run_tests" -eq 1 ]; then
  echo "== 1/2 CUDA kernel tests on the GPU: python -m pytest tests/cuda"
  timeout 170 "$PY" -m pytest -q -p no:cacheprovider -o addopts="" -ra tests/cuda || status=1
fi

budget=$(( LIMIT - SECONDS - 25 ))
if [ "$budget" -lt 30 ]; then budget=30; fi
echo "== 2/2 benchmark against PyTorch (row budget ${budget} s)"
timeout $(( budget + 60 )) "$PY" benchmarks/gpu/bench_gpu.py --budget "$budget" ${bench_args[@]+"${bench_args[@]}"} || status=1
echo "== done in ${SECONDS} s, status ${status}"
exit "$status"
