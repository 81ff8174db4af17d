"""Run the CUDA kernel tests (tests/cuda) in the numba-cuda simulator, in a subprocess.

numba reads ``NUMBA_ENABLE_CUDASIM`` once, when it is first imported, and this
process has already imported numba for the CPU kernels; so the simulator gets
its own interpreter.  The same tests run natively on a GPU machine
(``python -m pytest tests/cuda``, or ``bash benchmarks/gpu/run.sh``).
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                    reason="numba-cuda is not installed (it comes with the dev extra: pip install -e '.[dev]')")
@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                    reason="this session already runs in the simulator, so tests/cuda run in-process")
def test_cuda_kernels_in_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/cuda"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    report = done.stdout[-6000:] + done.stderr[-3000:]
    assert done.returncode == 0, report
    assert " passed" in done.stdout and "skipped" not in done.stdout.splitlines()[-1], report
