"""Run every numba-cuda-parametrised test again under Numba's CUDA simulator.

``NUMBA_ENABLE_CUDASIM`` must be set before numba is imported, so this happens in a separate
pytest process. Tests shrink their sizes when ``spkernels.backends.cuda_simulator()`` is true.
On a GPU machine the same tests also run for real in the main process.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from spkernels import backends


@pytest.mark.skipif(backends.cuda_simulator(), reason="already inside the simulator run")
def test_numba_cuda_kernels_under_simulator(tmp_path):
    pytest.importorskip("numba.cuda")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", SPK_REQUIRE_BACKENDS="numba-cuda")
    tests_dir = Path(__file__).parent
    cmd = [sys.executable, "-m", "pytest", str(tests_dir), "-m", "numba_cuda", "-q", "-p", "no:cacheprovider",
           "-x", "--no-header", "-o", "addopts="]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, f"simulator run failed:\n{tail}"
    assert " passed" in proc.stdout, tail
